"""Retention: what deleting in bounded batches costs, and what it spares concurrent writers.

    .venv/bin/python benchmarks/retention.py            # 20,000 old traces (40,000 spans)
    .venv/bin/python benchmarks/retention.py --quick    # 4,000

Seeds one SQLite home with old traces (two spans each, with inputs and
outputs) and as many old prediction rows, copies the database file once per
case, then removes the old traces three ways on identical copies:

- ``unbounded``: ``TraceService.purge`` (every old trace in one transaction,
  the baseline);
- ``batch 1000`` and ``batch 10000``: the retention run's hook, one bounded
  transaction per call (``opsloop.tracing._retention.purge_traces``), back to
  back, or in the server's loop (``governance._retention.drain``: a pause as
  long as the batch took, 20-500 ms, between two batches).

While each runs, a writer thread appends a label row every 5 ms; the table
prints total time, rows/s, the longest single transaction and the writer's
worst and 99th-percentile wait. Then times emptying span bodies and deleting
prediction rows in batches of 1000.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from opsloop import Client
from opsloop.governance._retention import drain
from opsloop.monitoring._retention import purge_predictions
from opsloop.monitoring._service import MonitoringService
from opsloop.settings import Settings
from opsloop.store import Database
from opsloop.tracing._retention import empty_span_bodies, purge_traces
from opsloop.tracing._service import TraceService

DAY_MS = 86_400_000


def seed(home: Path, n: int) -> int:
    """``n`` traces and ``n`` prediction rows, 60 days old; returns the cut-off (30 days)."""
    now = int(time.time() * 1000)
    t0_us = (now - 60 * DAY_MS) * 1000
    with Client(settings=Settings(home=home)) as c:
        for lo in range(0, n, 1000):
            spans = [
                {"trace_id": f"{i + 1:032x}", "span_id": f"{k + 1:016x}", "name": "chat",
                 "start_us": t0_us + i, "end_us": t0_us + i + 500,
                 "inputs": {"prompt": "x" * 200}, "outputs": {"text": "y" * 200}}
                for i in range(lo, min(n, lo + 1000)) for k in range(2)
            ]  # fmt: skip
            c.tracing.ingest(spans)
            rows = [
                {"request_id": f"r{i}", "deployment": "d", "inputs": {"x": i}, "output": i,
                 "ts": now - 60 * DAY_MS}
                for i in range(lo, min(n, lo + 1000))
            ]  # fmt: skip
            c.monitoring.ingest(rows)
    return now - 30 * DAY_MS


def under_writes(
    db: Database, work: Callable[[], list[float]]
) -> tuple[float, list[float], list[float]]:
    """Run ``work`` (returning each transaction's seconds) beside a writer; its waits too."""
    svc, stop, waits = MonitoringService(db), threading.Event(), []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            svc.add_labels([{"request_id": f"w{i}", "label": 1}])
            waits.append(time.perf_counter() - t)
            i += 1
            time.sleep(0.005)

    th = threading.Thread(target=writer)
    th.start()
    t0 = time.perf_counter()
    try:
        txs = work()
        total = time.perf_counter() - t0
    finally:
        stop.set()
        th.join()
    return total, txs, waits


def batched(
    fn: Callable[[Database, int, int], int], db: Database, cut: int, batch: int, pause: bool = True
) -> Callable[[], list[float]]:
    """The retention run's loop (``drain``: a pause between batches), or back to back."""

    def work() -> list[float]:
        if pause:
            return drain(fn, db, cut, batch)[1]
        txs = []
        while True:
            t = time.perf_counter()
            n = fn(db, cut, batch)
            txs.append(time.perf_counter() - t)
            if n < batch:
                return txs

    return work


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    n = 4_000 if ap.parse_args().quick else 20_000
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seed"
        t = time.perf_counter()
        cut = seed(seeded, n)
        console.print(f"seeded {n:,} traces ({2 * n:,} spans) and {n:,} prediction rows "
                      f"in {time.perf_counter() - t:.1f} s")  # fmt: skip

        def copy(name: str) -> Database:
            home = Path(tmp) / name
            shutil.copytree(seeded, home)
            return Database(Settings(home=home).resolved_database_url)

        cases: list[tuple[str, Database, Callable[[Database], Callable[[], list[float]]]]] = [
            ("traces, unbounded (baseline)", copy("a"),
             lambda db: lambda: [_timed(lambda: TraceService(db, Settings()).purge(cut))]),
            ("traces, batch 1000, back to back", copy("b"),
             lambda db: batched(purge_traces, db, cut, 1000, pause=False)),
            ("traces, batch 1000 (server's loop)", copy("c"),
             lambda db: batched(purge_traces, db, cut, 1000)),
            ("traces, batch 10000 (server's loop)", copy("d"),
             lambda db: batched(purge_traces, db, cut, 10_000)),
            ("span bodies, batch 1000, back to back", copy("e"),
             lambda db: batched(empty_span_bodies, db, cut, 1000, pause=False)),
            ("span bodies, batch 1000 (server's loop)", copy("f"),
             lambda db: batched(empty_span_bodies, db, cut, 1000)),
            ("prediction rows, batch 1000 (server's loop)", copy("g"),
             lambda db: batched(purge_predictions, db, cut, 1000)),
        ]  # fmt: skip
        table = Table(title=f"retention on SQLite, {n:,} old traces; a writer every 5 ms")
        for col in ("case", "total s", "rows/s", "longest tx ms", "writer max ms", "writer p99 ms"):
            table.add_column(col, justify="left" if col == "case" else "right")
        for name, db, make in cases:
            total, txs, waits = under_writes(db, make(db))
            rows = n * 2 if "bodies" in name else n
            p99 = (
                statistics.quantiles(waits, n=100, method="inclusive")[98]
                if len(waits) > 1
                else waits[0]
            )
            table.add_row(name, f"{total:.2f}", f"{rows / total:,.0f}", f"{max(txs) * 1000:.0f}",
                          f"{max(waits) * 1000:.0f}", f"{p99 * 1000:.1f}")  # fmt: skip
            db.dispose()
        console.print(table)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
