"""The tracer module-level spans go to, once chosen (on first use, by ``configure`` or by
``Tracing.activate()``). Holds only the choice: ``_sdk`` makes the default one, and a
``Tracing`` client can make itself the choice without importing ``_sdk``."""

from __future__ import annotations

import threading

from opsloop.tracing._span import Tracer

__all__ = ["current", "lock", "set_current"]

lock = threading.RLock()
_tracer: Tracer | None = None


def current() -> Tracer | None:
    """The chosen tracer, or None before the first choice."""
    return _tracer


def set_current(tracer: Tracer | None) -> None:
    """Make ``tracer`` the destination of new traces (None: make the default on next use)."""
    global _tracer
    with lock:
        _tracer = tracer
