"""Metric batching: logging never waits on storage, and no point is ever dropped silently.

Points are buffered in memory and written in the background, at run end, at
interpreter exit and on ``flush()``. A flush that cannot write raises
``FlushError`` and keeps the points for the next one; at exit they are saved
to a JSONL file. Failures come from real sources: another connection holding
SQLite's write lock, a proxy in front of a real server that refuses
connections, a server port where nothing listens.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import opsloop
from opsloop import Client, Settings
from opsloop.errors import FlushError, InvalidArgument
from opsloop.sdk import _fluent
from tests._procs import FaultyProxy, free_port, run_script, wait_until
from tests.conftest import live_server

RUN_ID_UNKNOWN = "0123456789abcdef0123456789abcdef"


def stored(home: Path, run_id: str, key: str = "loss") -> list[int]:
    """The steps of ``key`` as stored, read through a separate client (no shared buffer)."""
    with Client(home=home) as reader:
        return reader.get_metric_history(run_id, key).steps


def client(home: Path, **kw: object) -> Client:
    return Client(settings=Settings(home=home, **kw))  # type: ignore[arg-type]


def flush_threads() -> int:
    return sum(t.name == "opsloop-metric-flush" for t in threading.enumerate())


@pytest.fixture
def fluent(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fluent API pointed at ``home``, with background flushing off (interval 1 h),
    so whatever gets written is written by run end or an explicit flush."""
    monkeypatch.setenv("OPSLOOP_FLUSH_INTERVAL_S", "3600")
    opsloop.set_tracking_uri(str(home))
    try:
        yield home
    finally:
        while opsloop.active_run() is not None:
            opsloop.end_run()
        opsloop.set_tracking_uri(None)
        _fluent._experiment_name = None


# ---------------------------------------------------------------- not blocking


def test_log_metric_buffers_until_flush(home: Path) -> None:
    c = client(home, flush_interval_s=3600)
    try:
        run = c.create_run(experiment_name="buf")
        for i in range(10_000):
            c.log_metric(run.id, "loss", i / 10, step=i)
        assert c.pending_points == 10_000
        assert stored(home, run.id) == []  # nothing written yet
        assert c.flush() == 10_000
        assert c.pending_points == 0
        assert stored(home, run.id) == list(range(10_000))
        assert c.flush() == 0
    finally:
        c.close()


def test_logging_does_not_wait_for_a_locked_database(home: Path) -> None:
    """Another process holds SQLite's write lock: log_metric still returns at once
    (a write would wait up to the 120 s busy timeout), and the points are written
    once the lock is released."""
    c = client(home, flush_interval_s=0.05)
    run = c.create_run(experiment_name="locked")
    con = sqlite3.connect(home / "opsloop.db", isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        t0 = time.monotonic()
        for i in range(5_000):
            c.log_metric(run.id, "loss", float(i), step=i)
        assert time.monotonic() - t0 < 10  # a blocking write would take 120 s
        time.sleep(0.2)  # the background flusher is now waiting for the lock
        assert c.pending_points == 5_000
    finally:
        con.execute("ROLLBACK")
        con.close()
    wait_until(lambda: c.pending_points == 0, what="the background flush")
    assert stored(home, run.id) == list(range(5_000))
    c.close()


def test_background_flush_after_interval(home: Path) -> None:
    c = client(home, flush_interval_s=0.05)
    try:
        run = c.create_run(experiment_name="bg")
        for i in range(500):
            c.log_metric(run.id, "loss", float(i))
        wait_until(lambda: len(stored(home, run.id)) == 500, what="background flush")
        assert c.pending_points == 0
    finally:
        c.close()


def test_background_flush_when_buffer_fills(home: Path) -> None:
    c = client(home, flush_interval_s=3600, flush_max_points=1_000)
    try:
        run = c.create_run(experiment_name="full")
        for i in range(999):
            c.log_metric(run.id, "loss", float(i))
        time.sleep(0.2)
        assert stored(home, run.id) == []  # under the threshold, interval 1 h: waits
        c.log_metric(run.id, "loss", 999.0)
        wait_until(lambda: len(stored(home, run.id)) == 1_000, what="size-triggered flush")
    finally:
        c.close()


def test_concurrent_threads_get_unique_steps(home: Path) -> None:
    c = client(home, flush_interval_s=0.01)
    try:
        run = c.create_run(experiment_name="threads")
        threads = [
            threading.Thread(
                target=lambda: [c.log_metric(run.id, "loss", 1.0) for _ in range(5_000)]
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.flush()
        assert stored(home, run.id) == list(range(20_000))
    finally:
        c.close()


def test_flush_one_run_leaves_the_others_buffered(home: Path) -> None:
    c = client(home, flush_interval_s=3600)
    try:
        a = c.create_run(experiment_name="two").id
        b = c.create_run(experiment_name="two").id
        for i in range(100):
            c.log_metric(a, "loss", float(i))
            c.log_metric(b, "loss", float(i))
        assert c.flush(a) == 100
        assert c.pending_points == 100
        assert len(stored(home, a)) == 100
        assert stored(home, b) == []
    finally:
        c.close()
    assert len(stored(home, b)) == 100  # close() flushed the rest


def test_close_flushes_and_stops_the_thread(home: Path) -> None:
    before = flush_threads()
    c = client(home, flush_interval_s=3600)
    run = c.create_run(experiment_name="close")
    c.log_metric(run.id, "loss", 1.0)
    assert flush_threads() == before + 1
    c.close()
    assert flush_threads() == before
    assert stored(home, run.id) == [0]


# ---------------------------------------------------------------- run end and exit


def test_run_end_flushes(fluent: Path) -> None:
    with opsloop.start_run("ends", log_system_metrics=False) as run:
        for i in range(2_000):
            opsloop.log_metric("loss", float(i))
        assert opsloop.get_client().pending_points == 2_000
        assert stored(fluent, run.run_id) == []
    assert stored(fluent, run.run_id) == list(range(2_000))
    with Client(home=fluent) as reader:
        assert reader.get_run(run.run_id).status == "FINISHED"


def test_failed_run_end_flushes(fluent: Path) -> None:
    with pytest.raises(ZeroDivisionError), opsloop.start_run(log_system_metrics=False) as run:
        opsloop.log_metrics({"loss": 0.5, "acc": 0.9}, step=0)
        opsloop.log_metrics({"loss": 0.4, "acc": 0.95}, step=1)
        _ = 1 / 0
    assert stored(fluent, run.run_id) == [0, 1]
    with Client(home=fluent) as reader:
        r = reader.get_run(run.run_id)
        assert r.status == "FAILED"
        assert "ZeroDivisionError" in r.tags["opsloop.error"]
        assert r.metrics["acc"].value == 0.95


_EXIT_WRITER = """
import sys
from opsloop import Client, Settings
c = Client(settings=Settings(home=sys.argv[1], flush_interval_s=3600))
run = c.create_run(experiment_name="exit")
print(run.id, flush=True)
for i in range(3000):
    c.log_metric(run.id, "loss", i * 0.25, step=i)
assert c.pending_points == 3000
if sys.argv[2] == "raise":
    raise RuntimeError("training crashed")
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.parametrize(("how", "rc"), [("0", 0), ("3", 3), ("raise", 1)])
def test_interpreter_exit_flushes(home: Path, how: str, rc: int) -> None:
    done = run_script(_EXIT_WRITER, home, how)
    assert done.returncode == rc, done.stderr
    assert "could not flush" not in done.stderr
    run_id = done.stdout.split()[0]
    with Client(home=home) as reader:
        h = reader.get_metric_history(run_id, "loss")
    assert h.steps == list(range(3000))
    assert h.values == [i * 0.25 for i in range(3000)]


def test_exit_flush_failure_spills_to_jsonl(home: Path) -> None:
    """Nothing listens at the server address: at exit the points go to a file
    under ``home/unflushed/`` whose path is printed on stderr."""
    dead = f"http://127.0.0.1:{free_port()}"
    code = f"""
import sys
from opsloop import Client, Settings
c = Client(settings=Settings(home=sys.argv[1], tracking_uri={dead!r}, http_retries=0,
                             flush_interval_s=3600))
for i in range(250):
    c.log_metric({RUN_ID_UNKNOWN!r}, "loss", i / 4, step=i, timestamp=1_700_000_000_000 + i)
c.log_metric({RUN_ID_UNKNOWN!r}, "acc", float("inf"), step=0, timestamp=5)
"""
    done = run_script(code, home)
    assert done.returncode == 0, done.stderr
    assert "could not flush metric points at exit" in done.stderr
    files = list((home / "unflushed").glob("*.jsonl"))
    assert len(files) == 1
    assert str(files[0]) in done.stderr
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    loss = [r for r in rows if r["key"] == "loss"]
    assert [(r["step"], r["value"], r["timestamp"]) for r in loss] == [
        (i, i / 4, 1_700_000_000_000 + i) for i in range(250)
    ]
    assert {r["run_id"] for r in rows} == {RUN_ID_UNKNOWN}
    acc = [r for r in rows if r["key"] == "acc"]
    assert len(acc) == 1 and math.isinf(acc[0]["value"])


# ---------------------------------------------------------------- failing upstream


@pytest.fixture
def proxied(home: Path, tmp_path: Path) -> Iterator[FaultyProxy]:
    """A real server on ``home`` behind a proxy the test can make fail."""
    with live_server(Settings(home=home)) as server:
        proxy = FaultyProxy(server.port)
        try:
            yield proxy
        finally:
            proxy.close()


def test_failed_flush_raises_and_keeps_points(
    home: Path, tmp_path: Path, proxied: FaultyProxy
) -> None:
    settings = Settings(home=tmp_path / "c", flush_interval_s=3600, http_retries=0)
    c = Client(proxied.url, settings=settings)
    run = c.create_run(experiment_name="failing")
    for i in range(700):
        c.log_metric(run.id, "loss", float(i))

    proxied.mode = "refuse"
    for _ in range(2):  # a second failure keeps them too
        with pytest.raises(FlushError) as err:
            c.flush()
        assert err.value.code == "FLUSH_FAILED"
        assert err.value.details == {"pending_points": 700}
        assert c.pending_points == 700
    for i in range(700, 1000):
        c.log_metric(run.id, "loss", float(i))
    assert c.pending_points == 1000
    assert stored(home, run.id) == []

    proxied.mode = "pass"
    assert c.flush() == 1000
    assert c.pending_points == 0
    assert stored(home, run.id) == list(range(1000))
    c.close()


def test_background_failure_surfaces_in_next_flush(
    home: Path, tmp_path: Path, proxied: FaultyProxy
) -> None:
    settings = Settings(home=tmp_path / "c", flush_interval_s=0.05, http_retries=0)
    c = Client(proxied.url, settings=settings)
    run = c.create_run(experiment_name="bg-failing")
    proxied.mode = "refuse"
    for i in range(500):
        c.log_metric(run.id, "loss", float(i))
    wait_until(lambda: proxied.refused >= 2, what="two failed background flushes")
    assert c.pending_points == 500
    with pytest.raises(FlushError):
        c.flush()
    assert c.pending_points == 500

    proxied.mode = "pass"
    c.flush()  # the background thread may have got there first: both are fine
    assert c.pending_points == 0
    assert stored(home, run.id) == list(range(500))  # each point once
    c.close()


def test_close_raises_and_exit_saves_the_points(home: Path) -> None:
    """``close()`` whose flush fails raises; the points are not dropped but saved at exit."""
    dead = f"http://127.0.0.1:{free_port()}"
    code = f"""
import sys
from opsloop import Client, Settings
from opsloop.errors import FlushError
c = Client(settings=Settings(home=sys.argv[1], tracking_uri={dead!r}, http_retries=0))
c.log_metric({RUN_ID_UNKNOWN!r}, "loss", 0.5, step=7)
try:
    c.close()
except FlushError as exc:
    print("raised", exc.details["pending_points"], c.pending_points, flush=True)
"""
    done = run_script(code, home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["raised", "1", "1"]
    (path,) = (home / "unflushed").glob("*.jsonl")
    assert str(path) in done.stderr
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (row["run_id"], row["key"], row["value"], row["step"]) == (
        RUN_ID_UNKNOWN,
        "loss",
        0.5,
        7,
    )


# ---------------------------------------------------------------- validation


def test_invalid_points_raise_at_the_call_site(home: Path) -> None:
    c = client(home, flush_interval_s=3600)
    try:
        run = c.create_run(experiment_name="valid")
        for key in ("", "bad key!", "/abs", "a/../b", 3):
            with pytest.raises(InvalidArgument):
                c.log_metric(run.id, key, 1.0)  # type: ignore[arg-type]
        for value in ("0.5", None, b"1", [1.0]):
            with pytest.raises(InvalidArgument):
                c.log_metric(run.id, "loss", value)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            c.log_metric(run.id, "loss", 1.0, step="x")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            c.log_metric(run.id, "loss", 1.0, step=2**63)
        with pytest.raises(InvalidArgument):
            c.log_metrics(run.id, {"loss": 1.0, "acc": "high"})
        with pytest.raises(InvalidArgument):
            c.log_metrics(run.id, {"loss": 1.0}, timestamp="now")  # type: ignore[arg-type]
        assert c.pending_points == 0

        # Non-finite values are real measurements (a diverged loss): accepted.
        c.log_metric(run.id, "loss", float("nan"))
        c.log_metric(run.id, "loss", float("inf"))
        c.log_metric(run.id, "loss", 2)
        c.flush()
        h = c.get_metric_history(run.id, "loss")
        # The rejected calls above used no step numbers.
        assert h.steps == [0, 1, 2]
        assert h.values[0] is None  # NaN travels as null
        assert h.values[1:] == [math.inf, 2.0]
    finally:
        c.close()
