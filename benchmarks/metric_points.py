"""``MetricHistory.points()``: points built from the columns vs validating each one.

    .venv/bin/python benchmarks/metric_points.py              # 10k, 100k, 1M points
    .venv/bin/python benchmarks/metric_points.py --sizes 10000,100000 --json out.json

The baseline, measured in the same run, is what ``points()`` did before: one
validated ``MetricPoint(key=..., value=..., step=..., timestamp=...)`` per
point. Both sides get the same in-memory ``MetricHistory`` (one NaN in every
hundred values, as ``None``), so only building the points is timed.

- **cold**: the first call in a fresh Python process (pydantic's first use of
  the class, the fast path's one-time self-check, allocator growth), the
  median of ``--cold-runs`` processes.
- **warm**: the median of up to ``--repeat`` calls in one process after one
  untimed call (a slow side stops after 15 s of calls, with at least 3); each
  result is freed after its call is timed.

The goal is ``points()`` on 100,000 points under 50 ms, every time: each row's
note gives the median against the goal (``0.80x of 50 ms`` is 40 ms), the
share of timed calls under it and the slowest one, and the load average when
the row was measured (``/proc/loadavg``'s 1-minute figure; the timings are
wall time, so a busy machine shows in them).

Nothing here asserts a speed: the script prints figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Comparison, Figure, print_table, write_json

GOAL_MS_100K = 50.0


def history(n: int) -> Any:
    from opsloop.tracking.entities import MetricHistory

    return MetricHistory(
        run_id="r" * 32,
        key="loss",
        steps=list(range(n)),
        timestamps=[1_700_000_000_000 + 10 * i for i in range(n)],
        values=[None if i % 100 == 99 else 1.0 / (i + 1) for i in range(n)],
        total_points=n,
    )


def baseline_points(h: Any) -> list[Any]:
    """``points()`` as it was: one validated ``MetricPoint`` per point."""
    import math

    from opsloop.tracking.entities import MetricPoint

    return [
        MetricPoint(key=h.key, value=math.nan if v is None else v, step=s, timestamp=t)
        for s, t, v in zip(h.steps, h.timestamps, h.values, strict=True)
    ]


def _impl(side: str) -> Any:
    return (lambda h: h.points()) if side == "ours" else baseline_points


def _cold_child(side: str, n: int) -> None:
    """Run in a fresh process: build the history, time the first call, print seconds."""
    h = history(n)
    fn = _impl(side)
    t0 = time.perf_counter()
    pts = fn(h)
    took = time.perf_counter() - t0
    assert len(pts) == n
    print(json.dumps({"seconds": took}))


def cold(side: str, n: int, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--cold-child", side, "--sizes", str(n)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    return times


def warm(side: str, n: int, repeat: int, budget_s: float = 15.0) -> list[float]:
    """Seconds of each timed call; each result is freed after its timing, not inside it."""
    h = history(n)
    fn = _impl(side)
    fn(h)
    times: list[float] = []
    while len(times) < repeat and (len(times) < 3 or sum(times) < budget_s):
        t0 = time.perf_counter()
        pts = fn(h)
        times.append(time.perf_counter() - t0)
        del pts
    return times


def load1() -> float:
    return os.getloadavg()[0]


def goal_note(times: list[float]) -> str:
    """The median against the goal, the share of calls under it, the slowest call."""
    goal_s = GOAL_MS_100K / 1e3
    med = statistics.median(times)
    under = sum(t < goal_s for t in times)
    verdict = "ok" if under == len(times) else "MISSED"
    return (
        f"goal < {GOAL_MS_100K:g} ms: {verdict}, median {med / goal_s:.2f}x of it, "
        f"{under}/{len(times)} calls under, slowest {max(times) * 1e3:.1f} ms"
    )


def allocation_floor(n: int, repeat: int) -> float:
    """Median seconds to allocate ``n`` bare points and ``n`` field dicts, setting nothing.

    Any ``points()`` that returns real ``MetricPoint`` models pays at least this
    (CPython makes each instance and each dict separately), so it shows how
    much of a figure is left to cut on this machine at this load.
    """
    import gc
    from itertools import repeat as rep

    from opsloop.tracking.entities import MetricPoint

    h = history(n)
    times = []
    for _ in range(max(3, repeat)):
        gc.disable()
        t0 = time.perf_counter()
        objs = list(map(object.__new__, rep(MetricPoint, n)))
        dicts = [
            {"key": h.key, "value": v, "step": s, "timestamp": t}
            for s, t, v in zip(h.steps, h.timestamps, h.values, strict=True)
        ]
        times.append(time.perf_counter() - t0)
        gc.enable()
        del objs, dicts
    return statistics.median(times)


def check_same(n: int = 1_000) -> None:
    """Both sides give the same points (repr covers NaN, which never equals itself)."""
    h = history(n)
    ours, base = h.points(), baseline_points(h)
    assert [repr(p) for p in ours] == [repr(p) for p in base]
    assert [p.model_dump_json() for p in ours] == [p.model_dump_json() for p in base]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cold-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.cold_child:
        _cold_child(args.cold_child, sizes[0])
        return

    check_same()
    rows: list[Comparison] = []
    for n in sizes:
        for mode in ("cold", "warm"):
            load = load1()
            if mode == "cold":
                ours = cold("ours", n, args.cold_runs)
                theirs = cold("baseline", n, args.cold_runs)
            else:
                ours = warm("ours", n, args.repeat)
                theirs = warm("baseline", n, args.repeat)
            note = f"load {load:.1f}"
            if n == 100_000:
                note = f"{goal_note(ours)}; {note}"
            rows.append(
                Comparison(
                    scenario=f"points() x {n:,}",
                    mode=mode,
                    unit="points",
                    ours=Figure(n, statistics.median(ours)),
                    theirs=Figure(n, statistics.median(theirs)),
                    note=note,
                    extra={"ours_s": ours, "baseline_s": theirs, "load1": load},
                )
            )
    print_table(
        "MetricHistory.points(): from the columns vs validating each point",
        rows,
        ours="opsloop",
        theirs="baseline",
    )
    floor = {n: allocation_floor(n, args.repeat) for n in sizes if n <= 1_000_000}
    for n, took in floor.items():
        print(
            f"allocation floor x {n:,}: {took * 1e3:.1f} ms (bare instances and field dicts, "
            f"nothing set; load {load1():.1f})"
        )
    if args.json:
        write_json(
            args.json,
            {
                "python": sys.version,
                "rows": [r.as_dict() for r in rows],
                "allocation_floor_s": floor,
            },
        )


if __name__ == "__main__":
    main()
