"""The ``opsloop`` command line: thin Typer commands over ``opsloop.Client`` and the server.

The command tree is assembled in ``_app.py`` on first use of ``app`` or
``main``, from every room's declared commands (``opsloop/rooms.py``); the
rooms' commands use ``opsloop.core.cli``, never this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from opsloop.cli import _app  # lazy: loads every room's commands

        return getattr(_app, name)
    raise AttributeError(f"module 'opsloop.cli' has no attribute {name!r}")
