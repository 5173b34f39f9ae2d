"""Governance: API tokens (hashed, with roles and expiry), the permission rule of every route,
the hash-chained audit trail of every change, and approvals for protected aliases.
See docs/governance.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.governance._client import Governance
    from opsloop.governance._errors import (
        AliasNotProtected,
        AliasProtected,
        ApprovalNotPending,
        ApprovalRequired,
        AuthNotEnabled,
        CsrfTokenInvalid,
        NoPermissionRule,
        NotAReviewer,
        OidcNotConfigured,
        OidcSignInFailed,
        OidcUserRefused,
        SessionExpired,
        SessionInvalid,
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
    "AuthNotEnabled",
    "CsrfTokenInvalid",
    "Governance",
    "NewToken",
    "NoPermissionRule",
    "NotAReviewer",
    "OidcNotConfigured",
    "OidcSignInFailed",
    "OidcUserRefused",
    "Principal",
    "Protection",
    "RetentionPolicy",
    "RetentionReport",
    "RetentionResult",
    "Role",
    "SessionExpired",
    "SessionInvalid",
    "SignInThrottled",
    "Token",
    "TokenExpired",
    "TokenInvalid",
    "TokenRequired",
    "TokenRevoked",
]

# Each name loads its module on first use: the package itself imports nothing, so
# reading the room's declaration (the CLI, opsloop.rooms) stays light.
_LAZY = {
    "AuthNotEnabled": "opsloop.governance._errors",
    "CsrfTokenInvalid": "opsloop.governance._errors",
    "OidcNotConfigured": "opsloop.governance._errors",
    "OidcSignInFailed": "opsloop.governance._errors",
    "OidcUserRefused": "opsloop.governance._errors",
    "SessionExpired": "opsloop.governance._errors",
    "SessionInvalid": "opsloop.governance._errors",
    "ROLES": "opsloop.governance.entities",
    "AliasNotProtected": "opsloop.governance._errors",
    "AliasProtected": "opsloop.governance._errors",
    "Approval": "opsloop.governance.entities",
    "ApprovalNotPending": "opsloop.governance._errors",
    "ApprovalRequired": "opsloop.governance._errors",
    "AuditCheck": "opsloop.governance.entities",
    "AuditEntry": "opsloop.governance.entities",
    "Governance": "opsloop.governance._client",
    "NewToken": "opsloop.governance.entities",
    "NoPermissionRule": "opsloop.governance._errors",
    "NotAReviewer": "opsloop.governance._errors",
    "Principal": "opsloop.governance.entities",
    "Protection": "opsloop.governance.entities",
    "RetentionPolicy": "opsloop.governance.entities",
    "RetentionReport": "opsloop.governance.entities",
    "RetentionResult": "opsloop.governance.entities",
    "Role": "opsloop.governance.entities",
    "SignInThrottled": "opsloop.governance._errors",
    "Token": "opsloop.governance.entities",
    "TokenExpired": "opsloop.governance._errors",
    "TokenInvalid": "opsloop.governance._errors",
    "TokenRequired": "opsloop.governance._errors",
    "TokenRevoked": "opsloop.governance._errors",
}


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
