"""The governance room's errors, each with its own stable code."""

from __future__ import annotations

from opsloop.errors import (
    Conflict,
    InvalidArgument,
    OpsloopError,
    PermissionDenied,
    Unauthenticated,
)

__all__ = [
    "AliasNotProtected",
    "AliasProtected",
    "ApprovalNotPending",
    "ApprovalRequired",
    "AuthNotEnabled",
    "CsrfTokenInvalid",
    "NoPermissionRule",
    "NotAReviewer",
    "OidcNotConfigured",
    "OidcSignInFailed",
    "OidcUserRefused",
    "SessionExpired",
    "SessionInvalid",
    "SignInThrottled",
    "TokenExpired",
    "TokenInvalid",
    "TokenRequired",
    "TokenRevoked",
]


class TokenRequired(Unauthenticated):
    """The server authenticates requests and this one carried no ``Authorization: Bearer``."""

    code = "TOKEN_REQUIRED"
    http_status = 401


class TokenInvalid(Unauthenticated):
    """The token sent is not one the server knows."""

    code = "TOKEN_INVALID"
    http_status = 401


class TokenExpired(Unauthenticated):
    """The token sent is past its expiry."""

    code = "TOKEN_EXPIRED"
    http_status = 401


class TokenRevoked(Unauthenticated):
    """The token sent was revoked."""

    code = "TOKEN_REVOKED"
    http_status = 401


class NoPermissionRule(PermissionDenied):
    """The route has no permission rule, so nobody may call it (a rule must be written first)."""

    code = "NO_PERMISSION_RULE"
    http_status = 403


class SignInThrottled(OpsloopError):
    """Too many requests with a bad token from this address lately; wait and try again."""

    code = "SIGN_IN_RATE_LIMITED"
    http_status = 429


class ApprovalRequired(Conflict):
    """The alias is protected: it moves only when a reviewer approves a request to move it."""

    code = "APPROVAL_REQUIRED"
    http_status = 409


class AliasProtected(Conflict):
    """The alias is protected: it cannot be deleted until an admin lifts the protection."""

    code = "ALIAS_PROTECTED"
    http_status = 409


class ApprovalNotPending(Conflict):
    """The approval was decided already (or another request for the alias is pending)."""

    code = "APPROVAL_NOT_PENDING"
    http_status = 409


class AliasNotProtected(InvalidArgument):
    """An approval was requested for an alias that is not protected: move it directly."""

    code = "ALIAS_NOT_PROTECTED"
    http_status = 400


class NotAReviewer(PermissionDenied):
    """The caller may not decide this approval: not a named reviewer, admin or owner, or the
    one who asked for it."""

    code = "NOT_A_REVIEWER"
    http_status = 403


class SessionInvalid(Unauthenticated):
    """The session cookie sent names no session (never made, or signed out): sign in again."""

    code = "SESSION_INVALID"
    http_status = 401


class SessionExpired(Unauthenticated):
    """The session is past its lifetime or was idle too long (or its token ended)."""

    code = "SESSION_EXPIRED"
    http_status = 401


class CsrfTokenInvalid(PermissionDenied):
    """A change made with the session cookie lacked the session's ``X-CSRF-Token`` header, or
    sent a wrong one."""

    code = "CSRF_TOKEN_INVALID"
    http_status = 403


class AuthNotEnabled(Conflict):
    """Signing in needs a server with authentication on (``--auth``)."""

    code = "AUTH_NOT_ENABLED"
    http_status = 409


class OidcNotConfigured(Conflict):
    """OpenID Connect sign-in is not set up on this server (``OPSLOOP_OIDC_ISSUER`` ...)."""

    code = "OIDC_NOT_CONFIGURED"
    http_status = 409


class OidcSignInFailed(Unauthenticated):
    """The OpenID Connect sign-in did not complete: a bad or used state, an error from the
    provider, or an ID token whose signature, issuer, audience, expiry or nonce is wrong."""

    code = "OIDC_SIGN_IN_FAILED"
    http_status = 401


class OidcUserRefused(PermissionDenied):
    """The provider vouched for the user, but this server maps them to no role."""

    code = "OIDC_USER_REFUSED"
    http_status = 403
