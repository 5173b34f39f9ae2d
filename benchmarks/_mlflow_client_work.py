"""The timed work of benchmarks/mlflow_protocol.py, run by the mlflow client's interpreter.

    .venv-mlflow/bin/python benchmarks/_mlflow_client_work.py URL SIZES_JSON

The same calls of the real ``mlflow`` client against whichever server ``URL``
is (opsloop's MLflow API or ``mlflow server``). Prints one JSON object:
scenario -> {"n": units, "seconds": wall time}. Setup (the runs searched, the
points read back) is not timed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402


def main() -> None:
    url, sizes = sys.argv[1], json.loads(sys.argv[2])
    c = MlflowClient(url)
    out: dict[str, dict[str, float]] = {}
    exp = c.create_experiment(f"bench-{time.time_ns()}")
    run = c.create_run(exp).info.run_id

    def timed(name: str, n: int, fn) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        fn()
        out[name] = {"n": n, "seconds": time.perf_counter() - t0}

    # per-call log_metric (synchronous: one request per point)
    n = sizes["per_call"]
    c.log_metric(run, "warm", 0.0)
    timed("log_metric", n, lambda: [c.log_metric(run, "m", float(i), step=i) for i in range(n)])

    # log_batch of 1000 points each
    nb, bs = sizes["batches"], 1000
    ts = int(time.time() * 1000)

    def batches() -> None:
        for b in range(nb):
            c.log_batch(run, metrics=[Metric("b", float(i), ts, b * bs + i) for i in range(bs)])

    timed("log_batch", nb * bs, batches)

    # run creation (with 10 params in one log_batch, as autologging does)
    nr = sizes["runs"]

    def create() -> None:
        for i in range(nr):
            rid = c.create_run(exp, run_name=f"r{i}").info.run_id
            c.log_batch(rid, params=[Param(f"p{j}", str(j)) for j in range(10)])

    timed("create_run", nr, create)

    # metric history: the batch key's points, read back whole
    reps = sizes["history_reads"]
    got = len(c.get_metric_history(run, "b"))
    assert got == nb * bs, f"history holds {got} points, not {nb * bs}"
    timed(
        "metric_history", reps * got, lambda: [c.get_metric_history(run, "b") for _ in range(reps)]
    )

    # search: filter + order over the experiment's runs, one page of 100
    sexp = c.create_experiment(f"search-{time.time_ns()}")
    for i in range(sizes["search_runs"]):
        rid = c.create_run(sexp, run_name=f"s{i}").info.run_id
        c.log_batch(
            rid,
            metrics=[Metric("f1", (i % 100) / 100, ts, 0)],
            params=[Param("model", "rf" if i % 2 else "lr")],
        )
    sq = sizes["searches"]
    flt = "metrics.f1 > 0.5 and params.model = 'rf'"

    def search() -> None:
        for _ in range(sq):
            res = c.search_runs(
                [sexp], filter_string=flt, order_by=["metrics.f1 DESC"], max_results=100
            )
            assert len(res) > 0

    timed("search_runs", sq, search)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
