"""Tracing: span ingest rates, and list/filter latency with 1,000,000 spans stored.

    .venv/bin/python benchmarks/tracing.py            # full run (several minutes)
    .venv/bin/python benchmarks/tracing.py --quick    # smoke test (about a minute)
    .venv/bin/python benchmarks/tracing.py --stored 1000000 --json out.json

Ingest (each into a fresh SQLite home; the server is a subprocess on 127.0.0.1,
so client and server share this machine's cores as they would in production
on one box):

- ``otlp-sdk``: spans made with the real OpenTelemetry SDK beforehand, then
  sent by its own ``OTLPSpanExporter`` (protobuf over HTTP) in batches of
  2,048; timed from the first export until the server has stored the last
  span (the exporter's encoding included).
- ``otlp-sdk-e2e``: the same, but the spans are made while timed (traces of 10
  spans with GenAI attributes, ``BatchSpanProcessor``): what an instrumented
  application on this machine sees, the OTel SDK's own cost included.
- ``otlp-raw``: pre-encoded protobuf ``ExportTraceServiceRequest`` batches of
  1,000 spans posted with httpx, one after another on one connection; timed
  until every response is back (each response means "stored").
- ``sdk-embedded`` / ``sdk-remote``: the opsloop SDK (``with span(...)``,
  10 nested spans per trace) writing to the home's database or to the server;
  timed from the first span until ``flush()`` returns.

Queries: ``--stored`` spans (100 traces of 10 spans per 1,000) are bulk-loaded
straight into the tables (the same rows ingest writes, without the per-span
normalisation, to keep setup short), then each query runs many times with
varied arguments, in process (``TraceService``) and through the REST API;
p50/p95 are printed against the goal (p95 < 200 ms). Goals: >= 5,000 spans/s
ingest, p95 < 200 ms at 1,000,000 spans.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import _group_cpu_seconds, free_port, python_cmd, server_process

GOAL_RATE = 5_000.0
GOAL_P95_MS = 200.0
MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "claude-3-5-haiku",
    "smollm2-135m-instruct",
    "text-embedding-3-small",
]
NAMES = [f"{w}-{i}" for w in ("chat", "rag", "agent", "summarise", "classify") for i in range(4)]


def _server(home: Path, tag: str) -> Any:
    port = free_port()
    code = (
        "import uvicorn\n"
        "from opsloop.server import create_app\n"
        "from opsloop.settings import Settings\n"
        f"app = create_app(Settings(home={str(home)!r}))\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning')\n"
    )
    url = f"http://127.0.0.1:{port}"
    cm = server_process(python_cmd(code), f"{url}/health", log_path=home.parent / f"{tag}.log")
    return url, cm


def _count_spans(home: Path) -> int:
    import sqlite3

    con = sqlite3.connect(home / "opsloop.db", timeout=60)
    try:
        return int(con.execute("SELECT count(*) FROM spans").fetchone()[0])
    finally:
        con.close()


def _wait_for(home: Path, n: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while _count_spans(home) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_count_spans(home)} of {n} spans stored")
        time.sleep(0.05)


# ---------------------------------------------------------------------------- ingest


class _Cpu:
    """CPU seconds used by this process and by a server's process group over one scenario.

    This machine is shared (other work may run beside the benchmark), so next to
    the wall-clock rate the CPU cost per span is printed: it does not depend on
    what else runs, and ``1e6 / server_us_per_span`` is the rate one free core
    would sustain.
    """

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.client0 = time.process_time()
        self.server0 = _group_cpu_seconds(server_pid) if server_pid else None

    def result(self, n: int, elapsed: float) -> dict[str, float]:
        client = time.process_time() - self.client0
        out = {
            "spans": n,
            "seconds": elapsed,
            "rate": n / elapsed,
            "client_us_per_span": client / n * 1e6,
        }
        if self.pid is not None and self.server0 is not None:
            server = (_group_cpu_seconds(self.pid) or 0.0) - self.server0
            out["server_us_per_span"] = server / n * 1e6
        return out


def _make_otel_spans(tracer: Any, n_spans: int) -> None:
    """Traces of 10 spans with GenAI attributes, made through the OpenTelemetry SDK API."""
    for i in range(n_spans // 10):
        with tracer.start_as_current_span(
            "agent", attributes={"user.id": f"u{i % 50}", "session.id": f"s{i % 500}"}
        ):
            for j in range(9):
                with tracer.start_as_current_span(
                    f"chat {MODELS[j % 3]}",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": MODELS[j % 3],
                        "gen_ai.request.temperature": 0.2,
                        "gen_ai.usage.input_tokens": 120,
                        "gen_ai.usage.output_tokens": 40,
                    },
                ):
                    pass


def bench_otlp_sdk(work: Path, n_spans: int, *, e2e: bool) -> dict[str, float]:
    """The real SDK exporter: ``e2e`` times span creation too (BatchSpanProcessor);
    otherwise spans are made first and the timing covers the exporter (encoding,
    HTTP) and the server, batch after batch of 2,048 spans."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    tag = "otlp-sdk-e2e" if e2e else "otlp-sdk"
    home = work / tag / "home"
    home.mkdir(parents=True)
    url, cm = _server(home, tag)
    with cm as proc:
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=60)
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        if e2e:
            provider.add_span_processor(
                BatchSpanProcessor(
                    exporter,
                    max_queue_size=n_spans + 1000,
                    max_export_batch_size=2048,
                    schedule_delay_millis=100,
                )
            )
            cpu = _Cpu(proc.pid)
            t0 = time.perf_counter()
            _make_otel_spans(provider.get_tracer("bench"), n_spans)
            provider.force_flush(timeout_millis=600_000)
        else:
            memory = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(memory))
            _make_otel_spans(provider.get_tracer("bench"), n_spans)
            finished = list(memory.get_finished_spans())
            cpu = _Cpu(proc.pid)
            t0 = time.perf_counter()
            for i in range(0, len(finished), 2048):
                if exporter.export(finished[i : i + 2048]).name != "SUCCESS":
                    raise RuntimeError("the OTLP exporter reported a failure")
        _wait_for(home, n_spans)
        elapsed = time.perf_counter() - t0
        res = cpu.result(n_spans, elapsed)
        provider.shutdown()
    return res


def _otlp_requests(n_spans: int, per_request: int) -> list[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(k: str, v: Any) -> KeyValue:
        if isinstance(v, int):
            return KeyValue(key=k, value=AnyValue(int_value=v))
        return KeyValue(key=k, value=AnyValue(string_value=str(v)))

    out = []
    now = time.time_ns()
    for r in range(math.ceil(n_spans / per_request)):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", "bench"))
        ss = rs.scope_spans.add()
        ss.scope.name = "bench"
        for t in range(per_request // 10):
            tid = random.getrandbits(128).to_bytes(16, "big")
            root = random.getrandbits(64).to_bytes(8, "big")
            for j in range(10):
                sp = ss.spans.add()
                sp.trace_id = tid
                sp.span_id = root if j == 0 else random.getrandbits(64).to_bytes(8, "big")
                if j:
                    sp.parent_span_id = root
                sp.name = "agent" if j == 0 else f"chat {MODELS[j % 3]}"
                sp.start_time_unix_nano = now + (r * 1000 + t) * 1000 + j
                sp.end_time_unix_nano = sp.start_time_unix_nano + 500_000
                if j == 0:
                    sp.attributes.extend([kv("user.id", f"u{t % 50}"), kv("session.id", f"s{t}")])
                else:
                    sp.attributes.extend(
                        [
                            kv("gen_ai.operation.name", "chat"),
                            kv("gen_ai.request.model", MODELS[j % 3]),
                            kv("gen_ai.usage.input_tokens", 120),
                            kv("gen_ai.usage.output_tokens", 40),
                        ]
                    )
        out.append(req.SerializeToString())
    return out


def bench_otlp_raw(work: Path, n_spans: int) -> dict[str, float]:
    import httpx

    home = work / "otlp-raw" / "home"
    home.mkdir(parents=True)
    bodies = _otlp_requests(n_spans, 1000)
    url, cm = _server(home, "otlp-raw")
    with cm as proc, httpx.Client(timeout=120) as http:
        cpu = _Cpu(proc.pid)
        headers = {"content-type": "application/x-protobuf"}
        t0 = time.perf_counter()
        for body in bodies:
            r = http.post(f"{url}/v1/traces", content=body, headers=headers)
            r.raise_for_status()
        elapsed = time.perf_counter() - t0
        res = cpu.result(len(bodies) * 1000, elapsed)
    stored = _count_spans(home)
    if stored != len(bodies) * 1000:
        raise RuntimeError(f"stored {stored} spans, sent {len(bodies) * 1000}")
    return res


def _sdk_workload(tracing: Any, n_spans: int, cpu: _Cpu) -> dict[str, float]:
    t0 = time.perf_counter()
    for i in range(n_spans // 10):
        with tracing.start_trace("agent", user_id=f"u{i % 50}", session_id=f"s{i % 500}") as root:
            root.set_input({"question": "what is the capital of France?"})
            for j in range(9):
                with tracing.span(f"step-{j}", "tool") as s:
                    s.set_output("ok")
    tracing.flush()
    return cpu.result(n_spans, time.perf_counter() - t0)


def bench_sdk(work: Path, n_spans: int, remote: bool) -> dict[str, float]:
    from opsloop import Client
    from opsloop.tracing import Tracing

    tag = "sdk-remote" if remote else "sdk-embedded"
    home = work / tag / "home"
    home.mkdir(parents=True)
    if not remote:
        client = Client(home=home)
        try:
            return _sdk_workload(Tracing(client), n_spans, _Cpu(None))
        finally:
            client.close()
    url, cm = _server(home, tag)
    with cm as proc:
        client = Client(url)
        try:
            rate = _sdk_workload(Tracing(client), n_spans, _Cpu(proc.pid))
        finally:
            client.close()
        if _count_spans(home) != n_spans:
            raise RuntimeError("remote SDK: not every span was stored")
        return rate


# ---------------------------------------------------------------------------- bulk load


def bulk_load(home: Path, n_spans: int, days: int = 30) -> dict[str, Any]:
    """``n_spans`` spans in traces of 10 over the last ``days`` days, inserted in bulk."""
    import orjson

    from opsloop.settings import Settings
    from opsloop.store import Database
    from opsloop.tracing._prices import PriceTable

    db = Database(Settings(home=home).resolved_database_url)
    db.ensure_schema()
    prices = PriceTable.build(None, {})
    rng = random.Random(7)
    now_us = int(time.time() * 1e6)
    span_ms = days * 86_400_000_000
    n_traces = n_spans // 10
    trace_cols = "id,name,root_span_id,start_us,end_us,duration_us,status,span_count,error_count,user_id,session_id,input_tokens,output_tokens,total_cost,tags,service_name,experiment_id,deployment_id"
    model_cols = "trace_id,model,start_us,calls,input_tokens,output_tokens,cost,latencies_us"
    span_cols = "trace_id,span_id,parent_span_id,name,kind,start_us,end_us,status,status_message,model,input_tokens,output_tokens,cost,attributes,inputs,outputs,events"
    ph = lambda cols: ",".join("?" for _ in cols.split(","))  # noqa: E731
    sql_t = f"INSERT INTO traces ({trace_cols}) VALUES ({ph(trace_cols)})"
    sql_m = f"INSERT INTO trace_models ({model_cols}) VALUES ({ph(model_cols)})"
    sql_s = f"INSERT INTO spans ({span_cols}) VALUES ({ph(span_cols)})"
    kinds = [
        "chain",
        "embedding",
        "retriever",
        "llm",
        "tool",
        "llm",
        "chain",
        "tool",
        "llm",
        "other",
    ]
    t0 = time.perf_counter()
    sample_users: list[str] = []
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for start in range(0, n_traces, 10_000):
            tr_rows, m_rows, s_rows = [], [], []
            for _ in range(start, min(n_traces, start + 10_000)):
                tid = f"{rng.getrandbits(128):032x}"
                t_start = now_us - rng.randrange(span_ms)
                user = f"user-{rng.randrange(2000)}"
                session = f"session-{rng.randrange(40_000)}"
                name = rng.choice(NAMES)
                failed = rng.random() < 0.03
                llm_model = rng.choice(MODELS[:4])
                ids = [f"{rng.getrandbits(64):016x}" for _ in range(10)]
                offset, tin_t, tout_t, cost_t = 0, 0, 0, 0.0
                per_model: dict[str, list[Any]] = {}
                end_max = t_start
                for j in range(10):
                    kind = kinds[j]
                    dur = (
                        int(rng.lognormvariate(11, 1))
                        if kind == "llm"
                        else rng.randrange(100, 20_000)
                    )
                    s_start = t_start + offset
                    offset += dur // 3
                    s_end = s_start + dur
                    model = (
                        llm_model
                        if kind == "llm"
                        else ("text-embedding-3-small" if kind == "embedding" else None)
                    )
                    tin = rng.randrange(50, 3000) if model else None
                    tout = rng.randrange(10, 800) if kind == "llm" else (0 if model else None)
                    cost = prices.cost(model, tin, tout) if model else None
                    attrs: dict[str, Any] = {"service.name": "bench"}
                    if j == 0:
                        attrs.update({"user.id": user, "session.id": session})
                    if model:
                        attrs.update(
                            {
                                "gen_ai.operation.name": "chat" if kind == "llm" else "embeddings",
                                "gen_ai.request.model": model,
                                "gen_ai.usage.input_tokens": tin,
                                "gen_ai.usage.output_tokens": tout,
                            }
                        )
                    err = failed and j == 9
                    s_rows.append(
                        (
                            tid,
                            ids[j],
                            None if j == 0 else ids[0],
                            name if j == 0 else f"{kind}-{j}",
                            kind,
                            s_start,
                            s_end,
                            "ERROR" if err else "OK",
                            "RuntimeError: tool failed" if err else None,
                            model,
                            tin,
                            tout,
                            cost,
                            orjson.dumps(attrs).decode(),
                            orjson.dumps([{"role": "user", "content": f"question {j}"}]).decode(),
                            orjson.dumps(f"answer {j}").decode(),
                            None,
                        )
                    )
                    if model:
                        pm = per_model.setdefault(model, [0, 0, 0, 0.0, []])
                        pm[0] += 1
                        pm[1] += tin or 0
                        pm[2] += tout or 0
                        pm[3] += cost or 0.0
                        pm[4].append(str(dur))
                    tin_t += tin or 0
                    tout_t += tout or 0
                    cost_t += cost or 0.0
                    end_max = max(end_max, s_end)
                tr_rows.append(
                    (
                        tid,
                        name,
                        ids[0],
                        t_start,
                        end_max,
                        end_max - t_start,
                        "ERROR" if failed else "OK",
                        10,
                        int(failed),
                        user,
                        session,
                        tin_t,
                        tout_t,
                        cost_t,
                        None,
                        "bench",
                        None,
                        None,
                    )
                )
                for m, (calls, mi, mo, mc, lats) in per_model.items():
                    m_rows.append((tid, m, t_start, calls, mi, mo, mc, ",".join(lats)))
                if len(sample_users) < 50:
                    sample_users.append(user)
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql_t, tr_rows)
            cur.executemany(sql_m, m_rows)
            cur.executemany(sql_s, s_rows)
            cur.execute("COMMIT")
            print(f"\r  loaded {min(n_traces, start + 10_000) * 10:,} spans", end="", flush=True)
        cur.execute("PRAGMA optimize")
    finally:
        raw.close()
    db.dispose()
    elapsed = time.perf_counter() - t0
    print(f"\r  loaded {n_spans:,} spans ({n_traces:,} traces) in {elapsed:.0f} s", flush=True)
    return {"users": sample_users, "load_s": elapsed}


# ---------------------------------------------------------------------------- queries


def _pcts(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[max(0, math.ceil(0.95 * len(s)) - 1)]


def run_queries(
    home: Path, info: dict[str, Any], repeat: int, url: str | None
) -> list[dict[str, Any]]:
    """p50/p95 of each query, in process (``url`` None) or through the REST API."""
    import httpx

    from opsloop.settings import Settings
    from opsloop.store import Database
    from opsloop.tracing._service import TraceService

    svc = TraceService(Database(Settings(home=home).resolved_database_url), Settings(home=home))
    http = httpx.Client(base_url=f"{url}/api/v1", timeout=60) if url else None

    def list_(**kw: Any) -> Any:
        if http is None:
            return svc.list_traces(**kw).model_dump()
        r = http.get("/traces", params=kw)
        r.raise_for_status()
        return r.json()

    def get(tid: str) -> Any:
        if http is None:
            return svc.get_trace(tid)
        return http.get(f"/traces/{tid}").raise_for_status().json()

    def stats(**kw: Any) -> Any:
        if http is None:
            return svc.stats(**kw)
        return http.get("/traces/stats", params=kw).raise_for_status().json()

    # Keyset tokens 100 to 200 pages deep (5,000 to 10,000 traces in).
    tokens, tok = [], None
    for p in range(200):
        page = list_(limit=50, page_token=tok) if tok else list_(limit=50)
        tok = page["next_page_token"]
        if p >= 100:
            tokens.append(tok)
    first_ids = [t["id"] for t in list_(limit=repeat)["traces"]]
    users = info["users"]
    now_ms = int(time.time() * 1000)
    day = 86_400_000
    cases: list[tuple[str, Callable[[int], Any]]] = [
        ("list: first page (50)", lambda i: list_(limit=50)),
        (
            "list: deep page via keyset",
            lambda i: list_(limit=50, page_token=tokens[i % len(tokens)]),
        ),
        ("filter: user", lambda i: list_(user_id=users[i % len(users)])),
        ("filter: session", lambda i: list_(session_id=f"session-{i * 7919 % 40_000}")),
        ("filter: status=error", lambda i: list_(status="error")),
        ("filter: model", lambda i: list_(model=MODELS[i % 4])),
        (
            "filter: model + user",
            lambda i: list_(model=MODELS[i % 4], user_id=users[i % len(users)]),
        ),
        ("filter: latency > 2 s", lambda i: list_(min_latency_ms=2000)),
        ("filter: cost >= $0.01", lambda i: list_(min_cost=0.01)),
        ("filter: name contains", lambda i: list_(name_contains=f"rag-{i % 4}")),
        (
            "filter: time range (1 day)",
            lambda i: list_(
                since_ms=now_ms - (i % 25 + 2) * day, until_ms=now_ms - (i % 25 + 1) * day
            ),
        ),
        (
            "filter: string (error, model, latency)",
            lambda i: list_(
                filter=f'status = "error" and model = "{MODELS[i % 4]}" and latency_ms > 100'
            ),
        ),
        (
            "sort: slowest first, 1-day range",
            lambda i: list_(
                sort="latency_ms",
                since_ms=now_ms - (i % 25 + 2) * day,
                until_ms=now_ms - (i % 25 + 1) * day,
            ),
        ),
        ("sort: costliest first, one model", lambda i: list_(sort="cost", model=MODELS[i % 4])),
        ("sort: slowest first, all traces", lambda i: list_(sort="latency_ms")),
        ("trace: tree of 10 spans", lambda i: get(first_ids[i % len(first_ids)])),
        ("stats: last 24 h", lambda i: stats(since_ms=now_ms - day)),
    ]
    results = []
    for name, fn in cases:
        fn(0)  # warm-up
        samples = []
        for i in range(repeat):
            t0 = time.perf_counter()
            fn(i + 1)
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p95 = _pcts(samples)
        results.append({"query": name, "p50_ms": p50, "p95_ms": p95, "n": repeat})
    t0 = time.perf_counter()
    stats()
    results.append(
        {
            "query": "stats: all time (info)",
            "p50_ms": (time.perf_counter() - t0) * 1000,
            "p95_ms": None,
            "n": 1,
        }
    )
    if http is not None:
        http.close()
    svc.db.dispose()
    return results


# ---------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--spans", type=int, default=None, help="spans per ingest scenario")
    ap.add_argument("--stored", type=int, default=None, help="spans stored for the query benchmark")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each query")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args()
    n_spans = args.spans or (5_000 if args.quick else 50_000)
    stored = args.stored or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (10 if args.quick else 40)
    out: dict[str, Any] = {"cpus": os.cpu_count(), "ingest": {}, "queries": {}}
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-tracing-") as tmp:
        work = Path(tmp)
        if not args.skip_ingest:
            print(f"ingest: {n_spans:,} spans per scenario (goal >= {GOAL_RATE:,.0f} spans/s)")
            for name, fn in (
                (
                    "otlp-sdk (OTel SDK's OTLPSpanExporter -> /v1/traces)",
                    lambda: bench_otlp_sdk(work, n_spans, e2e=False),
                ),
                (
                    "otlp-sdk-e2e (spans made by the OTel SDK, exported)",
                    lambda: bench_otlp_sdk(work, n_spans, e2e=True),
                ),
                (
                    "otlp-raw (pre-encoded protobuf, 1,000 spans/request)",
                    lambda: bench_otlp_raw(work, n_spans),
                ),
                (
                    "sdk-embedded (opsloop SDK -> SQLite)",
                    lambda: bench_sdk(work, n_spans, remote=False),
                ),
                (
                    "sdk-remote (opsloop SDK -> server)",
                    lambda: bench_sdk(work, n_spans, remote=True),
                ),
            ):
                res = fn()
                out["ingest"][name] = res
                rate = res["rate"]
                mark = "ok" if rate >= GOAL_RATE else "BELOW GOAL"
                cpu = f"client {res['client_us_per_span']:5.0f} us/span"
                if "server_us_per_span" in res:
                    cpu += f", server {res['server_us_per_span']:5.0f} us/span"
                print(f"  {name:55s} {rate:8,.0f} spans/s  {mark:10s} (CPU: {cpu})", flush=True)
        if not args.skip_queries:
            home = work / "stored" / "home"
            home.mkdir(parents=True)
            print(f"queries: {stored:,} spans stored (goal p95 < {GOAL_P95_MS:.0f} ms)")
            info = bulk_load(home, stored)
            out["load_s"] = info["load_s"]
            for mode in ("embedded", "rest"):
                if mode == "embedded":
                    res = run_queries(home, info, repeat, None)
                else:
                    url, cm = _server(home, "queries")
                    with cm:
                        res = run_queries(home, info, repeat, url)
                out["queries"][mode] = res
                print(f"  {mode}:")
                for r in res:
                    p95 = r["p95_ms"]
                    mark = "" if p95 is None else ("ok" if p95 < GOAL_P95_MS else "ABOVE GOAL")
                    p95s = "-" if p95 is None else f"{p95:8.1f}"
                    print(
                        f"    {r['query']:42s} p50 {r['p50_ms']:8.1f} ms  p95 {p95s} ms  {mark}",
                        flush=True,
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
