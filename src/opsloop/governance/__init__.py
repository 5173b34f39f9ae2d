"""Governance: API tokens (hashed, with roles and expiry), the permission rule of every route,
and the hash-chained audit trail of every change. See docs/governance.md."""

from __future__ import annotations

from opsloop.governance._client import Governance
from opsloop.governance._errors import (
    NoPermissionRule,
    SignInThrottled,
    TokenExpired,
    TokenInvalid,
    TokenRequired,
    TokenRevoked,
)
from opsloop.governance.entities import (
    ROLES,
    AuditCheck,
    AuditEntry,
    NewToken,
    Principal,
    Role,
    Token,
)

__all__ = [
    "ROLES",
    "AuditCheck",
    "AuditEntry",
    "Governance",
    "NewToken",
    "NoPermissionRule",
    "Principal",
    "Role",
    "SignInThrottled",
    "Token",
    "TokenExpired",
    "TokenInvalid",
    "TokenRequired",
    "TokenRevoked",
]
