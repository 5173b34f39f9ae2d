"""A command imports only what it uses: typer, rich, the store and its own room.

The root group (``opsloop.cli._app.RootGroup``) knows every command's name
from the room declarations and imports a command's module only when it runs;
the rooms' packages import nothing heavy. Each command here runs in its own
process (a fresh ``sys.modules``) on a fresh home folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.cli._app import COMMANDS, GROUPS
from opsloop.rooms import ROOMS, declarations

ROOT = Path(__file__).resolve().parents[1]

# Libraries no listing needs (FastAPI and friends come with the server and `opsloop serve`).
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "torch",
    "transformers",
    "sklearn",
    "numpy",
    "pandas",
    "pyarrow",
    "optuna",
    "ray",
    "alembic",
)

_PROBE = """
import json, sys
from opsloop.rooms import declarations
declarations()
rooms = sorted(sys.modules)
from opsloop.cli import main
sys.argv = ["opsloop", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nMODULES=" + json.dumps({"code": code, "modules": sorted(sys.modules), "rooms": rooms}))
"""


def _imported(args: list[str]) -> tuple[set[str], set[str]]:
    """What reading the room declarations imports, and what the command ``args`` imports."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("OPSLOOP_TRACKING_URI", None)
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    line = [x for x in res.stdout.splitlines() if x.startswith("MODULES=")]
    assert line, res.stdout + res.stderr
    got = json.loads(line[-1].removeprefix("MODULES="))
    assert got["code"] in (0, None), res.stdout + res.stderr
    return set(got["rooms"]), set(got["modules"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose database is at the head revision (a first command would create it)."""
    path = tmp_path_factory.mktemp("startup") / "home"
    res = CliRunner().invoke(app, ["db", "upgrade", "--home", str(path)])
    assert res.exit_code == 0, res.output
    return path


@pytest.mark.parametrize(
    ("args", "rooms"),
    [
        (["--version"], set()),
        (["runs", "list"], {"tracking"}),
        (["datasets", "list"], {"datasets", "tracking"}),
        (["models", "list"], {"registry", "datasets", "tracking"}),
        (["traces", "list"], {"tracing", "tracking"}),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_command_imports_only_its_room(args: list[str], rooms: set[str], home: Path) -> None:
    declared, modules = _imported([*args, *(["--home", str(home)] if args[-1] == "list" else [])])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, heavy
    # Reading every room's declaration imports no storage (nor any room's service).
    assert "sqlalchemy" not in declared
    assert not [
        m
        for m in declared
        if m.startswith("opsloop.") and m.endswith(("._service", "._client", "._app", ".cli"))
    ]
    # Past the declarations, the command imports its own room(s) and no other.
    others = sorted(
        m
        for m in modules - declared
        if ".".join(m.split(".")[:2]) in ROOMS and m.split(".")[1] not in rooms
    )
    assert not others, others


def test_root_help_lists_every_declared_command() -> None:
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    rooms = declarations()
    names = [n for n, _ in COMMANDS] + [n for r in rooms for n, _ in r.cli_commands]
    names += [n for n, _ in GROUPS] + [n for r in rooms for n, _ in r.cli_groups]
    assert len(names) == len(set(names)), names
    listed = [line.split()[1] for line in res.output.splitlines() if line.startswith("│ ")]
    assert [n for n in listed if n in names] == names


def test_an_unknown_command_is_a_usage_error_with_suggestions() -> None:
    res = CliRunner().invoke(app, ["rns", "list"])
    assert res.exit_code == 2
    assert "No such command 'rns'" in res.output
    assert "'runs'" in res.output  # the suggestion comes from the names, nothing imported
