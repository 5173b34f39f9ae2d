"""Governance: what authentication, the permission check and the audit trail cost per request.

    .venv/bin/python benchmarks/governance.py            # 400 requests per case
    .venv/bin/python benchmarks/governance.py --quick    # 100

Runs ``opsloop server`` (uvicorn in a thread, SQLite) three ways side by side:
open (the default), ``auth=True, audit=False`` (token lookup + rule check on
every request) and ``auth=True`` (plus the hash-chained audit entry on every
change). Times a read (``GET /api/v1/experiments/{id}``) and a change
(``PUT /api/v1/runs/{id}/tags/k``) over one keep-alive connection per server,
calling the three in turn (so machine load falls on all alike), and prints
the median latency and the ratio to the open server. Then appends 5,000 audit
entries in process and times ``verify``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from benchmarks._common import free_port
from rich.console import Console
from rich.table import Table

from opsloop import Client
from opsloop.governance._audit import AuditService
from opsloop.server import create_app
from opsloop.settings import Settings
from opsloop.store import Database


def _serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _prepare(root: Path, name: str, **kw: Any) -> tuple[Settings, str, str, str]:
    settings = Settings(home=root / name, **kw)
    with Client(settings=settings) as c:
        exp = c.create_experiment("bench")
        run = c.create_run(exp.id)
        secret = c.governance.create_token("bench", "editor").secret
    return settings, secret, exp.id, run.id


def _measure(root: Path, n: int, cases: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median latencies per case; the servers run side by side and are called in turn, so a
    busy machine slows every case alike."""
    servers, clients, calls = [], {}, {}
    try:
        for name, kw in cases.items():
            settings, secret, exp_id, run_id = _prepare(root, name.replace(" ", "-"), **kw)
            server, thread, url = _serve(settings)
            servers.append((server, thread))
            http = httpx.Client(
                base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {secret}"}
            )
            clients[name] = http
            calls[name] = {
                "read": lambda i, h=http, e=exp_id: h.get(f"/experiments/{e}"),
                "change": lambda i, h=http, r=run_id: h.put(
                    f"/runs/{r}/tags/k", json={"value": str(i)}
                ),
            }
        times: dict[str, dict[str, list[float]]] = {c: {"read": [], "change": []} for c in cases}
        for label in ("read", "change"):
            for i in range(n + 20):
                for name in cases:
                    t0 = time.perf_counter()
                    calls[name][label](i).raise_for_status()
                    if i >= 20:  # the first 20 warm up
                        times[name][label].append(time.perf_counter() - t0)
        return {c: {k: statistics.median(v) for k, v in t.items()} for c, t in times.items()}
    finally:
        for http in clients.values():
            http.close()
        for server, thread in servers:
            server.should_exit = True
            thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 100 if args.quick else 400
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        cases = _measure(
            root,
            n,
            {
                "open (default)": {},
                "auth, no audit": {"auth": True, "audit": False},
                "auth + audit": {"auth": True},
            },
        )
        base = cases["open (default)"]
        rows = [
            [
                name,
                f"{1000 * c['read']:.2f} ms",
                f"{c['read'] / base['read']:.2f}x",
                f"{1000 * c['change']:.2f} ms",
                f"{c['change'] / base['change']:.2f}x",
            ]
            for name, c in cases.items()
        ]
        t = Table(title=f"median latency over {n} requests (one keep-alive connection, SQLite)")
        for col in ("server", "read", "vs open", "change", "vs open"):
            t.add_column(col, justify="left" if col == "server" else "right")
        for row in rows:
            t.add_row(*row)
        Console(width=120).print(t)
        db = Database(Settings(home=root / "trail").resolved_database_url)
        db.ensure_schema()
        trail = AuditService(db)
        entries = 5000
        t0 = time.perf_counter()
        for i in range(entries):
            trail.append(actor="a", method="PUT", path=f"/x/{i}", route="/x/{i}", status=200)
        appended = time.perf_counter() - t0
        t0 = time.perf_counter()
        check = trail.verify()
        verified = time.perf_counter() - t0
        assert check.ok and check.entries >= entries
        print(
            f"audit: {entries / appended:,.0f} appends/s (one transaction each), "
            f"verify {check.entries / verified:,.0f} entries/s"
        )


if __name__ == "__main__":
    main()
