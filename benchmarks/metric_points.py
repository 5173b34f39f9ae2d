"""``MetricHistory.points()``: the column-backed ``MetricPoints`` vs the list it returned before.

    .venv/bin/python benchmarks/metric_points.py              # 10k, 100k, 1M points
    .venv/bin/python benchmarks/metric_points.py --sizes 10000,100000 --json out.json

``points()`` returns a ``MetricPoints``: a read-only sequence over the
history's columns that makes each ``MetricPoint`` only when it is read. The
baseline, measured in the same run, is what ``points()`` returned before: a
``list`` of every point, each made the way ``model_construct`` makes one
(``_metrics.build_points``, no validation). Four operations, each on both sides:

- ``points()``: the call alone (baseline: building the list);
- ``points() + columns``: the call and reading ``.steps``, ``.timestamps`` and
  ``.values`` (what a chart needs; baseline: building the list);
- ``iterate all``: ``for p in h.points(): pass``, every point made as a
  ``MetricPoint`` (baseline: building the list and looping over it);
- ``to_list()``: every point in a new ``list`` (baseline: building the list);
- ``list(points())``: the same through iteration, keeping every point (the
  collector walks the growing heap; baseline: building the list).

Both sides get the same in-memory ``MetricHistory`` (one NaN in every hundred
values, as ``None``), so only the points are timed. Each figure includes the
collection a call leaves pending: a call that leaves 100,000 new points
behind has the cyclic collector walk them at the caller's next new container
(15-30 ms at 100k), so each timed call ends by making one; the note gives
the call alone too.

- **cold**: the first call in a fresh Python process (pydantic's first use of
  the class, the fast path's one-time self-check, allocator growth), the
  median of ``--cold-runs`` processes per side, the sides taking turns.
- **warm**: the median of up to ``--repeat`` calls in one process after one
  untimed call, the two sides taking turns (stopping after 30 s of calls,
  with at least 3 each); each result is freed after its call is timed.

The goal is ``points()`` on 100,000 points under 50 ms, every time: the two
``points()`` rows at 100k give the median against the goal (``0.80x of 50
ms`` is 40 ms), the share of timed calls under it and the slowest one. Every
row gives both sides' fastest call and the load average when it was measured
(``/proc/loadavg``'s 1-minute figure; the timings are wall time, so a busy
machine shows in them). Iterating all, ``to_list()`` and ``list(points())``
should not be slower than the baseline (a speed-up near or above 1x).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Comparison, Figure, print_table, write_json

GOAL_MS_100K = 50.0
OPS = ("points()", "points() + columns", "iterate all", "to_list()", "list(points())")


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
    """``points()`` as it was: a list of every point, made without validation."""
    from opsloop.tracking._metrics import build_points
    from opsloop.tracking.entities import MetricPoint

    return build_points(MetricPoint, h.key, h.steps, h.timestamps, h.values)


def validated_points(h: Any) -> list[Any]:
    """One validated ``MetricPoint`` per point (the reference for equality)."""
    import math

    from opsloop.tracking.entities import MetricPoint

    return [
        MetricPoint(key=h.key, value=math.nan if v is None else v, step=s, timestamp=t)
        for s, t, v in zip(h.steps, h.timestamps, h.values, strict=True)
    ]


def _iterate(pts: Any) -> int:
    n = 0
    for _ in pts:
        n += 1
    return n


def _columns(h: Any) -> Any:
    p = h.points()
    assert len(p.steps) == len(p.timestamps) == len(p.values)
    return p


def _impl(side: str, op: str) -> Callable[[Any], Any]:
    if side == "baseline":
        if op == "iterate all":
            return lambda h: _iterate(baseline_points(h))
        return baseline_points
    return {
        "points()": lambda h: h.points(),
        "points() + columns": _columns,
        "iterate all": lambda h: _iterate(h.points()),
        "to_list()": lambda h: h.points().to_list(),
        "list(points())": lambda h: list(h.points()),
    }[op]


def timed(fn: Callable[[Any], Any], h: Any) -> tuple[Any, float, float]:
    """``fn(h)``, the seconds of the call alone, and with the collection it leaves pending.

    A call that leaves many new objects behind (the old list: two per point)
    has the cyclic collector walk them at the next container the caller
    makes, outside the call; the second figure makes one (a ``set``, which
    has no free list) so that work is counted where the caller would pay it.
    """
    t0 = time.perf_counter()
    out = fn(h)
    t1 = time.perf_counter()
    _ = set()
    t2 = time.perf_counter()
    return out, t1 - t0, t2 - t0


def _cold_child(side: str, op: str, n: int) -> None:
    """Run in a fresh process: build the history, time the first call, print seconds."""
    h = history(n)
    out, alone, total = timed(_impl(side, op), h)
    assert (out if isinstance(out, int) else len(out)) == n
    print(json.dumps({"seconds": total, "alone": alone}))


def _cold_once(side: str, op: str, n: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--cold-child", f"{side}:{op}", "--sizes", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return float(got["seconds"]), float(got["alone"])


Times = dict[str, list[float]]  # ours, baseline, ours_alone, baseline_alone


def cold(op: str, n: int, runs: int) -> Times:
    """The first call in ``runs`` fresh processes per side, the sides taking turns."""
    t: Times = {"ours": [], "baseline": [], "ours_alone": [], "baseline_alone": []}
    for _ in range(runs):
        for side in ("ours", "baseline"):
            total, alone = _cold_once(side, op, n)
            t[side].append(total)
            t[f"{side}_alone"].append(alone)
    return t


def warm(op: str, h: Any, repeat: int, budget_s: float = 30.0) -> Times:
    """Each timed call of both sides, taking turns (so a busy spell hits both).

    One untimed call each first; each result is freed after its timing, not inside it.
    """
    fns = {side: _impl(side, op) for side in ("ours", "baseline")}
    t: Times = {"ours": [], "baseline": [], "ours_alone": [], "baseline_alone": []}
    for fn in fns.values():
        fn(h)
    spent = 0.0
    while len(t["ours"]) < repeat and (len(t["ours"]) < 3 or spent < budget_s):
        for side, fn in fns.items():
            out, alone, total = timed(fn, h)
            del out
            t[side].append(total)
            t[f"{side}_alone"].append(alone)
            spent += total
    return t


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

    Any list of ``n`` real ``MetricPoint`` models (``to_list()``, the old
    ``points()``) pays at least this (CPython makes each instance and each dict
    separately), which is why only a lazy ``points()`` can meet the goal.
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
    """Every way of reading the points gives the validated points (repr covers NaN)."""
    import math
    import pickle

    h = history(n)
    pts = h.points()
    want = [repr(p) for p in validated_points(h)]
    assert [repr(p) for p in pts] == want
    assert [repr(p) for p in pts.to_list()] == want
    assert [repr(pts[i]) for i in range(n)] == want
    assert [repr(p) for p in baseline_points(h)] == want
    assert pts == baseline_points(h) and pickle.loads(pickle.dumps(pts)) == pts
    assert list(pts.steps) == h.steps and list(pts.timestamps) == h.timestamps
    assert [None if math.isnan(v) else v for v in pts.values] == h.values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument(
        "--ops", default=",".join(OPS), help="a comma-separated subset of: " + ", ".join(OPS)
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--cold-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.cold_child:
        side, op = args.cold_child.split(":", 1)
        _cold_child(side, op, sizes[0])
        return
    ops = [o for o in OPS if o in args.ops.split(",")]

    check_same()
    rows: list[Comparison] = []
    for n in sizes:
        h = history(n)
        for op in ops:
            for mode in ("cold", "warm"):
                load = load1()
                t = cold(op, n, args.cold_runs) if mode == "cold" else warm(op, h, args.repeat)
                ours, theirs = t["ours"], t["baseline"]
                med = statistics.median
                note = (
                    f"call alone {med(t['ours_alone']) * 1e3:.1f} vs "
                    f"{med(t['baseline_alone']) * 1e3:.1f} ms; fastest {min(ours) * 1e3:.1f} vs "
                    f"{min(theirs) * 1e3:.1f} ms; load {load:.1f}"
                )
                if n == 100_000 and op.startswith("points()"):
                    note = f"{goal_note(ours)}; {note}"
                rows.append(
                    Comparison(
                        scenario=f"{op} x {n:,}",
                        mode=mode,
                        unit="points",
                        ours=Figure(n, statistics.median(ours)),
                        theirs=Figure(n, statistics.median(theirs)),
                        note=note,
                        extra={**{f"{k}_s": v for k, v in t.items()}, "load1": load},
                    )
                )
        del h
    print_table(
        "MetricHistory.points(): MetricPoints vs the list it returned before",
        rows,
        ours="MetricPoints",
        theirs="old list",
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
