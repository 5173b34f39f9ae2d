"""opsloop vs MLflow tracking, side by side, on this machine and on the same work.

    .venv/bin/python benchmarks/tracking.py            # full run (4-8 min on 2 CPUs)
    .venv/bin/python benchmarks/tracking.py --quick    # smoke test (~2 min, most of it
                                                       # waiting for MLflow's server)
    .venv/bin/python benchmarks/tracking.py --json out.json --skip-server

Both systems run embedded (SQLite file in a temp folder) and through their
own server (subprocess on 127.0.0.1, SQLite behind it). Each figure is the
time until the data is confirmed stored: opsloop's buffered ``log_metric``
is timed up to the end of ``client.flush()``; MLflow's calls are synchronous
(its default). Where MLflow is much slower it runs fewer calls, and the two
are compared by rate (units per second); the n of each side is printed.
See benchmarks/README.md for what is measured and what is not.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Comparison,
    Figure,
    free_port,
    median_time,
    print_table,
    python_cmd,
    server_process,
    timed,
    write_json,
)

KEY = "loss"
FILTER_OURS = 'metrics.f1 > 0.9 and params.model = "rf"'
FILTER_THEIRS = "metrics.f1 > 0.9 and params.model = 'rf'"
ORDER = ["metrics.f1 DESC"]
PAGE = 100


@dataclass(frozen=True)
class Sizes:
    per_call_ours: int
    per_call_theirs: int  # MLflow writes one transaction (or request) per point
    batch_points: int  # both sides; also the history read back
    batch_size: int  # MLflow's limit is 1000 metrics per log_batch
    runs_ours: int
    runs_theirs: int
    params_per_run: int
    search_runs: int
    repeats: int


FULL = Sizes(100_000, 2_000, 100_000, 1_000, 1_000, 500, 10, 10_000, 7)
QUICK = Sizes(10_000, 200, 10_000, 1_000, 100, 50, 10, 1_000, 3)


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    warnings.filterwarnings("ignore")
    import mlflow  # noqa: F401 - configures its loggers on import; override them after

    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _search_rows(n: int) -> list[dict[str, Any]]:
    """The runs both stores get for the search benchmark (same seed, same values)."""
    rng = random.Random(42)
    t0 = 1_700_000_000_000
    models = ["rf", "xgb", "lr", "svm"]
    return [
        {
            "name": f"r{i:06d}",
            "start_time": t0 + i,
            "params": {
                "model": models[rng.randrange(4)],
                "lr": str(round(rng.uniform(1e-4, 1e-1), 6)),
                "depth": str(rng.randrange(2, 16)),
                "n_estimators": str(rng.choice([50, 100, 200, 400])),
                "seed": str(i),
            },
            "metrics": {"f1": rng.random(), "acc": rng.random(), "loss": rng.uniform(0, 3)},
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------------------- opsloop


class Ours:
    name = "opsloop"

    def __init__(self, client: Any) -> None:
        self.c = client
        self.exp = client.get_or_create_experiment(f"bench-{time.time_ns()}").id

    def per_call(self, n: int) -> Figure:
        rid = self.c.create_run(self.exp).id
        log = self.c.log_metric

        def work() -> None:
            for i in range(n):
                log(rid, KEY, i * 0.001, step=i)
            self.c.flush()

        return Figure(n, timed(work))

    def batched(self, batches: list[list[tuple[str, float, int, int]]]) -> tuple[Figure, str]:
        rid = self.c.create_run(self.exp).id

        def work() -> None:
            for b in batches:
                self.c.log_batch(rid, metrics=b)

        return Figure(sum(map(len, batches)), timed(work)), rid

    def create_runs(self, params: list[dict[str, str]]) -> Figure:
        def work() -> None:
            for i, p in enumerate(params):
                self.c.create_run(self.exp, name=f"c{i}", params=p)

        return Figure(len(params), timed(work))

    def create_runs_first_metric(self, params: list[dict[str, str]]) -> Figure:
        """A run, its params and a first metric: one request (one transaction)."""

        def work() -> None:
            for i, p in enumerate(params):
                self.c.create_run(self.exp, name=f"f{i}", params=p, metrics={KEY: 1.0})

        return Figure(len(params), timed(work))

    def history(self, rid: str, n: int, repeat: int) -> Figure:
        def work() -> None:
            h = self.c.get_metric_history(rid, KEY)
            if len(h) != n:
                raise RuntimeError(f"opsloop history has {len(h)} points, expected {n}")

        return Figure(n, median_time(work, repeat))

    def populate(self, rows: list[dict[str, Any]]) -> str:
        exp = self.c.create_experiment(f"search-{time.time_ns()}").id
        for r in rows:
            rid = self.c.create_run(
                exp, name=r["name"], start_time=r["start_time"], params=r["params"]
            ).id
            pts = [(k, v, 0, r["start_time"]) for k, v in r["metrics"].items()]
            self.c.log_batch(rid, metrics=pts)
        return exp

    def search(self, exp: str, repeat: int) -> tuple[Figure, list[str]]:
        def query() -> list[str]:
            page = self.c.search_runs([exp], filter=FILTER_OURS, order_by=ORDER, max_results=PAGE)
            return [r.name for r in page.runs]

        return Figure(1, median_time(query, repeat)), query()


# ---------------------------------------------------------------------------- MLflow


class Theirs:
    name = "MLflow"

    def __init__(self, client: Any, artifact_root: Path | None) -> None:
        self.c = client
        loc = None if artifact_root is None else artifact_root.as_uri()
        self.exp = client.create_experiment(f"bench-{time.time_ns()}", artifact_location=loc)

    def per_call(self, n: int, *, synchronous: bool = True) -> Figure:
        rid = self.c.create_run(self.exp).info.run_id
        log = self.c.log_metric

        def work() -> None:
            ops = [log(rid, KEY, i * 0.001, step=i, synchronous=synchronous) for i in range(n)]
            for op in ops:
                if op is not None:
                    op.wait()

        return Figure(n, timed(work))

    def batched(self, batches: list[list[tuple[str, float, int, int]]]) -> tuple[Figure, str]:
        from mlflow.entities import Metric

        rid = self.c.create_run(self.exp).info.run_id
        ml = [[Metric(k, v, ts, s) for k, v, s, ts in b] for b in batches]

        def work() -> None:
            for b in ml:
                self.c.log_batch(rid, metrics=b)

        return Figure(sum(map(len, ml)), timed(work)), rid

    def create_runs(self, params: list[dict[str, str]]) -> Figure:
        from mlflow.entities import Param

        ml = [[Param(k, v) for k, v in p.items()] for p in params]

        def work() -> None:
            for i, p in enumerate(ml):
                rid = self.c.create_run(self.exp, run_name=f"c{i}").info.run_id
                self.c.log_batch(rid, params=p)

        return Figure(len(ml), timed(work))

    def create_runs_first_metric(self, params: list[dict[str, str]]) -> Figure:
        """MLflow's client: create_run + log_params (one log_batch) + log_metric."""
        from mlflow.entities import Param

        ml = [[Param(k, v) for k, v in p.items()] for p in params]

        def work() -> None:
            for i, p in enumerate(ml):
                rid = self.c.create_run(self.exp, run_name=f"f{i}").info.run_id
                self.c.log_batch(rid, params=p)
                self.c.log_metric(rid, KEY, 1.0, step=0)

        return Figure(len(ml), timed(work))

    def history(self, rid: str, n: int, repeat: int) -> Figure:
        def work() -> None:
            h = self.c.get_metric_history(rid, KEY)
            if len(h) != n:
                raise RuntimeError(f"MLflow history has {len(h)} points, expected {n}")

        return Figure(n, median_time(work, repeat))

    def populate(self, rows: list[dict[str, Any]], db_uri: str, artifact_root: Path) -> str:
        """Bulk-insert the runs into MLflow's own tables (one per-run API call pair
        takes ~10 ms, too slow to set up 10k runs); ``search`` checks the result."""
        import uuid

        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        exp = self.c.create_experiment(f"search-{time.time_ns()}", artifact_location=None)
        store = SqlAlchemyStore(db_uri, artifact_root.as_uri())
        run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
        for r in rows:
            rid = uuid.uuid4().hex
            st = r["start_time"]
            run_rows.append(
                {
                    "run_uuid": rid,
                    "name": r["name"],
                    "source_type": "LOCAL",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": st,
                    "end_time": st + 1000,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{artifact_root.as_uri()}/{rid}/artifacts",
                    "experiment_id": int(exp),
                }
            )
            tag_rows += [
                {"run_uuid": rid, "key": "mlflow.runName", "value": r["name"]},
                {"run_uuid": rid, "key": "mlflow.user", "value": "bench"},
            ]
            param_rows += [{"run_uuid": rid, "key": k, "value": v} for k, v in r["params"].items()]
            metric_rows += [
                {"run_uuid": rid, "key": k, "value": v, "timestamp": st, "step": 0, "is_nan": False}
                for k, v in r["metrics"].items()
            ]
        with store.engine.begin() as conn:
            conn.execute(SqlRun.__table__.insert(), run_rows)
            conn.execute(SqlTag.__table__.insert(), tag_rows)
            conn.execute(SqlParam.__table__.insert(), param_rows)
            conn.execute(SqlMetric.__table__.insert(), metric_rows)
            conn.execute(SqlLatestMetric.__table__.insert(), metric_rows)
        store.engine.dispose()
        return str(exp)

    def search(self, exp: str, repeat: int) -> tuple[Figure, list[str]]:
        def query() -> list[str]:
            runs = self.c.search_runs(
                [exp], filter_string=FILTER_THEIRS, order_by=ORDER, max_results=PAGE
            )
            return [r.info.run_name for r in runs]

        return Figure(1, median_time(query, repeat)), query()


# ---------------------------------------------------------------------------- the suite


def run_mode(ours: Ours, theirs: Theirs, sz: Sizes, mode: str, search: Any) -> list[Comparison]:
    """Every scenario in one mode, opsloop then MLflow back to back for each scenario,
    so a change in the machine's load between scenarios hits both sides alike."""
    t_start = time.perf_counter()
    o: dict[str, Any] = {}
    t: dict[str, Any] = {}

    def both(name: str, fo: Any, ft: Any) -> tuple[Any, Any]:
        a = time.perf_counter()
        ro = fo()
        b = time.perf_counter()
        rt = ft()
        print(
            f"  {mode:8s} {name:16s} opsloop {b - a:6.1f} s   MLflow {time.perf_counter() - b:6.1f} s",
            flush=True,
        )
        return ro, rt

    o["per_call"], t["per_call"] = both(
        "per-call",
        lambda: ours.per_call(sz.per_call_ours),
        lambda: theirs.per_call(sz.per_call_theirs),
    )
    t["per_call_async"] = theirs.per_call(sz.per_call_theirs, synchronous=False)
    ts = int(time.time() * 1000)
    batches = [
        [
            (KEY, (lo + i) * 0.001, lo + i, ts)
            for i in range(min(sz.batch_size, sz.batch_points - lo))
        ]
        for lo in range(0, sz.batch_points, sz.batch_size)
    ]
    (o["batched"], o_rid), (t["batched"], t_rid) = both(
        "log_batch", lambda: ours.batched(batches), lambda: theirs.batched(batches)
    )
    o["history"], t["history"] = both(
        "history",
        lambda: ours.history(o_rid, sz.batch_points, sz.repeats),
        lambda: theirs.history(t_rid, sz.batch_points, sz.repeats),
    )

    def params(n: int) -> list[dict[str, str]]:
        return [
            {f"param_{j}": f"value-{i}-{j}" for j in range(sz.params_per_run)} for i in range(n)
        ]

    o["runs"], t["runs"] = both(
        "create runs",
        lambda: ours.create_runs(params(sz.runs_ours)),
        lambda: theirs.create_runs(params(sz.runs_theirs)),
    )
    o["runs_m"], t["runs_m"] = both(
        "runs+1st metric",
        lambda: ours.create_runs_first_metric(params(sz.runs_ours)),
        lambda: theirs.create_runs_first_metric(params(sz.runs_theirs)),
    )
    (o["search"], o_names), (t["search"], t_names) = both(
        "search",
        lambda: ours.search(search[0], sz.repeats),
        lambda: theirs.search(search[1], sz.repeats),
    )
    print(f"  {mode}: {time.perf_counter() - t_start:.0f} s", flush=True)
    same = o_names == t_names
    return [
        Comparison("log_metric per call", mode, "pts", o["per_call"], t["per_call"], 50),
        Comparison(
            "log_metric per call",
            mode,
            "pts",
            o["per_call"],
            t["per_call_async"],
            None,
            note="MLflow synchronous=False",
        ),
        Comparison("log_batch (1000/batch)", mode, "pts", o["batched"], t["batched"], 10),
        Comparison("create run + 10 params", mode, "runs", o["runs"], t["runs"], 10),
        Comparison(
            "create run + 10 params + 1st metric",
            mode,
            "runs",
            o["runs_m"],
            t["runs_m"],
            15 if mode == "server" else None,
            note="opsloop: 1 request; MLflow: 3",
        ),
        Comparison("get_metric_history", mode, "pts", o["history"], t["history"], 50),
        Comparison(
            "search_runs (filter, top 100)",
            mode,
            "queries",
            o["search"],
            t["search"],
            10,
            note="" if same else "RESULTS DIFFER",
            extra={"same_results": same, "results": len(o_names)},
        ),
    ]


@contextlib.contextmanager
def _opsloop_server(home: Path, port: int, logs: Path) -> Iterator[Any]:
    """``opsloop server`` as users start it; if that command cannot start (the CLI
    is broken, or missing), the same app under uvicorn from the app factory."""
    health = f"http://127.0.0.1:{port}/api/v1/health"
    exe = Path(sys.executable).with_name("opsloop")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "opsloop.cli"]
    cli += ["server", "--home", str(home), "--port", str(port), "--log-level", "warning"]
    try:
        cm = server_process(cli, health, log_path=logs / "opsloop.log", start_timeout_s=60)
        proc = cm.__enter__()
    except RuntimeError as exc:
        print(f"  `opsloop server` did not start, using the app factory: {exc}".splitlines()[0])
        code = (
            "import uvicorn; from pathlib import Path; from opsloop.settings import Settings; "
            "from opsloop.server import create_app; "
            f"uvicorn.run(create_app(Settings(home=Path({str(home)!r}))), host='127.0.0.1', "
            f"port={port}, log_level='warning')"
        )
        with server_process(python_cmd(code), health, log_path=logs / "opsloop-factory.log") as p:
            yield p
        return
    try:
        yield proc
    finally:
        cm.__exit__(None, None, None)


def _mlflow_server(db_uri: str, artifacts: Path, port: int, logs: Path) -> Any:
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", db_uri, "--default-artifact-root"]
    cmd += [artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port)]
    return server_process(
        cmd, f"http://127.0.0.1:{port}/health", log_path=logs / "mlflow.log", cwd=logs
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--skip-server", action="store_true", help="embedded only")
    ap.add_argument("--skip-embedded", action="store_true", help="through the servers only")
    args = ap.parse_args(argv)
    sz = QUICK if args.quick else FULL
    _quiet_mlflow()
    import mlflow
    from mlflow.tracking import MlflowClient

    import opsloop

    results: list[Comparison] = []
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]  # other work on the machine moves every figure
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-") as tmp_s:
        tmp = Path(tmp_s)
        home, ml_art, logs = tmp / "opsloop", tmp / "mlartifacts", tmp / "logs"
        logs.mkdir()
        ml_db = f"sqlite:///{tmp / 'mlflow.db'}"
        rows = _search_rows(sz.search_runs)

        # Both stores get the same runs for the search benchmark (setup is not timed).
        print(f"setting up {sz.search_runs:,} runs in each store for search ...", flush=True)
        ours_c = opsloop.Client(home=home)
        t = time.perf_counter()
        search_ours = Ours(ours_c).populate(rows)
        print(f"  opsloop: {time.perf_counter() - t:.1f} s (create_run + log_batch per run)")
        theirs_c = MlflowClient(tracking_uri=ml_db)
        t = time.perf_counter()
        search_theirs = Theirs(theirs_c, ml_art).populate(rows, ml_db, ml_art)
        print(f"  MLflow: {time.perf_counter() - t:.1f} s (bulk insert into its tables)")
        search = (search_ours, search_theirs)

        if not args.skip_embedded:
            print("embedded (SQLite) ...", flush=True)
            results += run_mode(Ours(ours_c), Theirs(theirs_c, ml_art), sz, "embedded", search)
        ours_c.close()

        if not args.skip_server:
            print("through a server (loopback HTTP, SQLite behind it) ...", flush=True)
            p_ours, p_theirs = free_port(), free_port()
            with (
                _opsloop_server(home, p_ours, logs),
                _mlflow_server(ml_db, ml_art, p_theirs, logs),
            ):
                c = opsloop.Client(f"http://127.0.0.1:{p_ours}")
                theirs_srv = Theirs(MlflowClient(f"http://127.0.0.1:{p_theirs}"), None)
                results += run_mode(Ours(c), theirs_srv, sz, "server", search)
                c.close()

    if args.quick:
        for r in results:  # the goals are for the full sizes (search scales differently)
            r.goal = None
    total = time.perf_counter() - t0
    title = (
        f"opsloop {opsloop.__version__} vs MLflow {mlflow.__version__}: "
        f"{'quick' if args.quick else 'full'} run, {total:.0f} s, "
        f"{os.cpu_count()} CPUs, load {load0:.1f}→{os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}"
    )
    print_table(title, results)
    missed = [r for r in results if r.met is False]
    differ = [r for r in results if r.extra.get("same_results") is False]
    if differ:
        print("WARNING: the two systems returned different search results")
    if args.json:
        write_json(
            args.json,
            {
                "title": title,
                "sizes": asdict(sz),
                "seconds": total,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_avg": os.getloadavg(),
                "opsloop": opsloop.__version__,
                "mlflow": mlflow.__version__,
                "results": [r.as_dict() for r in results],
                "goals_missed": [f"{r.scenario} ({r.mode})" for r in missed],
            },
        )
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
