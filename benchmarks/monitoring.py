"""Monitoring's cost to the serving path, and the dashboard's query over a day of traffic.

    PYTHONPATH=src:. .venv/bin/python benchmarks/monitoring.py            # ~2 min
    PYTHONPATH=src:. .venv/bin/python benchmarks/monitoring.py --quick    # ~40 s

(a) Serving: one Python-function model (returns its input's ``x``) served by
``opsloop serve`` in a subprocess, once with monitoring on (prediction log at
sample ratio 1.0, rollups, Prometheus metrics) and once with ``--no-monitoring``,
alternating on/off/on/off so drift in the machine's load hits both. The same
open-loop load hits both: 100 requests per second (one request every 10 ms,
sent whether or not the last has answered), single-row ``POST /v1/predict``,
for a fixed duration after a warm-up; latency is measured by the client. The
figure is the p99 (and p50) with monitoring minus without.

(b) Dashboard: a day of 100 rps traffic is 8.64 M requests; the dashboard
reads the per-minute rollups (1,440 rows per deployment, version and route),
so the query is timed over a day of rollups for 3 versions x 2 routes (the
charts' 6-hour and 24-hour series), plus the latest-1,000-rows query of the
prediction log over ``--log-rows`` logged rows (its index is (deployment, ts)).

Benchmarks print figures; they assert nothing. See docs/monitoring.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from opsloop.registry.flavors import PythonModel, save_pyfunc


class Echo(PythonModel):
    def predict(self, data: list[dict[str, Any]]) -> list[Any]:
        return [row["x"] for row in data]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(folder: Path, home: Path, monitoring: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "OPSLOOP_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [
        sys.executable,
        "-m",
        "opsloop.serving.cli",
        str(folder),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--poll-interval",
        "0",
    ]
    if not monitoring:
        args.append("--no-monitoring")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


async def _load(url: str, rps: float, seconds: float) -> list[float]:
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            r = await c.post("/v1/predict", json={"records": [{"x": i, "who": "a@b.co"}]})
            lat.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()

        tasks = []
        start = time.perf_counter()
        n = int(rps * seconds)
        for i in range(n):
            delay = start + i / rps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return lat


def serving(seconds: float, rounds: int) -> dict[str, Any]:
    out: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as d:
        folder = save_pyfunc(Path(d) / "echo", "benchmarks.monitoring:Echo")
        for r in range(rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                proc, url = _serve(folder, Path(d) / "home", mode == "on")
                try:
                    asyncio.run(_load(url, 100, 2))  # warm-up
                    out[mode] += asyncio.run(_load(url, 100, seconds))
                finally:
                    proc.terminate()
                    proc.wait(30)
    res = {}
    for mode, lat in out.items():
        a = np.asarray(lat)
        res[mode] = {
            "n": a.size,
            "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)),
        }
    return res


def overhead(reps: int = 20) -> dict[str, float]:
    """In-process, per request: ``observe`` (the request path) and the background flush's
    thread CPU for one second of 100 rps traffic (mask, serialise, write to SQLite)."""
    from opsloop.core import Context
    from opsloop.monitoring._observer import PredictionLogger
    from opsloop.monitoring._service import MonitoringService
    from opsloop.settings import Settings

    with tempfile.TemporaryDirectory() as d:
        ctx = Context(Settings(home=Path(d)))
        svc = MonitoringService(ctx.database)
        from prometheus_client import CollectorRegistry

        lg = PredictionLogger(
            svc.ingest, deployment="d", flush_s=3600, registry=CollectorRegistry()
        )
        obs, flush = [], []
        for k in range(reps):
            t0 = time.perf_counter()
            for i in range(100):
                lg.observe(
                    {
                        "route": "/v1/predict",
                        "status": 200,
                        "latency_ms": 1.0,
                        "rows": [{"x": i, "who": "a@b.co"}],
                        "outputs": [i],
                        "request_id": f"q{k}-{i}",
                        "model": "m",
                        "version": "1",
                    }
                )
            obs.append((time.perf_counter() - t0) / 100 * 1e6)
            c0 = time.thread_time()
            lg.flush()
            flush.append((time.thread_time() - c0) * 1000)
        lg.close()
        ctx.close()
    return {
        "observe_us_per_request": float(np.median(obs)),
        "flush_cpu_ms_per_100_requests": float(np.median(flush)),
    }


def dashboard(log_rows: int) -> dict[str, float]:
    from opsloop.core import Context
    from opsloop.monitoring._service import MonitoringService
    from opsloop.settings import Settings

    with tempfile.TemporaryDirectory() as d:
        ctx = Context(Settings(home=Path(d)))
        svc = MonitoringService(ctx.database)
        now = int(time.time() // 60 * 60_000)
        rng = np.random.default_rng(0)
        rollups = []
        for m in range(1440):
            for v in ("1", "2", "3"):
                for route in ("/v1/predict", "/invocations"):
                    b = rng.multinomial(1000, [0.1, 0.3, 0.3, 0.2, 0.05, 0.05, 0, 0, 0, 0, 0, 0, 0])
                    rollups.append(
                        {
                            "minute": now - m * 60_000,
                            "deployment": "d",
                            "version": v,
                            "route": route,
                            "requests": 1000,
                            "errors": 1,
                            "rows": 1000,
                            "latency_sum_ms": 3000.0,
                            **{f"b{i}": int(x) for i, x in enumerate(b)},
                        }
                    )
        for i in range(0, len(rollups), 5000):
            svc.ingest([], rollups[i : i + 5000])
        preds = [
            {
                "request_id": f"r{i}",
                "deployment": "d",
                "model": "m",
                "version": "1",
                "route": "/v1/predict",
                "inputs": {"x": i, "y": "abc"},
                "output": i,
                "latency_ms": 1.0,
                "status": 200,
                "ts": now - 86_400_000 + i * 86_400_000 // log_rows,
            }
            for i in range(log_rows)
        ]
        for i in range(0, len(preds), 20_000):
            svc.ingest(preds[i : i + 20_000], [])

        def timed(f: Any, reps: int = 5) -> float:
            f()
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                ts.append((time.perf_counter() - t0) * 1000)
            return float(np.median(ts))

        day = now - 86_400_000
        res = {
            "metrics_24h_1min_ms": timed(lambda: svc.metrics("d", since=day, until=now + 60_000)),
            "metrics_24h_by_version_ms": timed(
                lambda: svc.metrics("d", since=day, until=now + 60_000, by_version=True)
            ),
            "metrics_6h_ms": timed(lambda: svc.metrics("d", since=now - 6 * 3_600_000, until=now)),
            "summary_5min_ms": timed(lambda: svc.summary("d", since=now - 300_000, until=now)),
            "latest_1000_predictions_ms": timed(lambda: svc.predictions("d", limit=1000)),
        }
        ctx.close()
        return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--log-rows", type=int, default=200_000)
    ap.add_argument("--only", choices=["serving", "dashboard"], default=None)
    args = ap.parse_args()
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    seconds, rounds = (5, 2) if args.quick else (15, 4)
    if args.only != "dashboard":
        for k, v in overhead().items():
            print(f"overhead {k}: {v:.2f}")
        s = serving(seconds, rounds)
        for mode in ("off", "on"):
            print(
                f"serving monitoring {mode:3}: n={s[mode]['n']} p50={s[mode]['p50']:.2f} ms "
                f"p99={s[mode]['p99']:.2f} ms"
            )
        print(
            f"added by monitoring: p50 {s['on']['p50'] - s['off']['p50']:+.2f} ms, "
            f"p99 {s['on']['p99'] - s['off']['p99']:+.2f} ms (at 100 rps)"
        )
    if args.only != "serving":
        d = dashboard(args.log_rows // (4 if args.quick else 1))
        for k, v in d.items():
            print(f"dashboard {k}: {v:.1f} ms")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
