"""SIGKILL loses no point that a flush confirmed, embedded or through a server.

Real processes, real SIGKILL, real SQLite files: a training process is killed
at assorted moments (between flushes and in the middle of one), a server is
killed under a client, and a proxy loses the server's replies after the
server stored the batch. Afterwards every confirmed point is stored exactly
once, the database passes ``PRAGMA integrity_check``, and it takes new writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from opsloop import Client, Settings
from opsloop.errors import FlushError
from tests._procs import (
    CONFIRMING_WRITER,
    FaultyProxy,
    LineReader,
    ServerProcess,
    kill,
    start_script,
    writer_value,
)

pytestmark = pytest.mark.timeout(240)


def integrity(home: Path) -> str:
    con = sqlite3.connect(home / "opsloop.db", timeout=60)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def assert_prefix_stored(c: Client, run_id: str, confirmed: int, *, exact: bool = False) -> int:
    """Steps 0..confirmed-1 are stored once each with the values logged; return the total."""
    loss = c.get_metric_history(run_id, "loss")
    acc = c.get_metric_history(run_id, "acc")
    n = len(loss.steps)
    if exact:
        assert n == confirmed
    else:
        assert n >= confirmed, f"{confirmed} points were confirmed but only {n} are stored"
    # No step twice and no gap: a stored point is a logged point, stored once.
    assert loss.steps == list(range(n))
    assert loss.values == [writer_value(i) for i in range(n)]
    assert acc.steps == list(range(len(acc.steps)))
    assert len(acc.steps) >= confirmed
    assert acc.values == [1.0 - writer_value(i) for i in range(len(acc.steps))]
    # The latest-value summary was written in the same transaction as the points.
    run = c.get_run(run_id)
    assert run.metrics["loss"].count == n
    assert run.metrics["loss"].step == n - 1
    return n


def assert_still_writable(c: Client, run_id: str, next_step: int) -> None:
    c.log_batch(run_id, metrics=[("loss", writer_value(next_step), next_step, 1)])
    assert c.get_metric_history(run_id, "loss").steps[-1] == next_step
    fresh = c.create_run(experiment_name="after-crash", params={"ok": 1})
    c.log_metric(fresh.id, "x", 1.5)
    assert c.get_metric_history(fresh.id, "x").values == [1.5]


# ---------------------------------------------------------------- training process


@pytest.mark.parametrize(
    ("confirmations", "delay_s", "interval_s"),
    [
        (1, 0.0, 3600.0),  # right after a flush returned
        (3, 0.004, 3600.0),  # a few ms on: logging, or inside the next flush
        (5, 0.013, 0.02),  # background flushes racing the explicit ones
        (8, 0.027, 0.02),
    ],
)
def test_sigkill_training_process_keeps_confirmed_points(
    home: Path, confirmations: int, delay_s: float, interval_s: float
) -> None:
    with Client(home=home) as c:
        run_id = c.create_run(experiment_name="crash").id

    proc = start_script(CONFIRMING_WRITER, home, run_id, "3000", str(interval_s))
    out = LineReader(proc.stdout)  # type: ignore[arg-type]
    try:
        first = out.next()
        if first != "ready":
            kill(proc)
            pytest.fail(f"writer did not start: {first!r} {proc.stderr.read()}")  # type: ignore[union-attr]
        seen = 0
        last = 0
        while seen < confirmations:
            line = out.next()
            assert line is not None and line.startswith("confirmed "), line
            last = int(line.split()[1])
            seen += 1
        if delay_s:
            time.sleep(delay_s)
    finally:
        kill(proc)
    # Confirmations printed before the kill landed count too.
    for line in out.rest():
        last = max(last, int(line.split()[1]))
    assert proc.returncode == -9
    assert last >= confirmations * 3000

    assert integrity(home) == "ok"
    with Client(home=home) as c:
        total = assert_prefix_stored(c, run_id, last)
        assert_still_writable(c, run_id, total)
    assert integrity(home) == "ok"


# ---------------------------------------------------------------- server


def test_sigkill_server_keeps_confirmed_and_buffered_points(home: Path, tmp_path: Path) -> None:
    """Confirmed points survive the server's SIGKILL; unconfirmed ones wait in the
    client, make ``flush`` raise, and are stored exactly once after a restart."""
    server = ServerProcess(home).start()
    settings = Settings(home=tmp_path / "client", flush_interval_s=3600, http_retries=0)
    c = Client(server.url, settings=settings)
    try:
        run_id = c.create_run(experiment_name="server-crash").id
        confirmed = 0
        for _ in range(3):
            for i in range(confirmed, confirmed + 4000):
                c.log_metrics(run_id, {"loss": writer_value(i), "acc": 1.0 - writer_value(i)}, i)
            assert c.flush() == 8000
            confirmed += 4000
        for i in range(confirmed, confirmed + 2500):
            c.log_metrics(run_id, {"loss": writer_value(i), "acc": 1.0 - writer_value(i)}, i)
        assert c.pending_points == 5000

        server.kill()
        with pytest.raises(FlushError) as err:
            c.flush()
        assert err.value.details["pending_points"] == 5000
        assert c.pending_points == 5000
        assert integrity(home) == "ok"
        with Client(home=home) as direct:
            assert_prefix_stored(direct, run_id, confirmed, exact=True)

        server = ServerProcess(home, port=server.port).start()
        assert c.flush() == 5000
        assert c.pending_points == 0
        assert_prefix_stored(c, run_id, confirmed + 2500, exact=True)
        assert_still_writable(c, run_id, confirmed + 2500)
    finally:
        with contextlib.suppress(FlushError):  # only when the test failed midway
            c.close()
        server.stop()
    assert integrity(home) == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [0.05, 0.4, 1.2])
def test_sigkill_server_during_a_flush(home: Path, tmp_path: Path, kill_after_s: float) -> None:
    """Killed while batches are in flight: whatever the server had committed and
    whatever it had not, the retry after a restart stores every point once."""
    server = ServerProcess(home).start()
    settings = Settings(home=tmp_path / "client", flush_interval_s=3600, http_retries=0)
    c = Client(server.url, settings=settings)
    try:
        run_id = c.create_run(experiment_name="mid-flush").id
        n = 125_000  # x2 keys = 3 batches of up to 100k points
        for i in range(n):
            c.log_metrics(run_id, {"loss": writer_value(i), "acc": 1.0 - writer_value(i)}, i)
        outcome: list[BaseException | int] = []

        def flush() -> None:
            try:
                outcome.append(c.flush())
            except BaseException as exc:
                outcome.append(exc)

        t = threading.Thread(target=flush)
        t.start()
        time.sleep(kill_after_s)
        server.kill()
        t.join(timeout=120)
        assert not t.is_alive()
        if isinstance(outcome[0], int):
            assert c.pending_points == 0  # it finished before the kill
        else:
            assert isinstance(outcome[0], FlushError)
            assert c.pending_points == outcome[0].details["pending_points"] > 0
        assert integrity(home) == "ok"

        server = ServerProcess(home, port=server.port).start()
        c.flush()
        assert c.pending_points == 0
        assert_prefix_stored(c, run_id, n, exact=True)
    finally:
        with contextlib.suppress(FlushError):
            c.close()
        server.stop()


def test_lost_replies_do_not_duplicate_points(home: Path, tmp_path: Path) -> None:
    """The server stores a batch but the answer never arrives, three times over
    (first try and two retries): the batch id makes every repeat a no-op."""
    with ServerProcess(home) as server:
        proxy = FaultyProxy(server.port)
        settings = Settings(home=tmp_path / "client", flush_interval_s=3600, http_retries=2)
        c = Client(proxy.url, settings=settings)
        try:
            run_id = c.create_run(experiment_name="lost-replies").id
            for i in range(3000):
                c.log_metrics(run_id, {"loss": writer_value(i), "acc": 1.0 - writer_value(i)}, i)

            proxy.mode = "drop_reply"
            with pytest.raises(FlushError):
                c.flush()
            assert proxy.dropped == 3
            assert c.pending_points == 6000
            with Client(server.url) as direct:
                # Stored once although it arrived three times.
                assert_prefix_stored(direct, run_id, 3000, exact=True)

            proxy.mode = "pass"
            c.flush()
            assert c.pending_points == 0
            assert_prefix_stored(c, run_id, 3000, exact=True)
        finally:
            c.close()
            proxy.close()
