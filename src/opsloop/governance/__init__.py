"""Governance: API tokens (hashed, with roles and expiry), the permission rule of every route,
the hash-chained audit trail of every change, and approvals for protected aliases.
See docs/governance.md."""

from __future__ import annotations

from opsloop.governance._client import Governance
from opsloop.governance._errors import (
    AliasNotProtected,
    AliasProtected,
    ApprovalNotPending,
    ApprovalRequired,
    NoPermissionRule,
    NotAReviewer,
    SignInThrottled,
    TokenExpired,
    TokenInvalid,
    TokenRequired,
    TokenRevoked,
)
from opsloop.governance.entities import (
    ROLES,
    Approval,
    AuditCheck,
    AuditEntry,
    NewToken,
    Principal,
    Protection,
    RetentionPolicy,
    RetentionReport,
    RetentionResult,
    Role,
    Token,
)

__all__ = [
    "ROLES",
    "AliasNotProtected",
    "AliasProtected",
    "Approval",
    "ApprovalNotPending",
    "ApprovalRequired",
    "AuditCheck",
    "AuditEntry",
    "Governance",
    "NewToken",
    "NoPermissionRule",
    "NotAReviewer",
    "Principal",
    "Protection",
    "RetentionPolicy",
    "RetentionReport",
    "RetentionResult",
    "Role",
    "SignInThrottled",
    "Token",
    "TokenExpired",
    "TokenInvalid",
    "TokenRequired",
    "TokenRevoked",
]
