"""The rooms of the house: one line each. The hubs read this list, never a room's modules.

Adding a room: write its package (with ``_room.py`` declaring ``ROOM``), then
add one line below. The server mounts its routers, the CLI its command
groups, ``opsloop.Client`` its property, the migrations its tables and the
UI its pages and sidebar link (docs/architecture.md has the checklist).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import replace
from typing import Any

from opsloop.core import ClientProperty, Room

__all__ = ["ROOMS", "client_properties", "declarations", "load_all_tables"]

ROOMS: tuple[str, ...] = (
    "opsloop.tracking",
    "opsloop.datasets",
    "opsloop.registry",
    "opsloop.prompts",
    "opsloop.pipelines",
    "opsloop.deployments",
    "opsloop.serving",
    "opsloop.feedback",
    "opsloop.tuning",
    "opsloop.tracing",
    "opsloop.llm",
    "opsloop.evaluation",
    "opsloop.retrieval",
    "opsloop.selection",
    "opsloop.finetune",
    "opsloop.loop",
    "opsloop.mlflowapi",
    "opsloop.gateway",
    "opsloop.monitoring",
    "opsloop.workflows",
    "opsloop.governance",
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
def client_properties() -> dict[str, ClientProperty]:
    """``client.<name>`` -> its declaration (the room client's ``module:Class``, a docstring)."""
    out: dict[str, ClientProperty] = {}
    for room in declarations():
        if room.client is not None:
            if room.client.name in out:
                raise ValueError(f"two rooms declare client.{room.client.name}")
            out[room.client.name] = (
                room.client if room.client.doc else replace(room.client, doc=room.doc)
            )
    return out


def load_all_tables() -> Any:
    """Import every room's tables so the shared ``MetaData`` is complete; return it."""
    from opsloop.store import metadata  # lazy: loads sqlalchemy

    for room in declarations():
        for module in room.tables:
            importlib.import_module(module)
    return metadata
