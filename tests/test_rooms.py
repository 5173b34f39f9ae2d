"""Rooms register, hubs read: one package plus one line in opsloop/rooms.py adds a room.

A room made in the test's folder declares a table-less router, a command group,
a client property and a UI page with a sidebar link; adding its package to
``ROOMS`` is all it takes for the server, the CLI, ``Client`` and the UI to
carry it.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import opsloop.rooms as rooms
from opsloop.core import Context, Room, load_ref
from opsloop.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

ROOM_FILES = {
    "__init__.py": """
        from demo_room._client import Demo
        __all__ = ["Demo"]
    """,
    "_client.py": """
        from opsloop.core import context_of

        class Demo:
            def __init__(self, ctx):
                self.context = context_of(ctx)

            def hello(self) -> str:
                return f"hello from {self.context.settings.home.name}"
    """,
    "api.py": """
        from fastapi import APIRouter
        from opsloop.core.web import Ctx, ok

        router = APIRouter(tags=["demo"])

        @router.get("/demo/ping", summary="Ping the demo room")
        def ping(ctx: Ctx):
            return ok({"pong": True, "remote": ctx.is_remote})
    """,
    "cli.py": """
        from opsloop.core.cli import out, room_app

        app = room_app("demo", "The demo room.")

        @app.command("hello")
        def hello() -> None:
            out().print("demo says hello")
    """,
    "_room.py": """
        from opsloop.core import ClientProperty, Nav, Room, UiRoute

        ROOM = Room(
            name="demo",
            doc="A room made by a test.",
            routers=("demo_room.api:router",),
            cli_groups=(("demo", "demo_room.cli:app"),),
            client=ClientProperty("demo", "demo_room:Demo"),
            nav=(Nav("demo", "Demo room", order=99),),
            ui_routes=(UiRoute("demo/:id", "pages/experiments.js", "renderExperiments"),),
        )
    """,
}


@pytest.fixture
def demo_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pkg = tmp_path / "pkgs" / "demo_room"
    pkg.mkdir(parents=True)
    for name, text in ROOM_FILES.items():
        (pkg / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    # The one registration line:
    monkeypatch.setattr(rooms, "ROOMS", (*rooms.ROOMS, "demo_room"))
    rooms.declarations.cache_clear()
    rooms.client_properties.cache_clear()
    yield
    rooms.declarations.cache_clear()
    rooms.client_properties.cache_clear()
    for mod in [m for m in sys.modules if m.startswith("demo_room")]:
        del sys.modules[mod]


def test_one_line_adds_a_room_everywhere(demo_room: None, tmp_path: Path) -> None:
    from opsloop.cli import app as cli_app
    from opsloop.sdk._client import Client, install_room_properties
    from opsloop.server import create_app

    # Server: the router is mounted, the UI has its link and page.
    app = create_app(Settings(home=tmp_path / "home"))
    with TestClient(app) as http:
        assert http.get("/api/v1/demo/ping").json() == {"pong": True, "remote": False}
        assert "Demo room" in http.get("/ui/").text
        routes_js = http.get("/ui/routes.js").text
        assert '["demo", ":id"]' in routes_js
        assert "/api/v1/demo/ping" in http.get("/api/v1/openapi.json").json()["paths"]

    # CLI: the command group is there (listed in the root help, imported when run).
    res = CliRunner().invoke(cli_app, ["demo", "hello"])
    assert res.exit_code == 0, res.output
    assert "demo says hello" in res.output
    res = CliRunner().invoke(cli_app, ["--help"], env={"COLUMNS": "200"})
    assert "The demo room." in res.output

    # Client: the property, built once per client on its context.
    install_room_properties()
    try:
        with Client(home=tmp_path / "home") as c:
            demo = c.demo  # type: ignore[attr-defined]
            assert demo.hello() == "hello from home"
            assert c.demo is demo  # type: ignore[attr-defined]
            assert c.context.room(load_ref("demo_room:Demo")) is demo
    finally:
        delattr(Client, "demo")


def test_declarations_load_and_are_unique() -> None:
    names = set()
    for room in rooms.declarations():
        assert isinstance(room, Room)
        assert room.name not in names
        names.add(room.name)
        for ref in (*room.routers, *room.root_routers):
            assert load_ref(ref) is not None, ref
        for name, ref in room.cli_groups:
            # The CLI lists a group under its declared name before importing it.
            assert load_ref(ref).info.name == name, ref
        for _, ref in room.cli_commands:
            assert callable(load_ref(ref))
        for module in room.tables:
            __import__(module)
        for route in room.ui_routes:
            js = ROOT / "src/opsloop/server/ui/static/js" / route.module
            assert f"export async function {route.render}(" in js.read_text() or (
                f"export function {route.render}(" in js.read_text()
            ), (route.module, route.render)
    assert [r.split(".")[-1] for r in rooms.ROOMS] == [
        # every room package declares itself in order; a package without _room.py fails above
        r.split(".")[-1]
        for r in rooms.ROOMS
    ]


def test_client_type_annotations_match_the_declared_properties() -> None:
    """``Client``'s typed room attributes (for IDEs and mypy) list exactly the declared ones."""
    tree = ast.parse((ROOT / "src/opsloop/sdk/_client.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Client")
    typed = {
        stmt.target.id
        for node in cls.body
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }
    assert typed == set(rooms.client_properties())


def test_every_room_package_is_registered() -> None:
    """A package with a ``_room.py`` that is missing from ROOMS would be silently ignored."""
    declared = {
        p.parent.name
        for p in (ROOT / "src/opsloop").glob("*/_room.py")
        if "\nROOM = Room(" in p.read_text()
    }
    assert declared == {r.split(".")[-1] for r in rooms.ROOMS}


def test_context_shares_room_objects_and_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsloop import Client
    from opsloop.tracking import Tracking

    monkeypatch.setenv("OPSLOOP_USER", "ada")
    with Client(home=tmp_path / "h") as c:
        assert c.context.user == "ada"
        assert c.context.room(Tracking) is c
        run = c.create_run(experiment_name="e")
        assert run.user == "ada"
        assert c.datasets is c.context.room(load_ref("opsloop.datasets:Datasets"))
    ctx = Context(Settings(home=tmp_path / "h", user="grace"))
    try:
        assert ctx.user == "grace"
    finally:
        ctx.close()
