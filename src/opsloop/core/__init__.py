"""The small shared core every room builds on (below the rooms, above the store).

- ``Context``: settings, acting identity, and storage access (the database and
  blob store embedded, a ``Transport`` remote), given to rooms instead of a
  ``Client``; ``context_of(obj)`` gets it from a client or room object.
- ``resolve_user`` and ``ACTOR_HEADER``: who acts, decided in one place.
- ``mask_pii`` / ``mask_pii_value``: e-mails, cards, IBANs, SSNs, phones and IP
  addresses replaced by typed placeholders (feedback, monitoring and tracing use it).
- ``Transport``: the typed JSON-over-HTTP transport of every remote backend;
  ``upload_missing_blobs(transport, files)`` sends the files a server lacks to
  the one blob API (``/api/v1/blobs``).
- ``Room`` and friends: how a room declares its tables, routers, CLI, client
  property and UI (read by the hubs through ``opsloop.rooms``).
- ``opsloop.core.web`` (FastAPI helpers for room routers) and
  ``opsloop.core.cli`` (Typer/rich helpers for room commands) are separate
  modules so that importing the core stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsloop._version import __version__ as VERSION
from opsloop.core._blobs import upload_missing_blobs
from opsloop.core._context import (
    Context,
    HasContext,
    active_run_id,
    context_of,
    default_context,
    pop_active_run,
    push_active_run,
    set_default_context,
)
from opsloop.core._flusher import BackgroundFlusher
from opsloop.core._identity import (
    ACTOR_HEADER,
    AUTHENTICATED_USER,
    actor_from_header,
    os_user,
    resolve_user,
)
from opsloop.core._pii import mask_pii, mask_pii_value
from opsloop.core._room import ClientProperty, Nav, Room, UiRoute, hooks, load_ref

if TYPE_CHECKING:
    from opsloop.core._transport import Transport, quote_segment

__all__ = [
    "ACTOR_HEADER",
    "AUTHENTICATED_USER",
    "VERSION",
    "BackgroundFlusher",
    "ClientProperty",
    "Context",
    "HasContext",
    "Nav",
    "Room",
    "Transport",
    "UiRoute",
    "active_run_id",
    "actor_from_header",
    "context_of",
    "default_context",
    "hooks",
    "load_ref",
    "mask_pii",
    "mask_pii_value",
    "os_user",
    "pop_active_run",
    "push_active_run",
    "quote_segment",
    "resolve_user",
    "set_default_context",
    "upload_missing_blobs",
]


def __getattr__(name: str) -> Any:
    # httpx loads only when a remote backend is built.
    if name in ("Transport", "quote_segment"):
        from opsloop.core import _transport  # lazy: loads httpx

        value = getattr(_transport, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opsloop.core' has no attribute {name!r}")
