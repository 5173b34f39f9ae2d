"""The serving hook: every predict answer is counted and (sampled) logged, off the request path.

``serving_observer(app=, settings=, options=)`` is declared as the
``serving.observer`` hook; ``opsloop.serving`` calls it once per app and then
``observe(record)`` on every predict answer. ``observe`` only counts into
in-memory Prometheus metrics and per-minute rollups and appends the sampled
record to a bounded queue (a few microseconds); a daemon thread writes the
queue and the rollups in batches every ``FLUSH_S`` seconds through the
monitoring SDK (the server's database, or the server at ``tracking_uri``),
masking PII first. It also adds ``GET /metrics`` (Prometheus text format) to
the app.
"""

from __future__ import annotations

import bisect
import collections
import logging
import random
import sys
import threading
import time
from typing import Any

from opsloop.core import Context, mask_pii_value
from opsloop.monitoring._client import Monitoring
from opsloop.monitoring._tables import COUNTER_COLUMNS, LATENCY_BUCKETS_MS

__all__ = ["PredictionLogger", "mask_value", "serving_observer"]

log = logging.getLogger("opsloop.monitoring")
FLUSH_S = 1.0
MAX_QUEUE = 100_000
YIELD_EVERY = 16  # records masked between two chances for the event loop to run
WRITE_CHUNK = 64  # rows per write
#: The longest a request waits for the GIL while the writer thread runs Python (masking,
#: encoding rows). CPython's default, 5 ms, added about 5 ms to the serving p99 at 100 rps.
SWITCH_INTERVAL_S = 0.0005
_HIST_BOUNDS = tuple(b / 1000 for b in LATENCY_BUCKETS_MS)


def mask_value(v: Any) -> Any:
    """PII masked in every string inside ``v`` (e-mails, cards, phones, ...)."""
    return mask_pii_value(v)


class PredictionLogger:
    """Counts every answer, queues sampled ones, writes both from a daemon thread."""

    def __init__(
        self,
        write: Any,
        *,
        deployment: str | None,
        sample_ratio: float = 1.0,
        flush_s: float = FLUSH_S,
        registry: Any = None,
    ) -> None:
        self._write = write  # callable(predictions, rollups)
        self.deployment = deployment
        self.sample_ratio = sample_ratio
        self.flush_s = flush_s
        self._queue: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_QUEUE)
        self._rollups: dict[tuple[int, str, str, str], list[float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.dropped = 0
        self.written = 0
        self._prom = _PromMetrics(registry) if registry is not None else None
        # A served app's threads are this writer and the event loop: switching the GIL
        # sooner costs the writer little and bounds what a request waits behind it.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._loop, name="opsloop-monitoring", daemon=True)
        self._thread.start()

    # -- the request path ------------------------------------------------------------

    def observe(self, record: dict[str, Any]) -> None:
        now = time.time()
        dep = self.deployment or record.get("model") or ""
        version = record.get("version") or ""
        route = record["route"]
        status = int(record["status"])
        latency = float(record["latency_ms"])
        rows = record.get("rows")
        tokens = int(record.get("tokens") or 0)
        n_rows = len(rows) if rows else 0
        key = (int(now // 60) * 60_000, dep, version, route)
        bucket = bisect.bisect_left(LATENCY_BUCKETS_MS, latency)
        with self._lock:
            counters = self._rollups.get(key)
            if counters is None:
                counters = self._rollups[key] = [0.0] * len(COUNTER_COLUMNS)
            counters[0] += 1
            counters[1] += status >= 500 or status == 0
            counters[2] += n_rows
            counters[3] += latency
            counters[4] += tokens
            counters[6 + bucket] += 1
        if self._prom is not None:
            self._prom.observe(dep, version, route, status, latency / 1000, n_rows, tokens)
        if rows and (self.sample_ratio >= 1.0 or random.random() < self.sample_ratio):
            if len(self._queue) == MAX_QUEUE:
                self.dropped += 1
            record = dict(record, deployment=dep, ts=int(now * 1000))
            self._queue.append(record)

    # -- the background ----------------------------------------------------------------

    def _take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        records = []
        while self._queue:
            records.append(self._queue.popleft())
        with self._lock:
            rollups, self._rollups = self._rollups, {}
        preds = []
        for n, r in enumerate(records):
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # let the event loop take the GIL: requests wait less
            outputs = r.get("outputs") or []
            for i, row in enumerate(r["rows"]):
                preds.append(
                    {
                        "request_id": r["request_id"],
                        "row_index": i,
                        "deployment": r["deployment"],
                        "model": r.get("model") or "",
                        "version": r.get("version") or "",
                        "route": r["route"],
                        "inputs": mask_value(row),
                        "output": mask_value(outputs[i]) if i < len(outputs) else None,
                        "latency_ms": r["latency_ms"],
                        "status": r["status"],
                        "ts": r["ts"],
                    }
                )
        rolls = [
            {
                "minute": k[0],
                "deployment": k[1],
                "version": k[2],
                "route": k[3],
                **dict(zip(COUNTER_COLUMNS, v, strict=True)),
            }
            for k, v in rollups.items()
        ]
        return preds, rolls

    def flush(self) -> int:
        preds, rolls = self._take()
        if preds or rolls:
            # small transactions, with the GIL given up between them
            for i in range(0, max(len(preds), 1), WRITE_CHUNK):
                self._write(preds[i : i + WRITE_CHUNK], rolls if i == 0 else [])
                time.sleep(0)
            self.written += len(preds)
        return len(preds)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_s)
            try:
                self.flush()
            except Exception as exc:  # the log is best effort: never stop serving for it
                log.warning("could not write the prediction log: %s", exc)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception as exc:
            log.warning("could not write the prediction log at close: %s", exc)


class _PromMetrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram  # lazy: only served apps

        labels = ["deployment", "version", "route"]
        self.requests = Counter(
            "opsloop_requests", "Predict requests answered", [*labels, "status"], registry=registry
        )
        self.rows = Counter("opsloop_predicted_rows", "Rows predicted", labels, registry=registry)
        self.tokens = Counter(
            "opsloop_tokens", "Prompt and completion tokens (LLM routes)", labels, registry=registry
        )
        self.latency = Histogram(
            "opsloop_request_latency_seconds",
            "Predict latency (seconds)",
            labels,
            buckets=_HIST_BOUNDS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any, Any]] = {}

    def observe(
        self, dep: str, version: str, route: str, status: int, secs: float, rows: int, tokens: int
    ) -> None:
        key = (dep, version, route, status)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = (
                self.requests.labels(dep, version, route, str(status)),
                self.rows.labels(dep, version, route),
                self.latency.labels(dep, version, route),
                self.tokens.labels(dep, version, route),
            )
        c[0].inc()
        if rows:
            c[1].inc(rows)
        c[2].observe(secs)
        if tokens:
            c[3].inc(tokens)


def serving_observer(*, app: Any, settings: Any, options: Any) -> PredictionLogger:
    """The ``serving.observer`` hook: a logger writing through the monitoring SDK, and /metrics."""
    from fastapi.responses import Response  # lazy: only servers

    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError:  # the monitoring extra is missing: log predictions, no /metrics
        log.warning("prometheus-client is not installed (opsloop[monitoring]): no GET /metrics")
        prometheus = False
    else:
        prometheus = True

    state: dict[str, Any] = {}
    lock = threading.Lock()

    def write(preds: list[dict[str, Any]], rolls: list[dict[str, Any]]) -> None:
        with lock:
            if "client" not in state:
                state["context"] = Context(settings)
                state["client"] = state["context"].room(Monitoring)
        state["client"].ingest(preds, rolls)

    registry = CollectorRegistry() if prometheus else None
    logger = PredictionLogger(
        write,
        deployment=getattr(options, "deployment", None),
        sample_ratio=float(getattr(options, "log_sample_ratio", 1.0)),
        registry=registry,
    )
    closer = logger.close

    def close() -> None:
        closer()
        ctx = state.get("context")
        if ctx is not None:
            ctx.close()

    logger.close = close  # type: ignore[method-assign]

    if registry is not None:
        reg = registry

        async def metrics() -> Response:
            return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

        app.add_api_route(
            "/metrics", metrics, methods=["GET"], summary="Prometheus metrics of this worker"
        )
    return logger
