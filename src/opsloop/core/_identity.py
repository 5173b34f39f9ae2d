"""Who acts: the one place that decides the acting identity.

In order: an explicit user (a CLI flag, a request's ``X-Opsloop-User``
header on the server), ``Settings.user`` (``OPSLOOP_USER``), then the
operating-system user. Rooms never guess on their own. A server with auth
on replaces the header with the token's user, so a caller cannot name
someone else.
"""

from __future__ import annotations

import getpass
import os

from opsloop.settings import Settings

__all__ = [
    "ACTOR_HEADER",
    "AUTHENTICATED_USER",
    "MAX_USER_LENGTH",
    "actor_from_header",
    "os_user",
    "resolve_user",
]

ACTOR_HEADER = "X-Opsloop-User"
"""The request header a client names its acting user in (the server records it)."""

MAX_USER_LENGTH = 256

AUTHENTICATED_USER = "opsloop.authenticated_user"
"""The key in a request's ``scope["state"]`` holding the user a server with auth on
authenticated (the governance room's guard sets it; its header is then that user too)."""


_USER_VARS = ("LOGNAME", "USER", "LNAME", "USERNAME")  # what getpass.getuser reads first
_os_users: dict[tuple[str | None, ...], str] = {}


def os_user() -> str:
    """The operating-system user, or ``""`` where there is none (some containers).

    Remembered per value of the environment variables ``getpass`` reads, so
    the password-database lookup behind it runs once, not on every run created.
    """
    key = (
        *(os.environ.get(v) for v in _USER_VARS),
        str(os.getuid()) if hasattr(os, "getuid") else "",
    )
    who = _os_users.get(key)
    if who is None:
        try:
            who = getpass.getuser()
        except Exception:  # getpass raises OSError/KeyError when no user entry exists
            who = ""
        _os_users[key] = who
    return who


def resolve_user(settings: Settings, explicit: str | None = None) -> str:
    """The acting user: ``explicit``, else ``settings.user``, else the OS user."""
    for who in (explicit, settings.user):
        if who:
            return who[:MAX_USER_LENGTH]
    return os_user()


def actor_from_header(value: str | None) -> str | None:
    """The user a request names in ``X-Opsloop-User`` (cut to 256 characters), or None."""
    return value[:MAX_USER_LENGTH] if value else None
