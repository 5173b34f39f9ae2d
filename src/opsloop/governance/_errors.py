"""The governance room's errors, each with its own stable code."""

from __future__ import annotations

from opsloop.errors import OpsloopError, PermissionDenied, Unauthenticated

__all__ = [
    "NoPermissionRule",
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
