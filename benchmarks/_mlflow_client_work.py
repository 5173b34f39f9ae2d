"""The timed work of benchmarks/mlflow_protocol.py, run by the mlflow client's interpreter.

    .venv-mlflow/bin/python benchmarks/_mlflow_client_work.py SIZES_JSON ROUNDS URL [URL ...]

The same calls of the real ``mlflow`` client against each server ``URL``
(opsloop's MLflow API, ``mlflow server``). Each scenario's work is cut into
``ROUNDS`` equal parts, and the servers take turns part by part (the first
server first in even rounds, last in odd ones), so a change in the machine's
load during a scenario lands on every server alike. Prints one JSON object:
URL -> scenario -> {"n": units, "seconds": wall time summed over the parts}.
Setup (the runs searched, the points read back) is not timed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

BATCH = 1000
FILTER = "metrics.f1 > 0.5 and params.model = 'rf'"


class Side:
    """One server: its client, an experiment and a run to log to, and the runs searched."""

    def __init__(self, url: str, sizes: dict[str, int]) -> None:
        self.url = url
        self.c = MlflowClient(url)
        self.exp = self.c.create_experiment(f"bench-{time.time_ns()}")
        self.run = self.c.create_run(self.exp).info.run_id
        self.c.log_metric(self.run, "warm", 0.0)
        self.ts = int(time.time() * 1000)
        # search: filter + order over this experiment's runs, one page of 100
        self.sexp = self.c.create_experiment(f"search-{time.time_ns()}")
        for i in range(sizes["search_runs"]):
            rid = self.c.create_run(self.sexp, run_name=f"s{i}").info.run_id
            self.c.log_batch(
                rid,
                metrics=[Metric("f1", (i % 100) / 100, self.ts, 0)],
                params=[Param("model", "rf" if i % 2 else "lr")],
            )

    def log_metric(self, part: range) -> None:  # synchronous: one request per point
        for i in part:
            self.c.log_metric(self.run, "m", float(i), step=i)

    def log_batch(self, part: range) -> None:  # 1000 points a batch
        for b in part:
            self.c.log_batch(
                self.run,
                metrics=[Metric("b", float(i), self.ts, b * BATCH + i) for i in range(BATCH)],
            )

    def create_run(self, part: range) -> None:  # with 10 params in one log_batch, as autologging
        for i in part:
            rid = self.c.create_run(self.exp, run_name=f"r{i}").info.run_id
            self.c.log_batch(rid, params=[Param(f"p{j}", str(j)) for j in range(10)])

    def metric_history(self, part: range) -> None:  # the batch key's points, read back whole
        for _ in part:
            self.c.get_metric_history(self.run, "b")

    def search_runs(self, part: range) -> None:
        for _ in part:
            res = self.c.search_runs(
                [self.sexp], filter_string=FILTER, order_by=["metrics.f1 DESC"], max_results=100
            )
            assert len(res) > 0


def main() -> None:
    sizes, rounds, urls = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    sides = [Side(url, sizes) for url in urls]
    out: dict[str, dict[str, dict[str, float]]] = {s.url: {} for s in sides}

    def timed(name: str, count: int, units_per: int, work: Callable[[Side, range], Any]) -> None:
        spent = {s.url: 0.0 for s in sides}
        for r in range(rounds):
            part = range(r * count // rounds, (r + 1) * count // rounds)
            for s in sides if r % 2 == 0 else sides[::-1]:
                t0 = time.perf_counter()
                work(s, part)
                spent[s.url] += time.perf_counter() - t0
        for s in sides:
            out[s.url][name] = {"n": count * units_per, "seconds": spent[s.url]}

    timed("log_metric", sizes["per_call"], 1, Side.log_metric)
    timed("log_batch", sizes["batches"], BATCH, Side.log_batch)
    timed("create_run", sizes["runs"], 1, Side.create_run)
    points = sizes["batches"] * BATCH
    for s in sides:
        got = len(s.c.get_metric_history(s.run, "b"))
        assert got == points, f"{s.url}: history holds {got} points, not {points}"
    timed("metric_history", sizes["history_reads"], points, Side.metric_history)
    timed("search_runs", sizes["searches"], 1, Side.search_runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
