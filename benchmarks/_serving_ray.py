"""The Ray rows of ``benchmarks/serving.py`` (``--ray``): the same forest on Ray Serve.

First, for reference, ``opsloop serve`` with one and two uvicorn workers (no Ray).
Then one local Ray instance; one application at a time behind Ray Serve's HTTP proxy,
all hit by the same load as the other rows (``POST /invocations``, single-row
``dataframe_records``, closed-loop keep-alive clients):

- ``ray serve (@serve.batch)``: the plain Ray Serve deployment a team would
  write (``BASELINE`` below, Ray's documented batching pattern): the forest
  passed to the replica, ``@serve.batch`` gathering requests into one
  ``predict`` over a DataFrame, the same batch size and wait as opsloop's, and
  the same ``max_ongoing_requests`` (Ray's default of 5 would starve batching).
- ``opsloop on ray``: ``opsloop serve models:/bench-rf@prod --on ray`` (its
  Python entry point, ``deploy``): one replica behind Ray's proxy, then one and
  two replicas answering on their shared direct port (``--direct-port``).

Each replica reserves one CPU in Ray's books; on a 2-core machine the proxy,
the controller, the load generator and two replicas share those cores, so the
two-replica row shows what a second replica buys on the same host, not across
machines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from _common import free_port, server_process
from serving import TREE, LoadResult, check_answer, opsloop_home, run_load


def baseline_app(model: Any, columns: list[str], max_batch: int, wait_s: float) -> Any:
    """A plain Ray Serve deployment of ``model`` with ``@serve.batch`` (no opsloop)."""
    import pandas as pd
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 1})
    class Forest:
        def __init__(self, model: Any) -> None:
            self.model = model

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
            return self.model.predict(pd.DataFrame(rows, columns=columns)).tolist()

        async def __call__(self, request: Request) -> JSONResponse:
            body = await request.json()
            (row,) = body["dataframe_records"]
            return JSONResponse({"predictions": [await self.predict(row)]})

    return Forest.bind(model)


def bench_ray(
    args: argparse.Namespace, tmp: Path, model: Any, frame: Any, body: bytes, want: Any
) -> list[LoadResult]:
    """The plain Ray Serve row, then opsloop on Ray with one and two replicas."""
    import ray
    from ray import serve

    from opsloop.serving import RayOptions, ServeOptions, deploy_on_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    port = args.ray_port
    load = {"clients": args.clients, "warmup_s": args.warmup, "duration_s": args.duration}
    results: list[LoadResult] = []
    # For reference, in the same run: the same model on one machine, without Ray.
    for workers in (1, 2):
        local = free_port()
        cmd = [sys.executable, "-m", "opsloop.serving.cli", "models:/bench-rf@prod"]
        cmd += ["--home", str(tmp / "opsloop-home"), "--trust", TREE, "--port", str(local)]
        cmd += ["--log-level", "warning", "--max-wait-ms", str(args.max_wait_ms)]
        cmd += ["--workers", str(workers), "--no-monitoring"]
        print(f"  opsloop serve --workers {workers} (no Ray) ...", flush=True)
        with server_process(cmd, f"http://127.0.0.1:{local}/ready", log_path=tmp / "local.log"):
            note = check_answer(local, body, want)
            res = run_load(f"opsloop serve --workers {workers} (no ray)", local, body, **load)
            res.note = note
            results.append(res)
    print("(c) Ray Serve: starting a local Ray instance ...", flush=True)
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="error")
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        print("  plain Ray Serve deployment (@serve.batch) ...", flush=True)
        serve.run(
            baseline_app(model, list(frame.columns), 64, args.max_wait_ms / 1000),
            name="baseline",
            route_prefix="/",
        )
        note = check_answer(port, body, want)
        res = run_load("ray serve (@serve.batch)", port, body, **load)
        res.note = note
        results.append(res)
        serve.delete("baseline")
        options = ServeOptions(
            trusted_types=[TREE], max_wait_ms=args.max_wait_ms, poll_interval_s=0, monitoring=False
        )
        direct = port + 1
        for n, at in ((1, port), (1, direct), (2, direct)):
            label = f"opsloop on ray, {n} replica{'s' * (n > 1)}" + (
                ", direct port" if at == direct else ", via ray's proxy"
            )
            print(f"  {label} ...", flush=True)
            opts = RayOptions(
                app_name="opsloop", replicas=n, direct_port=direct if at == direct else None
            )
            deploy_on_ray("models:/bench-rf@prod", opsloop_home(tmp), options, opts, port=port)
            note = check_answer(at, body, want)
            res = run_load(label, at, body, **load)
            res.note = note + _batch_note(at)
            results.append(res)
            serve.delete("opsloop")
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def _batch_note(port: int) -> str:
    import httpx

    seen: dict[int, float] = {}
    for _ in range(10):
        s = httpx.get(f"http://127.0.0.1:{port}/v1/stats", timeout=10).json()
        seen[s["pid"]] = s.get("predict", {}).get("mean_batch_rows", 0)
    return "; mean batch " + ", ".join(f"{v:.1f}" for v in seen.values()) + " rows"


def ray_summary(rows: list[LoadResult]) -> dict[str, Any]:
    """Ratios: opsloop (1 replica, direct port) against plain Ray Serve, two replicas against one."""
    base, _, one, two = rows[-4:]
    ratio = one.rps / base.rps if base.rps else float("inf")
    return {
        "results": [r.summary() for r in rows],
        "throughput_ratio": ratio,
        "p99_ratio": base.pct(0.99) / one.pct(0.99) if one.pct(0.99) else float("inf"),
        "goal_met": ratio >= 2 and one.pct(0.99) < base.pct(0.99),
        "two_replicas_over_one": two.rps / one.rps if one.rps else float("inf"),
    }


def ray_report(
    con: Any, table_cls: Any, rows: list[LoadResult], args: argparse.Namespace
) -> dict[str, Any]:
    t = table_cls(
        title=f"(c) the same forest on Ray Serve, {args.clients} concurrent clients, "
        f"single-row requests, {args.duration:g} s measured, {os.cpu_count()} cores"
    )
    for col in ("server", "requests", "errors", "throughput", "p50", "p99", "check"):
        t.add_column(col, justify="left" if col in ("server", "check") else "right")
    for r in rows:
        t.add_row(
            r.system,
            f"{r.requests:,}",
            str(r.errors),
            f"{r.rps:,.0f} req/s",
            f"{r.pct(0.5):.1f} ms",
            f"{r.pct(0.99):.1f} ms",
            r.note,
        )
    con.print(t)
    s = ray_summary(rows)
    con.print(
        f"throughput opsloop-on-ray/plain Ray Serve: [bold]{s['throughput_ratio']:.1f}x[/] "
        f"(goal >= 2x), p99 plain/opsloop: [bold]{s['p99_ratio']:.1f}x[/] -> "
        + ("[green]goal met[/]" if s["goal_met"] else "[red]goal MISSED[/]")
        + f"; two replicas / one: [bold]{s['two_replicas_over_one']:.2f}x[/] "
        f"on {os.cpu_count()} cores"
    )
    return s


__all__ = ["bench_ray", "ray_report", "ray_summary"]
