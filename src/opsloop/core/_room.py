"""``Room``: how a room declares what it adds to the house.

Each room package has a ``_room.py`` with one ``ROOM = Room(...)``. The
hubs (the server, the CLI, the SDK ``Client``, the migrations and the UI)
read these declarations from ``opsloop.rooms``; none of them names a room's
modules itself. Everything is given as ``"module:attribute"`` strings, so
reading the declarations imports no room code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientProperty", "Nav", "Room", "UiRoute", "hooks", "load_ref"]


def load_ref(ref: str) -> Any:
    """The object a ``"package.module:attribute"`` string names."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ClientProperty:
    """``client.<name>``: the room's SDK object, built as ``factory(context)`` once per client."""

    name: str
    factory: str
    doc: str = ""


@dataclass(frozen=True)
class Nav:
    """A link in the UI's sidebar: ``label`` to ``#/<section>``; ``order`` sorts the links."""

    section: str
    label: str
    order: int = 100


@dataclass(frozen=True)
class UiRoute:
    """A UI page: a hash ``pattern`` such as ``datasets/:name/diff`` rendered by
    ``render`` (an export of the ES module ``module`` under ``/ui/static/js/``),
    called as ``render(ctx, ...captured)``."""

    pattern: str
    module: str
    render: str


@dataclass(frozen=True)
class Room:
    """What one room adds: tables, routers, CLI groups and commands, a client property, UI."""

    name: str
    doc: str = ""
    tables: tuple[str, ...] = ()
    routers: tuple[str, ...] = ()
    root_routers: tuple[str, ...] = ()
    #: ``(name, "module:attr")`` of a Typer group (``opsloop NAME ...``) and of a command
    #: function (``opsloop NAME``). The CLI imports one only when it is run (or for the
    #: root help), so the name is given here; it must be the group's own name.
    cli_groups: tuple[tuple[str, str], ...] = ()
    cli_commands: tuple[tuple[str, str], ...] = ()
    client: ClientProperty | None = None
    nav: tuple[Nav, ...] = ()
    ui_routes: tuple[UiRoute, ...] = ()
    ui_modules: tuple[str, ...] = field(default=())
    ui_styles: tuple[str, ...] = field(default=())
    #: ``(hook name, "module:attr")``: a callable another room invokes at a named point
    #: (e.g. ``"registry.alias_move"``), so the caller never imports the implementer.
    hooks: tuple[tuple[str, str], ...] = ()
    #: ``"module:attr"`` of ``start(context) -> stop``: work ``opsloop server`` runs in the
    #: background while it serves (the workflows room's schedules and event triggers).
    background: tuple[str, ...] = ()
    #: ``"module:attr"`` of ``install(app, context)``: called by ``create_app`` once every
    #: route is mounted (the governance room's authentication and permission middleware).
    middleware: tuple[str, ...] = ()


def hooks(name: str) -> list[Callable[..., Any]]:
    """Every room's implementation of the hook ``name``, in room order.

    Plugin discovery by name (like datasette's or pluggy's hooks): the room
    declarations are read by importing ``opsloop.rooms`` with ``importlib``,
    so the core (and the room calling the hook) never imports the hubs or
    the implementing rooms statically.
    """
    rooms: Any = importlib.import_module("opsloop.rooms")
    return [
        load_ref(ref) for room in rooms.declarations() for hook, ref in room.hooks if hook == name
    ]
