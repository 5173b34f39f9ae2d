"""The ``opsloop`` command line: thin Typer commands over ``opsloop.Client`` and the server.

The root group is in ``_app.py`` (loaded on first use of ``app`` or ``main``);
it names every room's declared commands (``opsloop/rooms.py``) and imports a
command's module only when that command runs. The rooms' commands use
``opsloop.core.cli``, never this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from opsloop.cli import _app  # lazy: reads every room's declaration

        return getattr(_app, name)
    raise AttributeError(f"module 'opsloop.cli' has no attribute {name!r}")
