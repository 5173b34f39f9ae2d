"""The rooms of the house: one line each. The hubs read this list, never a room's modules.

Adding a room: write its package (with ``_room.py`` declaring ``ROOM``), then
add one line below. The server mounts its routers, the CLI its command
groups, ``opsloop.Client`` its property, the migrations its tables and the
UI its pages and sidebar link (docs/architecture.md has the checklist).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from opsloop.core import Room, load_ref

__all__ = ["ROOMS", "client_properties", "declarations", "load_all_tables"]

ROOMS: tuple[str, ...] = (
    "opsloop.tracking",
    "opsloop.datasets",
    "opsloop.registry",
    "opsloop.prompts",
    "opsloop.pipelines",
    "opsloop.deployments",
    "opsloop.serving",
    "opsloop.tuning",
    "opsloop.tracing",
    "opsloop.llm",
    "opsloop.evaluation",
    "opsloop.retrieval",
    "opsloop.selection",
)


@functools.cache
def declarations() -> tuple[Room, ...]:
    """Every room's ``ROOM``, in the order above."""
    rooms = []
    for package in ROOMS:
        room = importlib.import_module(f"{package}._room").ROOM
        if not isinstance(room, Room):
            raise TypeError(f"{package}._room.ROOM is not an opsloop.core.Room")
        rooms.append(room)
    return tuple(rooms)


@functools.cache
def client_properties() -> dict[str, tuple[Callable[..., Any], str]]:
    """``client.<name>`` -> (the room's factory, built from a context; its docstring)."""
    out: dict[str, tuple[Callable[..., Any], str]] = {}
    for room in declarations():
        if room.client is not None:
            if room.client.name in out:
                raise ValueError(f"two rooms declare client.{room.client.name}")
            out[room.client.name] = (_Lazy(room.client.factory), room.client.doc or room.doc)
    return out


class _Lazy:
    """A factory that imports its target on first call (so ``Client()`` loads no room early).

    One instance per declaration, so ``Context.room`` keys on it consistently.
    """

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.__name__ = ref

    def __call__(self, ctx: Any) -> Any:
        # The room's client is the context's one: ``client.datasets`` is ``ctx.room(Datasets)``.
        return ctx.room(load_ref(self.ref))

    def __repr__(self) -> str:
        return f"<room factory {self.ref}>"


def load_all_tables() -> Any:
    """Import every room's tables so the shared ``MetaData`` is complete; return it."""
    from opsloop.store import metadata  # lazy: loads sqlalchemy

    for room in declarations():
        for module in room.tables:
            importlib.import_module(module)
    return metadata
