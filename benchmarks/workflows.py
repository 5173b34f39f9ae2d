"""Workflow overhead per step, and cache lookups with 100,000 entries.

    .venv/bin/python benchmarks/workflows.py                 # small and large
    .venv/bin/python benchmarks/workflows.py --steps 10 --entries 1000

1. **Per-step overhead**: a chain of N trivial steps (each adds one to a list
   of 1,000 numbers) run as a workflow, against calling the same functions
   directly in the same process (the baseline). Cold: every step runs (key,
   child run, output stored as an artifact, cache entry); warm: every step a
   cache hit (key, lookup, output read back and checked, child run). The
   overhead per step is (workflow - direct) / N. Also the ``process``
   executor cold (a forked process per attempt).
2. **Cache lookups** at 1,000 and at 100,000 entries: the median of a lookup
   by key (hit and miss), and a whole warm workflow run with the big table.
3. **Fingerprint**: walking a step's code (first walk in a process, then again).

Prints a table; asserts nothing. Report the figures with ``cat /proc/loadavg``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opsloop import Client
from opsloop.store import now_ms
from opsloop.workflows import Workflows, code_fingerprint, step, workflow


def _add_one(xs: list[int]) -> list[int]:
    return [x + 1 for x in xs]


@step
def seed(n: int) -> list[int]:
    return list(range(n))


@step
def inc(xs: list[int]) -> list[int]:
    return _add_one(xs)


def chain_of(n_steps: int) -> object:
    @workflow(name=f"chain{n_steps}")
    def chain(n: int = 1000):  # type: ignore[no-untyped-def]
        xs = seed(n)
        for _ in range(n_steps - 1):
            xs = inc(xs)
        return xs

    return chain


def direct(n_steps: int, n: int = 1000) -> list[int]:
    xs = seed.fn(n)
    for _ in range(n_steps - 1):
        xs = inc.fn(xs)
    return xs


def _median(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def overhead(wf: Workflows, n_steps: int, rounds: int) -> list[tuple[str, float, float]]:
    chain = chain_of(n_steps)
    base = _median(lambda: direct(n_steps), 7)
    rows = []
    cold = []
    for r in range(rounds):  # a new n each round: every step misses
        t0 = time.perf_counter()
        wf.run(chain, {"n": 1000 + r})  # type: ignore[arg-type]
        cold.append(time.perf_counter() - t0)
    rows.append((f"{n_steps} steps, cold (all run)", statistics.median(cold), base))
    warm = _median(lambda: wf.run(chain, {"n": 1000}), rounds)  # type: ignore[arg-type]
    rows.append((f"{n_steps} steps, warm (all cached)", warm, base))
    proc = []
    for r in range(max(1, rounds // 2)):
        t0 = time.perf_counter()
        wf.run(chain, {"n": 5000 + r}, executor="process")  # type: ignore[arg-type]
        proc.append(time.perf_counter() - t0)
    rows.append((f"{n_steps} steps, cold, process executor", statistics.median(proc), base))
    return rows


FILLED = [0]


def fill_cache(client: Client, wf: Workflows, entries: int) -> None:
    from opsloop.workflows._tables import workflow_cache  # benchmark only: bulk insert

    run = client.create_run(experiment_name="bench-cache", name="holder")
    have = FILLED[0]
    FILLED[0] = max(have, entries)
    rows = []
    now = now_ms()
    for i in range(have, entries):
        key = hashlib.sha256(f"entry-{i}".encode()).hexdigest()
        rows.append(
            {
                "key": key,
                "step": f"bench:step{i % 50}",
                "run_id": run.id,
                "outputs_json": {
                    "return": {"path": "outputs/return.pkl", "digest": "sha256:" + key, "size": 10}
                },
                "created_at": now,
                "hits": 0,
            }
        )
        if len(rows) == 10_000:
            with client.context.database.write() as conn:
                conn.execute(workflow_cache.insert(), rows)
            rows = []
    if rows:
        with client.context.database.write() as conn:
            conn.execute(workflow_cache.insert(), rows)


def lookups(wf: Workflows, entries: int) -> tuple[float, float]:
    keys = [hashlib.sha256(f"entry-{i}".encode()).hexdigest() for i in range(0, entries, 97)]
    missing = [hashlib.sha256(f"missing-{i}".encode()).hexdigest() for i in range(len(keys))]
    for k in keys[:20]:
        wf.cache.get(k)
    t0 = time.perf_counter()
    for k in keys[:300]:
        assert wf.cache.get(k) is not None
    hit = (time.perf_counter() - t0) / min(300, len(keys))
    t0 = time.perf_counter()
    for k in missing[:300]:
        assert wf.cache.get(k) is None
    miss = (time.perf_counter() - t0) / min(300, len(missing))
    return hit, miss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="*", default=[10, 50])
    ap.add_argument("--entries", type=int, nargs="*", default=[1_000, 100_000])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(
        f"load average: {Path('/proc/loadavg').read_text().strip()}  python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as home, Client(home=home) as client:
        wf = Workflows(client)
        t0 = time.perf_counter()
        fp = code_fingerprint([inc])
        first = time.perf_counter() - t0
        again = _median(lambda: code_fingerprint([inc]), 20)
        print(
            f"fingerprint of a step: first {first * 1e3:.1f} ms (reads installed packages once),"
            f" then {again * 1e3:.2f} ms; walked {fp.objects}"
        )
        print(f"{'case':44} {'workflow s':>10} {'direct s':>9} {'per step ms':>11}")
        for n in args.steps:
            for name, t, base in overhead(wf, n, args.rounds):
                per = (t - base) / n * 1e3
                print(f"{name:44} {t:10.3f} {base:9.5f} {per:11.2f}")
        print(f"{'cache entries':>14} {'hit ms':>8} {'miss ms':>8} {'warm 10-step run s':>19}")
        chain10 = chain_of(10)
        for entries in sorted(args.entries):
            fill_cache(client, wf, entries)
            hit, miss = lookups(wf, entries)
            warm = _median(lambda: wf.run(chain10, {"n": 1000}), 3)  # type: ignore[arg-type]
            print(f"{wf.cache.count():14,d} {hit * 1e3:8.3f} {miss * 1e3:8.3f} {warm:19.3f}")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    os.environ.setdefault("OPSLOOP_NO_SYSMETRICS", "1")
    main()
