"""Several processes write one SQLite home at once and none fails with "database is locked".

Each worker is a real interpreter; they wait on a file barrier so they start
within a millisecond of each other, then create experiments and runs, log
params, tags, tens of thousands of metric points with frequent flushes and a
background flusher, upload artifacts and search, all at the same time. Once
against a home whose schema exists, once against an empty home, where every
worker races to create the schema.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from tests._procs import CONCURRENT_WORKER, LineReader, kill, run_script, start_script

WORKERS = 6
RUNS = 4
POINTS = 5_000  # per run: 20k points per worker


def run_workers(home: Path, tmp_path: Path) -> list[dict[str, Any]]:
    go = tmp_path / "go"
    procs = [
        start_script(CONCURRENT_WORKER, home, str(i), go, str(RUNS), str(POINTS))
        for i in range(WORKERS)
    ]
    try:
        readers = [LineReader(p.stdout) for p in procs]  # type: ignore[arg-type]
        for r, p in zip(readers, procs, strict=True):
            line = r.next()
            assert line == "ready", (line, p.stderr.read() if p.stderr else "")
        go.touch()  # every worker is imported and polling: they start together
        reports = []
        for r, p in zip(readers, procs, strict=True):
            rc = p.wait(timeout=240)
            err = p.stderr.read() if p.stderr else ""
            assert "database is locked" not in err.lower()
            assert rc == 0, err[-3000:]
            assert "Traceback" not in err, err[-3000:]
            lines = r.rest()
            assert len(lines) == 1, lines
            reports.append(json.loads(lines[0]))
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                kill(p)
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


def check_everything_stored(home: Path, reports: list[dict[str, Any]]) -> None:
    # The workers really overlapped: the last one started before the first one ended.
    assert max(r["start"] for r in reports) < min(r["end"] for r in reports)
    # Racing get_or_create_experiment("shared") made one experiment, not five.
    assert len({r["shared"] for r in reports}) == 1
    shared = reports[0]["shared"]

    con = sqlite3.connect(home / "opsloop.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()

    with Client(home=home) as c:
        names = [e.name for e in c.list_experiments()]
        assert names.count("shared") == 1
        assert {f"worker-{i}" for i in range(WORKERS)} <= set(names)
        expected_shared = set()
        for report in reports:
            for run_id, info in report["runs"].items():
                if info["experiment_id"] == shared:
                    expected_shared.add(run_id)
                run = c.get_run(run_id)
                assert run.status == "FINISHED"
                assert run.params["worker"] == str(info["worker"])
                assert run.params["r"] == str(info["r"])
                assert {"p0", "p2500"} <= set(run.params)
                assert run.tags["progress"] == "2500"
                assert run.metrics["loss"].count == info["points"]
                h = c.get_metric_history(run_id, "loss")
                assert h.steps == list(range(info["points"]))
                assert h.values == [i * 0.5 + info["worker"] for i in range(info["points"])]
                text = c.read_artifact(run_id, f"notes/w{info['worker']}-r{info['r']}.txt")
                assert text == f"worker {info['worker']} run {info['r']}\n".encode() * 50
        stored_shared = {r.id for r in c.iter_runs([shared])}
        assert stored_shared == expected_shared
        assert len(stored_shared) == WORKERS * ((RUNS + 1) // 2)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_processes_share_a_sqlite_home(home: Path, tmp_path: Path) -> None:
    Client(home=home).close()  # the schema exists before the workers start
    reports = run_workers(home, tmp_path)
    check_everything_stored(home, reports)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_processes_race_to_create_the_schema(home: Path, tmp_path: Path) -> None:
    assert not (home / "opsloop.db").exists()
    reports = run_workers(home, tmp_path)
    check_everything_stored(home, reports)


def test_schema_creation_race_many_processes(tmp_path: Path) -> None:
    """Eight interpreters open the same empty home at the same moment."""
    home = tmp_path / "empty-home"
    go = tmp_path / "go-schema"
    code = (
        "import sys, time; from pathlib import Path; from opsloop import Client\n"
        "go = Path(sys.argv[2]); print('ready', flush=True)\n"
        "while not go.exists(): time.sleep(0.001)\n"
        "c = Client(home=sys.argv[1]); r = c.create_run(experiment_name='race')\n"
        "c.log_metric(r.id, 'm', 1.0); c.close(); print(r.id, flush=True)\n"
    )
    procs = [start_script(code, home, go) for _ in range(8)]
    readers = [LineReader(p.stdout) for p in procs]  # type: ignore[arg-type]
    try:
        for r in readers:
            assert r.next() == "ready"
        go.touch()
        run_ids = []
        for r, p in zip(readers, procs, strict=True):
            p.wait(timeout=120)
            err = p.stderr.read() if p.stderr else ""
            assert p.returncode == 0, err[-3000:]
            assert "locked" not in err.lower()
            run_ids.append(r.rest()[0])
    finally:
        for p in procs:
            if p.poll() is None:
                kill(p)
    with Client(home=home) as c:
        assert [e.name for e in c.list_experiments()].count("race") == 1
        for rid in run_ids:
            assert c.get_metric_history(rid, "m").values == [1.0]


def test_worker_script_reports_its_failures(home: Path, tmp_path: Path) -> None:
    """The harness above would notice a failing worker: a locked database must
    surface as a non-zero exit with the message on stderr, not be swallowed."""
    Client(home=home).close()
    con = sqlite3.connect(home / "opsloop.db", isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")  # hold the write lock so no worker can write
        code = (
            "import sys; from opsloop import Client, Settings\n"
            "from opsloop.store import _engine\n"
            "_engine._BUSY_TIMEOUT_MS = 200\n"
            "c = Client(settings=Settings(home=sys.argv[1]))\n"
            "c.create_experiment('blocked')\n"
        )
        done = run_script(code, home)
        assert done.returncode != 0
        assert "locked" in done.stderr.lower()
    finally:
        con.execute("ROLLBACK")
        con.close()
