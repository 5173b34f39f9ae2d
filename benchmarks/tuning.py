"""Tuning overhead per trial: opsloop studies against plain Optuna, on a trivial objective.

    .venv/bin/python benchmarks/tuning.py              # 200 trials per arm, best of 2 rounds
    .venv/bin/python benchmarks/tuning.py --quick      # 40 trials, one round
    .venv/bin/python benchmarks/tuning.py --json out.json --sampler tpe

The objective is a quadratic in two floats, so nearly all the time is the
machinery around it. Each arm runs ``--trials`` trials in a fresh study:

- plain Optuna, in memory, on an SQLite file with Optuna's defaults, and on
  an SQLite file set up as opsloop sets up its own (WAL, ``synchronous=NORMAL``:
  the like-for-like reference for opsloop's default storage);
- opsloop, with ``storage="memory"`` and with its default storage (an SQLite
  file next to opsloop's database), embedded; every trial is a child run
  with its params, tags, final value and status.

Then the same with 20 intermediate reports per trial (``trial.report``, which
opsloop also logs as a metric, buffered and written at the end of the trial).
The overhead is opsloop's ms per trial minus plain Optuna's on the same kind
of storage. Arms alternate over ``--rounds`` rounds and the best round counts,
so a burst of load from elsewhere on the machine does not decide a figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json

STEPS = 20


def _sampler(name: str) -> Any:
    import optuna

    return (
        optuna.samplers.TPESampler(seed=0)
        if name == "tpe"
        else optuna.samplers.RandomSampler(seed=0)
    )


def _wal_storage(path: Path) -> Any:
    """Plain Optuna on an SQLite file set up exactly as opsloop sets up its own (WAL, NORMAL)."""
    from opsloop.settings import Settings
    from opsloop.tuning._storage import open_storage, resolve_storage

    return open_storage(resolve_storage(Settings(home=path.parent), path))


def plain(storage: Any, n: int, steps: int, sampler: str) -> float:
    """Seconds for ``n`` trials of plain Optuna."""
    import optuna

    study = optuna.create_study(storage=storage, sampler=_sampler(sampler), direction="minimize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_float("y", -10, 10)
        for s in range(steps):
            trial.report((x - 2) ** 2 + (y + 1) ** 2 + 1.0 / (s + 1), s)
        return (x - 2) ** 2 + (y + 1) ** 2

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n)
    return time.perf_counter() - t0


def ours(home: Path, name: str, storage: str | None, n: int, steps: int, sampler: str) -> float:
    """Seconds for ``n`` trials of an opsloop study (every trial a child run), flushed."""
    from opsloop import Client
    from opsloop.tuning import Float, Trial, Tuning

    with Client(home=home) as client:
        study = Tuning(client).create_study(
            name,
            directions="minimize",
            search_space={"x": Float(-10, 10), "y": Float(-10, 10)},
            sampler=_sampler(sampler),
            storage=storage,
        )

        def objective(trial: Trial) -> float:
            x, y = trial.params["x"], trial.params["y"]
            for s in range(steps):
                trial.report((x - 2) ** 2 + (y + 1) ** 2 + 1.0 / (s + 1), s)
            return float((x - 2) ** 2 + (y + 1) ** 2)

        t0 = time.perf_counter()
        study.optimize(objective, n_trials=n)
        client.flush()
        elapsed = time.perf_counter() - t0
        runs = client.search_runs(parent_run_id=study.run_id, max_results=n + 10).runs
        if len(runs) != n or {r.status for r in runs} != {"FINISHED"}:
            raise RuntimeError(f"expected {n} finished trial runs, found {len(runs)}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sampler", choices=["random", "tpe"], default="random")
    ap.add_argument("--quick", action="store_true", help="40 trials, one round")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args()
    n, rounds = (40, 1) if args.quick else (args.trials, args.rounds)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{n} trials per arm, {rounds} round(s), {args.sampler} sampler, Python {platform.python_version()}, "
        f"Optuna {optuna.__version__}, {platform.machine()}",
        flush=True,
    )

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        arms: dict[str, Callable[[int], float]] = {}
        for steps in (0, STEPS):
            tag = f"{steps} reports" if steps else "no reports"
            arms[f"plain memory|{tag}"] = lambda r, s=steps: plain(None, n, s, args.sampler)
            arms[f"plain sqlite|{tag}"] = lambda r, s=steps: plain(
                f"sqlite:///{root}/plain-{s}-{r}.db", n, s, args.sampler
            )
            arms[f"plain sqlite-wal|{tag}"] = lambda r, s=steps: plain(
                _wal_storage(root / f"wal-{s}-{r}.db"), n, s, args.sampler
            )
            arms[f"opsloop memory|{tag}"] = lambda r, s=steps: ours(
                root / f"home-m-{s}-{r}", "b", "memory", n, s, args.sampler
            )
            arms[f"opsloop sqlite|{tag}"] = lambda r, s=steps: ours(
                root / f"home-s-{s}-{r}", "b", None, n, s, args.sampler
            )
        best: dict[str, float] = {}
        for r in range(rounds):
            for label, fn in arms.items():
                sec = fn(r)
                best[label] = min(best.get(label, float("inf")), sec)
                print(f"  round {r + 1}: {label:32s} {sec / n * 1000:8.2f} ms/trial", flush=True)

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Tuning overhead per trial ({n} trials, best of {rounds})")
    for col in ("storage", "reports/trial", "plain Optuna", "opsloop", "overhead"):
        t.add_column(col, justify="right" if col != "storage" else "left")
    for steps in (0, STEPS):
        tag = f"{steps} reports" if steps else "no reports"
        for kind, ref in (("memory", "memory"), ("sqlite", "sqlite-wal"), ("sqlite", "sqlite")):
            p = best[f"plain {ref}|{tag}"] / n * 1000
            o = best[f"opsloop {kind}|{tag}"] / n * 1000
            label = kind if ref == kind else f"{kind} (vs plain {ref})"
            results[f"{ref}|{steps}"] = {"plain_ms": p, "opsloop_ms": o, "overhead_ms": o - p}
            t.add_row(label, str(steps), f"{p:.2f} ms", f"{o:.2f} ms", f"{o - p:+.2f} ms")
    Console(width=120).print(t)
    if args.json:
        write_json(
            args.json, {"trials": n, "rounds": rounds, "sampler": args.sampler, "results": results}
        )
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
