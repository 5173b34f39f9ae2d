"""The ``opsloop`` command line, driven through Typer's runner and as a real process.

Runner tests assert on what a person sees (tables, messages), on parsed
``--json`` output and on the stored state read back through ``opsloop.Client``.
The process tests start ``opsloop server`` for real and stop it with signals.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from opsloop import Client
from opsloop.cli import app
from opsloop.settings import Settings
from opsloop.store import SCHEMA_HEAD
from opsloop.store.migrate import downgrade, upgrade
from tests._procs import START_TIMEOUT_S, child_env, free_port, wait_until
from tests.conftest import live_server

COMMANDS = [
    ["server"],
    ["quickstart"],
    ["db", "upgrade"],
    ["db", "current"],
    ["gc"],
    ["gateway", "serve"],
    ["gateway", "routes", "set"],
    ["gateway", "keys", "create"],
    ["experiments", "list"],
    ["experiments", "create"],
    ["experiments", "rename"],
    ["experiments", "delete"],
    ["experiments", "restore"],
    ["runs", "list"],
    ["runs", "show"],
    ["runs", "compare"],
    ["runs", "delete"],
    ["runs", "restore"],
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own OPSLOOP_* settings must not leak into these tests.
    import os

    for key in list(os.environ):
        if key.startswith("OPSLOOP_"):
            monkeypatch.delenv(key)


def cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``opsloop ARGS`` in-process on a wide terminal, so tables are not cropped."""
    return CliRunner().invoke(
        app, list(args), input=input, env={"COLUMNS": "220", **(env or {})}, catch_exceptions=False
    )


def ok(*args: str, **kw: Any) -> Result:
    result = cli(*args, **kw)
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def assert_error(result: Result, exit_code: int, code: str, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert f"error [{code}]:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def seeded(home: Path) -> Iterator[dict[str, Any]]:
    """Three finished runs in experiment "churn" with params, metric histories, tags, artifacts."""
    with Client(home=home) as c:
        exp = c.create_experiment("churn", "weekly churn model")
        ids = {}
        for name, model, lr, f1s, losses in [
            ("rf-small", "rf", 0.1, [0.70, 0.80, 0.85], [0.9, 0.6, 0.5]),
            ("mlp-a", "mlp", 0.01, [0.75, 0.90, 0.93], [0.8, 0.4, 0.3]),
            ("mlp-b", "mlp", 0.001, [0.60, 0.70, 0.88], [1.0, 0.7, 0.45]),
        ]:
            run = c.create_run(exp.id, name=name, params={"model": model, "lr": lr, "seed": 1})
            for step, (f1, loss) in enumerate(zip(f1s, losses, strict=True)):
                c.log_metrics(run.id, {"f1": f1, "val_loss": loss}, step=step)
            c.set_tag(run.id, "team", "growth")
            c.log_text(run.id, f"report for {name}\n", "reports/summary.txt")
            c.set_terminated(run.id)
            ids[name] = run.id
    yield {"home": str(home), "experiment_id": exp.id, "runs": ids}


# ---------------------------------------------------------------- help, version, usage


def test_root_help_lists_commands_and_exit_codes() -> None:
    out = ok("--help").stdout
    for command in ("server", "quickstart", "db", "experiments", "runs"):
        assert command in out
    assert "Exit codes" in out and "opsloop db upgrade" in out


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    out = ok(*command, "--help").stdout
    assert "Examples" in out
    assert f"opsloop {' '.join(command)}" in out


def test_cli_import_is_light() -> None:
    # `opsloop --help` must answer at once: the server, database and ML stacks load on use.
    code = (
        "import sys, opsloop.cli; heavy = ['sklearn', 'numpy', 'fastapi', 'uvicorn', "
        "'sqlalchemy', 'alembic', 'httpx']; print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    from opsloop import __version__

    assert ok("--version").stdout.strip() == f"opsloop {__version__}"


def test_usage_errors_exit_2(home: Path) -> None:
    assert cli("runs", "list", "--max", "0", "--home", str(home)).exit_code == 2
    assert cli("runs", "compare", "only-one", "--home", str(home)).exit_code == 2
    assert cli("no-such-command").exit_code == 2


def test_usage_errors_are_one_error_line(home: Path) -> None:
    cases = {
        ("no-such-command",): "No such command 'no-such-command'. (see `opsloop --help`)",
        ("runs", "list", "--bogus"): "No such option: --bogus (see `opsloop runs list --help`)",
        ("runs", "show"): "Missing argument 'RUN_ID'. (see `opsloop runs show --help`)",
    }
    for args, message in cases.items():
        r = cli(*args, "--home", str(home)) if args[0] == "runs" else cli(*args)
        assert r.exit_code == 2, args
        assert r.stderr.strip().splitlines() == [f"error [USAGE]: {message}"], r.stderr
        assert "╭" not in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- experiments


def test_experiments_lifecycle(home: Path) -> None:
    h = str(home)
    out = ok("experiments", "create", "churn", "--description", "weekly churn", "--home", h).stdout
    assert "created experiment churn" in out
    assert_error(cli("experiments", "create", "churn", "--home", h), 1, "ALREADY_EXISTS", "churn")

    listed = as_json(ok("experiments", "list", "--json", "--home", h))
    assert [(e["name"], e["description"]) for e in listed] == [("churn", "weekly churn")]
    exp_id = listed[0]["id"]
    table = ok("experiments", "list", "--home", h).stdout
    assert "churn" in table and exp_id in table and "weekly churn" in table

    ok("experiments", "rename", "churn", "churn-v2", "--home", h)
    with Client(home=home) as c:
        assert c.get_experiment(exp_id).name == "churn-v2"

    ok("experiments", "delete", exp_id, "--home", h)
    assert as_json(ok("experiments", "list", "--json", "--home", h)) == []
    with_deleted = as_json(ok("experiments", "list", "--all", "--json", "--home", h))
    assert [e["lifecycle_stage"] for e in with_deleted] == ["deleted"]

    ok("experiments", "restore", "churn-v2", "--home", h)
    with Client(home=home) as c:
        assert c.get_experiment(exp_id).lifecycle_stage == "active"

    assert_error(cli("experiments", "rename", "missing", "x", "--home", h), 1, "NOT_FOUND")


# ---------------------------------------------------------------- runs


def test_runs_list_filters_orders_and_pages(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    page = as_json(
        ok("runs", "list", "-e", "churn", "--order-by", "metrics.f1 DESC", "--json", "--home", h)
    )
    assert [r["id"] for r in page["runs"]] == [ids["mlp-a"], ids["mlp-b"], ids["rf-small"]]
    assert page["total"] == 3
    assert page["runs"][0]["metrics"]["f1"]["value"] == pytest.approx(0.93)

    mlps = as_json(ok("runs", "list", "--filter", 'params.model = "mlp"', "--json", "--home", h))[
        "runs"
    ]
    assert sorted(r["name"] for r in mlps) == ["mlp-a", "mlp-b"]

    first = as_json(
        ok("runs", "list", "-o", "metrics.val_loss ASC", "--max", "1", "--json", "--home", h)
    )
    assert [r["name"] for r in first["runs"]] == ["mlp-a"] and first["next_page_token"]

    # The experiment can be named by id too.
    by_id = as_json(ok("runs", "list", "-e", seeded["experiment_id"], "--json", "--home", h))
    assert len(by_id["runs"]) == 3


def test_runs_list_table_shows_chosen_columns(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    out = ok(
        "runs",
        "list",
        "-o",
        "metrics.f1 DESC",
        "-p",
        "lr",
        "-m",
        "f1",
        "-m",
        "val_loss",
        "--home",
        h,
    ).stdout
    assert "Runs (3 of 3)" in out
    lines = out.splitlines()
    header = next(line for line in lines if "Run ID" in line)
    assert "lr" in header and "f1" in header and "val_loss" in header
    row = next(line for line in lines if ids["mlp-a"] in line)
    assert "mlp-a" in row and "FINISHED" in row and "0.01" in row and "0.93" in row and "0.3" in row
    # Ordered by f1: mlp-a's row comes before rf-small's.
    assert out.index(ids["mlp-a"]) < out.index(ids["mlp-b"]) < out.index(ids["rf-small"])


def test_runs_list_auto_columns_and_narrow_terminal(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    wide = ok("runs", "list", "-o", "metrics.f1 DESC", "--home", h).stdout
    header = next(line for line in wide.splitlines() if "Run ID" in line)
    # Sorted-by metric first; the params that differ (model, lr) but not the same-for-all seed.
    assert "f1" in header and "model" in header and "lr" in header and "seed" not in header
    narrow = ok("runs", "list", "-o", "metrics.f1 DESC", "--home", h, env={"COLUMNS": "80"}).stdout
    # Run ids are never cropped, whatever else has to go.
    assert all(run_id in narrow for run_id in ids.values())
    assert max(len(line) for line in narrow.splitlines()) <= 80


def test_runs_list_bad_filter_is_a_clean_error(seeded: dict[str, Any]) -> None:
    result = cli("runs", "list", "--filter", "metrics.f1 >>> 3", "--home", seeded["home"])
    assert_error(result, 1, "INVALID_ARGUMENT")


def test_runs_show(seeded: dict[str, Any]) -> None:
    h, run_id = seeded["home"], seeded["runs"]["mlp-b"]
    data = as_json(ok("runs", "show", run_id, "--json", "--home", h))
    run = data["run"]
    assert data["experiment_name"] == "churn"
    assert run["params"] == {"model": "mlp", "lr": "0.001", "seed": "1"}
    assert run["tags"]["team"] == "growth"
    f1 = run["metrics"]["f1"]
    assert (f1["value"], f1["min"], f1["max"], f1["count"], f1["step"]) == (0.88, 0.6, 0.88, 3, 2)
    assert [a["path"] for a in data["artifacts"] if not a["is_dir"]] == ["reports/summary.txt"]

    text = ok("runs", "show", run_id, "--home", h).stdout
    for fragment in ("mlp-b", "churn", "FINISHED", "Params", "Metrics", "Artifacts"):
        assert fragment in text
    assert "reports/summary.txt" in text
    metric_row = next(line for line in text.splitlines() if " f1 " in line)
    assert "0.88" in metric_row and "0.6" in metric_row and " 3 " in metric_row

    assert_error(cli("runs", "show", "0" * 32, "--home", h), 1, "NOT_FOUND")


def test_runs_compare(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    order = [ids["rf-small"], ids["mlp-a"], ids["mlp-b"]]
    data = as_json(ok("runs", "compare", *order, "--json", "--home", h))
    assert [r["id"] for r in data["runs"]] == order
    assert set(data["differing_params"]) == {"model", "lr"}
    assert data["goals"] == {"f1": "max", "val_loss": "min"}
    assert data["best"] == {"f1": [ids["mlp-a"]], "val_loss": [ids["mlp-a"]]}
    assert data["metrics"]["val_loss"][ids["mlp-b"]] == pytest.approx(0.45)

    text = ok("runs", "compare", *order, "--home", h).stdout
    lines = text.splitlines()
    assert next(line for line in lines if "params.model" in line).lstrip("│ ").startswith("≠")
    assert not next(line for line in lines if "params.seed" in line).lstrip("│ ").startswith("≠")
    f1_row = next(line for line in lines if "metrics.f1" in line)
    assert "★ 0.93" in f1_row and f1_row.count("★") == 1
    loss_row = next(line for line in lines if "metrics.val_loss" in line)
    assert "★ 0.3" in loss_row and "↓" in loss_row

    assert_error(cli("runs", "compare", ids["mlp-a"], "f" * 32, "--home", h), 1, "NOT_FOUND")


def test_runs_compare_shows_the_goal_set_on_the_experiment(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    order = [ids["rf-small"], ids["mlp-a"], ids["mlp-b"]]
    with Client(home=h) as c:
        c.set_metric_goal(seeded["experiment_id"], "f1", "minimize")
        c.set_metric_goal(seeded["experiment_id"], "val_loss", "maximize")
    data = as_json(ok("runs", "compare", *order, "--json", "--home", h))
    assert data["goals"] == {"f1": "min", "val_loss": "max"}
    assert data["best"] == {"f1": [ids["rf-small"]], "val_loss": [ids["rf-small"]]}
    lines = ok("runs", "compare", *order, "--home", h).stdout.splitlines()
    f1_row = next(line for line in lines if "metrics.f1" in line)
    assert "↓" in f1_row and "★ 0.85" in f1_row and f1_row.count("★") == 1
    loss_row = next(line for line in lines if "metrics.val_loss" in line)
    assert "↑" in loss_row and "★ 0.5" in loss_row and loss_row.count("★") == 1


def test_runs_delete_restore_and_purge(seeded: dict[str, Any]) -> None:
    h, ids = seeded["home"], seeded["runs"]
    out = ok("runs", "delete", ids["rf-small"], "--home", h).stdout
    assert f"opsloop runs restore {ids['rf-small']}" in out
    with Client(home=h) as c:
        assert c.get_run(ids["rf-small"]).lifecycle_stage == "deleted"
    listed = as_json(ok("runs", "list", "--json", "--home", h))["runs"]
    assert ids["rf-small"] not in {r["id"] for r in listed}

    ok("runs", "restore", ids["rf-small"], "--home", h)
    with Client(home=h) as c:
        assert c.get_run(ids["rf-small"]).lifecycle_stage == "active"

    # Purging asks first; answering no keeps everything.
    declined = cli("runs", "delete", ids["mlp-b"], "--purge", "--home", h, input="n\n")
    assert declined.exit_code == 1 and "cannot be undone" in declined.output
    with Client(home=h) as c:
        assert c.get_run(ids["mlp-b"]).metrics["f1"].count == 3

    ok("runs", "delete", ids["mlp-b"], "--purge", "--yes", "--home", h)
    assert_error(cli("runs", "show", ids["mlp-b"], "--home", h), 1, "NOT_FOUND")
    assert_error(cli("runs", "restore", ids["mlp-b"], "--home", h), 1, "NOT_FOUND")


# ---------------------------------------------------------------- where the CLI looks


def test_global_home_option_and_env(seeded: dict[str, Any], tmp_path: Path) -> None:
    h = seeded["home"]
    assert len(as_json(ok("--home", h, "runs", "list", "--json"))["runs"]) == 3
    assert len(as_json(ok("runs", "list", "--json", env={"OPSLOOP_HOME": h}))["runs"]) == 3
    # A command's own --home wins over the global one and over the environment.
    other = str(tmp_path / "other")
    assert as_json(ok("--home", h, "runs", "list", "--json", "--home", other))["runs"] == []
    assert (
        as_json(ok("runs", "list", "--json", "--home", other, env={"OPSLOOP_HOME": h}))["runs"]
        == []
    )


def test_commands_talk_to_a_server(seeded: dict[str, Any]) -> None:
    with live_server(Settings(home=Path(seeded["home"]))) as srv:
        names = [
            e["name"]
            for e in as_json(ok("--tracking-uri", srv.url, "experiments", "list", "--json"))
        ]
        assert names == ["churn"]
        ok("experiments", "create", "from-cli", env={"OPSLOOP_TRACKING_URI": srv.url})
        runs = as_json(
            ok(
                "runs",
                "list",
                "-o",
                "metrics.f1 DESC",
                "--json",
                env={"OPSLOOP_TRACKING_URI": srv.url},
            )
        )["runs"]
        assert runs[0]["name"] == "mlp-a"
    with Client(home=seeded["home"]) as c:
        assert c.get_experiment_by_name("from-cli").name == "from-cli"


# ---------------------------------------------------------------- db


def test_db_current_and_upgrade(home: Path) -> None:
    h = str(home)
    before = as_json(ok("db", "current", "--json", "--home", h))
    assert before["current"] is None and before["state"].startswith("empty")
    out = ok("db", "upgrade", "--home", h).stdout
    assert "upgraded from an empty database" in out and SCHEMA_HEAD in out
    after = as_json(ok("db", "current", "--json", "--home", h))
    assert (after["current"], after["state"]) == (SCHEMA_HEAD, "up to date")
    assert "already at revision" in ok("db", "upgrade", "--home", h).stdout


def _previous_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from opsloop.store.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = script.get_revision(SCHEMA_HEAD).down_revision
    return down if isinstance(down, str) else None


def _old_schema(home: Path, kind: str = "base") -> str:
    """A database that needs ``opsloop db upgrade``, made by migrating a real one back.

    ``base``: taken back past the first revision, plus a stray table so it is
    not empty (an empty database would just be initialised). ``previous``:
    one revision behind head.
    """
    url = Settings(home=home).resolved_database_url
    upgrade(url)
    if kind == "previous":
        previous = _previous_revision()
        if previous is None:
            pytest.skip("the schema has a single revision")
        downgrade(url, previous)
        return url
    downgrade(url, "base")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users_data (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    return url


def _stored_revisions(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    return list(rows)


@pytest.mark.parametrize("kind", ["base", "previous"])
def test_db_upgrade_brings_an_old_schema_to_head(home: Path, kind: str) -> None:
    _old_schema(home, kind)
    state = as_json(ok("db", "current", "--json", "--home", str(home)))["state"]
    assert "opsloop db upgrade" in state
    ok("db", "upgrade", "--home", str(home))
    assert as_json(ok("db", "current", "--json", "--home", str(home)))["current"] == SCHEMA_HEAD


@pytest.mark.postgres
def test_db_and_experiments_on_postgresql(pg_url: str) -> None:
    out = ok("db", "upgrade", "--database-url", pg_url).stdout
    assert "upgraded from an empty database" in out and SCHEMA_HEAD in out
    assert (
        as_json(ok("db", "current", "--json", "--database-url", pg_url))["current"] == SCHEMA_HEAD
    )
    ok("--tracking-uri", pg_url, "experiments", "create", "on-pg")
    listed = as_json(ok("--tracking-uri", pg_url, "experiments", "list", "--json"))
    assert [e["name"] for e in listed] == ["on-pg"]


def test_db_upgrade_refuses_a_newer_schema(home: Path) -> None:
    url = Settings(home=home).resolved_database_url
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'fffffffffff9'"))
    engine.dispose()
    assert_error(cli("db", "upgrade", "--home", str(home)), 2, "SCHEMA_OUT_OF_DATE", "newer")


# ---------------------------------------------------------------- server


@pytest.mark.parametrize("kind", ["base", "previous"])
def test_server_refuses_an_old_schema(home: Path, kind: str) -> None:
    url = _old_schema(home, kind)
    stored = _stored_revisions(url)
    result = cli("server", "--home", str(home), "--port", str(free_port()))
    assert_error(result, 2, "SCHEMA_OUT_OF_DATE", "opsloop db upgrade")
    assert "opsloop server:" not in result.stdout  # it never claimed to be listening
    # Nothing was migrated behind the user's back.
    assert _stored_revisions(url) == stored


def test_server_refuses_a_busy_port(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("server", "--home", str(home), "--port", str(port))
    assert_error(result, 1, "UNAVAILABLE", str(port), "--port")


def _start_server(home: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsloop.cli",
            "server",
            "--home",
            str(home),
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def _health(url: str) -> Any:
    try:
        r = httpx.get(f"{url}/api/v1/health", timeout=2)
        return r.json() if r.status_code == 200 else None
    except httpx.TransportError:
        return None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_process_serves_and_stops_cleanly(home: Path, sig: signal.Signals) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_server(home, port)
    try:
        health = wait_until(lambda: proc.poll() is None and _health(url), START_TIMEOUT_S, "health")
        assert health["status"] == "ok" and health["schema"] == SCHEMA_HEAD
        ui = httpx.get(f"{url}/ui/")
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        created = httpx.post(f"{url}/api/v1/experiments", json={"name": "via-api"})
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{url}/api/v1/experiments").json()
        assert "via-api" in json.dumps(listed)
        assert httpx.get(f"{url}/api/v1/docs").status_code == 200
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"opsloop server: {url}  (UI at /ui/, API docs at /api/v1/docs)" in out
    assert "opsloop server: stopped" in out
    assert "Traceback" not in err
    # The empty home was initialised, and what the API wrote is on disk.
    with Client(home=home) as c:
        assert c.get_experiment_by_name("via-api").name == "via-api"


def test_server_with_several_workers(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_server(home, port, "--workers", "2")
    try:
        wait_until(lambda: proc.poll() is None and _health(url), START_TIMEOUT_S, "health")
        # Both workers serve the same home: writes through one are read through the others.
        for i in range(6):
            r = httpx.post(
                f"{url}/api/v1/experiments", json={"name": f"w{i}"}, headers={"Connection": "close"}
            )
            assert r.status_code == 201, r.text
        names = {e["name"] for e in httpx.get(f"{url}/api/v1/experiments").json()["experiments"]}
        assert {f"w{i}" for i in range(6)} <= names
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "opsloop server: stopped" in out
    assert "Traceback" not in err
    # The workers got the parent's --home: the experiments are in that folder's database.
    with Client(home=home) as c:
        assert {e.name for e in c.list_experiments()} >= {f"w{i}" for i in range(6)}
