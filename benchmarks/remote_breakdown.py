"""Where one SDK-to-server request spends its time: create a run with 10 params.

    .venv/bin/python benchmarks/remote_breakdown.py            # ~1 min
    .venv/bin/python benchmarks/remote_breakdown.py --n 500 --profile

Method (figures, not assertions; run it several times on a busy machine):

1. End to end: ``opsloop server`` (subprocess, SQLite, loopback) and an
   ``opsloop.Client`` on it; ``n`` calls of ``create_run(exp, params=10)``
   (and the same with ``metrics=`` for the one-request creation). Wall time
   per request; the client's CPU (``time.process_time``) and the server
   process's CPU (``psutil``, user + system) over the same loop.
2. Client parts, in isolation: building the body and ``orjson.dumps``, and
   decoding a real answer into a ``Run``; "httpx" is the client's CPU minus
   those two.
3. Server parts, in process on the same home (the server stopped first):
   the ASGI app called directly with a prepared request (middleware,
   routing, FastAPI dependencies and body validation, the service, the
   database, the response), then the service alone, then the database
   alone (time inside SQLite's ``execute``/``commit``, from cProfile's
   figures for those built-ins scaled to the unprofiled service time).
   "FastAPI/ASGI" is app minus service; "uvicorn/HTTP" is the server
   process's CPU minus the app; "loopback and scheduling" is the wall time
   neither process spent on CPU.
4. ``--profile`` prints cProfile's top functions for the client loop and
   the in-process app loop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port

N_PARAMS = 10


def _params(i: int) -> dict[str, str]:
    return {f"param_{j}": f"value-{i}-{j}" for j in range(N_PARAMS)}


def _per_call_us(fn: Callable[[int], Any], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def _profile(fn: Callable[[int], Any], n: int, top: int, title: str) -> pstats.Stats:
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        fn(i)
    prof.disable()
    st = pstats.Stats(prof)
    if top:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
        print(f"\n--- cProfile, {title} ({n} calls), top {top} by own time")
        lines = out.getvalue().splitlines()
        start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
        print("\n".join(lines[start : start + top + 1]))
    return st


def _db_share(st: pstats.Stats) -> float:
    """Share of the profiled time spent inside SQLite's C calls (execute, commit, ...)."""
    stats: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    db = sum(v[2] for k, v in stats.items() if "sqlite3" in str(k[2]))
    return db / total if total else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="requests per measurement")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = ap.parse_args(argv)
    n = args.n

    import orjson
    import psutil
    from tracking import _opsloop_server

    import opsloop
    from opsloop.tracking.entities import Run

    with tempfile.TemporaryDirectory(prefix="opsloop-breakdown-") as tmp_s:
        tmp = Path(tmp_s)
        home, logs = tmp / "home", tmp / "logs"
        logs.mkdir()
        opsloop.Client(home=home).close()  # create the database before the server starts

        port = free_port()
        with _opsloop_server(home, port, logs) as proc:
            server = psutil.Process(proc.pid)
            procs = [server, *server.children(recursive=True)]

            def server_cpu() -> float:
                return sum(sum(p.cpu_times()[:2]) for p in procs)

            c = opsloop.Client(f"http://127.0.0.1:{port}")
            exp = c.create_experiment(f"breakdown-{time.time_ns()}").id
            for i in range(50):  # warm-up: connection, caches, SQLite pages
                c.create_run(exp, params=_params(i))

            e2e: dict[str, tuple[float, float, float]] = {}
            cases: dict[str, Callable[[int], Any]] = {
                "create_run + 10 params": lambda i: c.create_run(exp, params=_params(i)),
                "create_run + 10 params + 1 metric (one request)": lambda i: c.create_run(
                    exp, params=_params(i), metrics={"loss": 0.5}
                ),
            }
            try:  # before the one-request creation existed, skip that case
                c.create_run(exp, metrics={"loss": 0.5})
            except TypeError:
                cases.pop("create_run + 10 params + 1 metric (one request)")
            for label, fn in cases.items():
                cpu_c, cpu_s, t0 = time.process_time(), server_cpu(), time.perf_counter()
                for i in range(n):
                    fn(i)
                wall = (time.perf_counter() - t0) / n * 1e6
                e2e[label] = (
                    wall,
                    (time.process_time() - cpu_c) / n * 1e6,
                    (server_cpu() - cpu_s) / n * 1e6,
                )
            sample = c.context.transport.call(
                "POST", "/runs", json={"experiment_id": exp, "params": _params(0)}
            )
            if args.profile:
                _profile(lambda i: c.create_run(exp, params=_params(i)), n, 25, "client create_run")
            c.close()

        # -- client parts in isolation
        from opsloop.tracking import _validation as V

        def body(i: int) -> bytes:
            return orjson.dumps(
                {
                    "experiment_id": exp,
                    "params": {k: V.param_value(v) for k, v in _params(i).items()},
                }
            )

        answer = orjson.dumps(sample)
        encode_us = _per_call_us(body, 20 * n)
        decode_us = _per_call_us(lambda i: Run.model_validate_json(answer), 20 * n)

        # -- server parts in process, on the same home
        from opsloop.core import Context
        from opsloop.server import create_app
        from opsloop.settings import Settings
        from opsloop.tracking import tracking_service

        ctx = Context(Settings(home=home))
        app = create_app(context=ctx)
        svc = ctx.room(tracking_service)
        loop = asyncio.new_event_loop()

        async def asgi(i: int) -> int:
            raw = body(i)
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/api/v1/runs",
                "raw_path": b"/api/v1/runs",
                "root_path": "",
                "query_string": b"",
                "headers": [
                    (b"host", b"127.0.0.1"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                ],
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
                "app": app,
            }
            sent = False
            status = 0

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}

            async def send(msg: dict[str, Any]) -> None:
                nonlocal status
                if msg["type"] == "http.response.start":
                    status = msg["status"]

            await app(scope, receive, send)
            if status != 201:
                raise RuntimeError(f"in-process request answered {status}")
            return status

        def app_call(i: int) -> int:
            return loop.run_until_complete(asgi(i))

        def svc_call(i: int) -> Any:
            return svc.create_run(exp, params=_params(i))

        for i in range(20):
            app_call(i)
            svc_call(i)
        app_us = min(_per_call_us(app_call, n) for _ in range(3))
        svc_us = min(_per_call_us(svc_call, n) for _ in range(3))
        db_us = svc_us * _db_share(_profile(svc_call, n, 0, "service"))
        if args.profile:
            _profile(app_call, n, 25, "server app in process")
        loop.close()
        ctx.close()

    print(f"\nopsloop {opsloop.__version__}: one create_run with {N_PARAMS} params, n={n}")
    for label, (wall, cli, srv) in e2e.items():
        print(
            f"  end to end, {label}: {wall:7.0f} µs/request (client CPU {cli:.0f}, server CPU {srv:.0f})"
        )
    wall, cli, srv = e2e["create_run + 10 params"]
    rows = [
        ("client: body + orjson.dumps", encode_us),
        ("client: answer -> Run (model_validate_json)", decode_us),
        ("client: httpx + the rest", max(0.0, cli - encode_us - decode_us)),
        ("server: uvicorn/HTTP (server CPU - app)", max(0.0, srv - app_us)),
        ("server: FastAPI/ASGI (app - service)", max(0.0, app_us - svc_us)),
        ("server: service (Python, SQLAlchemy)", max(0.0, svc_us - db_us)),
        ("server: database (SQLite calls)", db_us),
        ("loopback and scheduling (wall - both CPUs)", max(0.0, wall - cli - srv)),
    ]
    print(f"\nbreakdown of one create_run + {N_PARAMS} params ({wall:.0f} µs wall):")
    for name, us in rows:
        print(f"  {name:46s} {us:7.0f} µs  {us / wall:5.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
