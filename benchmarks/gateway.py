"""The gateway's added latency over calling the same upstream directly, in the same run.

    .venv/bin/python benchmarks/gateway.py              # ~1 min
    .venv/bin/python benchmarks/gateway.py --rate 300 --seconds 10 --json out.json

A fast local stub upstream (a raw ASGI app answering a fixed chat completion,
so the gateway's own cost is what is measured) runs in its own process; the
gateway (``create_gateway_app`` under uvicorn, one process) in another, over
a temporary home. This process sends an open-loop load (requests start on a
fixed schedule, ``--rate`` per second, whatever the answers do) over
keep-alive connections, first straight to the stub, then through the gateway
in each configuration:

- ``plain``: a key with no limits, a route with no guards or cache;
- ``limits-sql`` / ``limits-redis``: a key with a per-minute and a daily
  limit, counters in the database / in Redis (127.0.0.1:6379);
- ``guards``: injection, PII and secret guards on input and output;
- ``cache-hit``: the exact cache answering.

Printed: p50 and p99 of the end-to-end latency, the added latency (gateway
minus direct, same percentile), and the gateway's own ``X-Opsloop-Gateway-
Overhead-Ms`` header. The load generator shares the machine's cores with
both servers. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

ANSWER = json.dumps(
    {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, friend."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
).encode()


async def stub_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI upstream: reads the body, answers ``ANSWER``."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(ANSWER)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


def run_role(role: str, port: int, home: str) -> None:
    import uvicorn

    if role == "stub":
        uvicorn.run(stub_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    from opsloop.gateway import create_gateway_app
    from opsloop.settings import Settings

    redis_url = os.environ.get("BENCH_REDIS_URL") or ""
    app = create_gateway_app(Settings(home=Path(home)), redis_url=redis_url, config_ttl_s=5.0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    role: str, home: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--port", str(port), "--home", home],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{role} did not start")


async def load(
    url: str, key: str | None, model: str, rate: float, seconds: float, content: str
) -> tuple[list[float], list[float], int]:
    """Open-loop load; (latencies ms, overhead header ms, errors)."""
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": content}]}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    lat: list[float] = []
    over: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=256), timeout=30
    ) as client:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            dt = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                errors += 1
                return
            lat.append(dt)
            h = r.headers.get("x-opsloop-gateway-overhead-ms")
            if h is not None:
                over.append(float(h))

        # Warm-up: connections opened, caches filled.
        await asyncio.gather(*[one() for _ in range(20)])
        lat.clear()
        over.clear()
        errors = 0
        tasks = []
        start_t = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            due = start_t + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return lat, over, errors


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["stub", "gateway"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--home")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--seconds", type=float, default=6.0, help="per configuration")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.role:
        run_role(args.role, args.port, args.home)
        return

    sys.path.insert(0, str(ROOT / "src"))
    from opsloop import Client
    from opsloop.settings import Settings

    tmp = tempfile.mkdtemp(prefix="gw-bench-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        stub, stub_url = start("stub", tmp)
        procs.append(stub)
        with Client(settings=Settings(home=Path(tmp))) as c:
            gw = c.gateway
            up = [{"url": f"{stub_url}/v1", "model": "stub"}]
            gw.set_route("plain", upstreams=up)
            gw.set_route(
                "guards",
                upstreams=up,
                guards={
                    "injection": "block",
                    "pii": "redact",
                    "secrets": "redact",
                    "output_pii": "redact",
                    "output_secrets": "redact",
                    "canary": "CANARY-0123456789",
                },
            )
            gw.set_route("cached", upstreams=up, cache={"ttl_s": 600})
            free = gw.create_key("free", routes=["*"]).secret
            limited = gw.create_key(
                "limited",
                routes=["*"],
                limits={
                    "requests_per_minute": 10**8,
                    "daily_tokens": 10**12,
                    "daily_cost_usd": 10**6,
                },
            ).secret
        sql_gw, sql_url = start("gateway", tmp)
        procs.append(sql_gw)
        redis_ok = True
        try:
            import redis

            redis.Redis.from_url(args.redis_url, socket_timeout=1).ping()
        except Exception:
            redis_ok = False
        if redis_ok:
            r_gw, r_url = start("gateway", tmp, {"BENCH_REDIS_URL": args.redis_url})
            procs.append(r_gw)
        prompt = "Summarise the plot of Hamlet in two sentences, please."
        runs: list[tuple[str, str, str | None, str]] = [
            ("direct", stub_url, None, "stub"),
            ("plain", sql_url, free, "plain"),
            ("limits-sql", sql_url, limited, "plain"),
        ]
        if redis_ok:
            runs.append(("limits-redis", r_url, limited, "plain"))
        runs += [("guards", sql_url, free, "guards"), ("cache-hit", sql_url, free, "cached")]
        results: dict[str, dict[str, float]] = {}
        for name, url, key, model in runs:
            lat, over, errors = asyncio.run(load(url, key, model, args.rate, args.seconds, prompt))
            results[name] = {
                "n": len(lat),
                "errors": errors,
                "p50_ms": pct(lat, 50),
                "p99_ms": pct(lat, 99),
                "overhead_p50_ms": pct(over, 50),
                "overhead_p99_ms": pct(over, 99),
            }
        base = results["direct"]
        print(
            f"\nopen-loop {args.rate:g} req/s, {args.seconds:g} s per configuration; "
            f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs"
        )
        print(
            f"{'config':<14}{'n':>6}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'+p50 ms':>9}{'+p99 ms':>9}{'hdr p50':>9}{'hdr p99':>9}"
        )
        for name, r in results.items():
            add50 = r["p50_ms"] - base["p50_ms"] if name != "direct" else 0.0
            add99 = r["p99_ms"] - base["p99_ms"] if name != "direct" else 0.0
            r["added_p50_ms"], r["added_p99_ms"] = add50, add99
            print(
                f"{name:<14}{int(r['n']):>6}{int(r['errors']):>5}{r['p50_ms']:>9.2f}"
                f"{r['p99_ms']:>9.2f}{add50:>9.2f}{add99:>9.2f}"
                f"{r['overhead_p50_ms']:>9.3f}{r['overhead_p99_ms']:>9.3f}"
            )
        if not redis_ok:
            print("(Redis not reachable: limits-redis skipped)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
