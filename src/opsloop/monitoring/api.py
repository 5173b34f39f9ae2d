"""REST routes for monitoring, under ``/api/v1`` (and ``GET /metrics`` at the root).

- ``POST /monitoring/ingest``: logged prediction rows and per-minute counters (serving apps).
- ``POST /monitoring/labels``: ground truth by request id (and row), arriving any time.
- ``GET /monitoring/predictions?deployment=&since=&until=&version=&labelled=&limit=``.
- ``GET /monitoring/metrics?deployment=&since=&until=&bucket_s=&by_version=``: rolled-up series.
- ``GET /monitoring/performance?deployment=&since=&until=&bucket_s=``: estimated vs realised.
- ``GET /monitoring/scores?name=&since=&until=&bucket_s=&by=prompt,model&source=&limit=``:
  count and mean of a score's annotations on traces per bucket, prompt version and model.
- ``GET /monitoring/usage?route=&model=&since=&until=&bucket_s=&by=route,model``: the LLM
  gateway's cost, tokens, cache and guardrail hits per bucket, route and model.
- ``GET /monitoring/summary?deployment=&since=&until=``: one window's figures.
- ``GET /monitoring/deployments``: every deployment with traffic in the last day.
- ``POST|GET /monitoring/monitors``, ``GET|DELETE /monitoring/monitors/{name}``,
  ``POST /monitoring/monitors/{name}/run``.
- ``GET /monitoring/alerts?monitor=&state=&limit=``: alert history, newest first.
- ``GET /metrics``: Prometheus text format, the last 5 minutes per deployment, version and route
  (and ``opsloop_gateway_window_*`` per gateway route and model).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from opsloop.core import mask_pii_value, resolve_user
from opsloop.core.web import Actor, Ctx, StrictBody, ok, service
from opsloop.monitoring._backend import EmbeddedMonitoring
from opsloop.monitoring._report import performance_series
from opsloop.monitoring._tables import LATENCY_BUCKETS_MS
from opsloop.monitoring._usage import usage_totals
from opsloop.monitoring.entities import Alert, Monitor, MonitorRun

router = APIRouter(tags=["monitoring"])
root_router = APIRouter(tags=["monitoring"])


def monitoring_backend(ctx: Any) -> EmbeddedMonitoring:
    return EmbeddedMonitoring(ctx)


Svc = Annotated[EmbeddedMonitoring, Depends(service(monitoring_backend))]
Name = Annotated[str, Path(min_length=1, max_length=64)]
Dep = Annotated[str | None, Query(min_length=1, max_length=128)]
Ms = Annotated[int | None, Query(ge=0, le=2**62)]


class Ingest(StrictBody):
    predictions: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
    rollups: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)


class Labels(StrictBody):
    labels: list[dict[str, Any]] = Field(max_length=100_000)


class CreateMonitor(StrictBody):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["metric", "drift", "embedding"] = "metric"
    deployment: str = Field(min_length=1, max_length=128)
    metric: str | None = Field(default=None, max_length=32)
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = Field(default=0.0, allow_inf_nan=False)
    reference: str | None = Field(default=None, max_length=300)
    features: list[str] | None = Field(default=None, max_length=1000)
    text: Literal["input", "output"] = "input"
    interval_s: int = Field(default=60, ge=1, le=86_400)
    window_s: int = Field(default=300, ge=1, le=30 * 86_400)
    cooldown_s: int = Field(default=3600, ge=0, le=30 * 86_400)
    min_rows: int = Field(default=100, ge=1, le=10**9)
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str | None = Field(default=None, max_length=500)
    enabled: bool = True


class RunMonitor(StrictBody):
    now: int | None = Field(default=None, ge=0, le=2**62)
    force: bool = True


def _window(since: int | None, until: int | None, default_s: int) -> tuple[int, int]:
    until = int(time.time() * 1000) if until is None else until
    return (until - default_s * 1000 if since is None else since), until


@router.post("/monitoring/ingest", summary="Store logged predictions and add counters")
def ingest(body: Ingest, svc: Svc, ctx: Ctx) -> Response:
    rows = body.predictions
    if ctx.settings.pii_masking:  # masked at ingestion, whoever sent them
        masked = ("inputs", "output")
        rows = [{**p, **{k: mask_pii_value(p[k]) for k in masked if k in p}} for p in rows]
    return ok(svc.ingest(rows, body.rollups))


@router.post("/monitoring/labels", summary="Labels that arrived later, joined by request id")
def add_labels(body: Labels, svc: Svc) -> Response:
    return ok({"labelled": svc.add_labels(body.labels)})


@router.get("/monitoring/predictions", summary="Logged predictions with their labels")
def predictions(
    svc: Svc,
    deployment: Dep = None,
    since: Ms = None,
    until: Ms = None,
    version: Annotated[str | None, Query(max_length=64)] = None,
    labelled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 1000,
) -> Response:
    rows = svc.predictions(
        deployment=deployment,
        since=since,
        until=until,
        version=version,
        labelled=labelled,
        limit=limit,
    )
    return ok({"predictions": rows})


@router.get("/monitoring/metrics", summary="Request rate, errors, latency, tokens, cost over time")
def metrics(
    svc: Svc,
    deployment: Dep = None,
    since: Ms = None,
    until: Ms = None,
    bucket_s: Annotated[int, Query(ge=60, le=30 * 86_400)] = 60,
    by_version: bool = False,
) -> Response:
    since, until = _window(since, until, 3600)
    points = svc.metrics(
        deployment=deployment, since=since, until=until, bucket_s=bucket_s, by_version=by_version
    )
    return ok({"since": since, "until": until, "bucket_s": bucket_s, "points": points})


@router.get(
    "/monitoring/performance",
    summary="Accuracy per bucket: estimated from confidence, realised as labels join",
)
def performance(
    svc: Svc,
    deployment: Annotated[str, Query(min_length=1, max_length=128)],
    since: Ms = None,
    until: Ms = None,
    bucket_s: Annotated[int, Query(ge=60, le=30 * 86_400)] = 3600,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> Response:
    since, until = _window(since, until, 86_400)
    rows = svc.predictions(deployment=deployment, since=since, until=until, limit=limit)
    return ok({"points": performance_series(rows, bucket_s)})


@router.get(
    "/monitoring/scores",
    summary="Judge-score and feedback trends per time bucket, prompt version and model",
)
def scores(
    svc: Svc,
    name: Annotated[str, Query(min_length=1, max_length=64)],
    since: Ms = None,
    until: Ms = None,
    bucket_s: Annotated[int, Query(ge=60, le=30 * 86_400)] = 3600,
    by: Annotated[str, Query(max_length=32, pattern=r"^(prompt|model)?(,(prompt|model))*$")] = (
        "prompt,model"
    ),
    source: Annotated[Literal["human", "llm_judge", "code"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    since, until = _window(since, until, 86_400)
    points = svc.scores(
        name,
        since=since,
        until=until,
        bucket_s=bucket_s,
        by=[g for g in by.split(",") if g],
        source=source,
        limit=limit,
    )
    return ok({"since": since, "until": until, "bucket_s": bucket_s, "points": points})


@router.get(
    "/monitoring/usage",
    summary="LLM gateway cost, cache hits and guardrail hits per bucket, route and model",
)
def usage(
    svc: Svc,
    route: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    since: Ms = None,
    until: Ms = None,
    bucket_s: Annotated[int, Query(ge=60, le=30 * 86_400, multiple_of=60)] = 300,
    by: Annotated[str, Query(max_length=32, pattern=r"^(route|model)?(,(route|model))*$")] = (
        "route,model"
    ),
) -> Response:
    since, until = _window(since, until, 3600)
    points = svc.usage(
        since=since,
        until=until,
        bucket_s=bucket_s,
        by=[g for g in by.split(",") if g],
        route=route,
        model=model,
    )
    return ok({"since": since, "until": until, "bucket_s": bucket_s, "points": points})


@router.get("/monitoring/summary", summary="One window's request rate, errors and latency")
def summary(svc: Svc, deployment: Dep = None, since: Ms = None, until: Ms = None) -> Response:
    since, until = _window(since, until, 300)
    return ok(svc.summary(deployment, since=since, until=until))


@router.get("/monitoring/deployments", summary="Deployments with traffic in the last day")
def deployments(svc: Svc) -> Response:
    since = int(time.time() * 1000) - 86_400_000
    names = sorted({s["deployment"] for s in svc._svc.series_keys(since)})
    return ok({"deployments": names})


@router.post(
    "/monitoring/monitors", response_model=Monitor, status_code=201, summary="Create a monitor"
)
def create_monitor(body: CreateMonitor, svc: Svc, ctx: Ctx, actor: Actor) -> Response:
    m = Monitor.model_validate(body.model_dump(exclude={"webhook_secret"}))
    created = svc.create_monitor(
        m, secret=body.webhook_secret, author=resolve_user(ctx.settings, actor)
    )
    return ok(created, status_code=201)


@router.get("/monitoring/monitors", summary="List monitors")
def list_monitors(svc: Svc) -> Response:
    return ok({"monitors": svc.list_monitors()})


@router.get("/monitoring/monitors/{name}", response_model=Monitor, summary="Get a monitor")
def get_monitor(name: Name, svc: Svc) -> Response:
    return ok(svc.get_monitor(name))


@router.delete("/monitoring/monitors/{name}", status_code=204, summary="Delete a monitor")
def delete_monitor(name: Name, svc: Svc) -> Response:
    svc.delete_monitor(name)
    return Response(status_code=204)


@router.post(
    "/monitoring/monitors/{name}/run",
    response_model=MonitorRun,
    summary="Check a monitor now on its last closed window",
)
def run_monitor(name: Name, body: RunMonitor, svc: Svc) -> Response:
    return ok(svc.run_monitor(name, now=body.now, force=body.force))


class AlertList(BaseModel):
    alerts: list[Alert]


@router.get("/monitoring/alerts", response_model=AlertList, summary="Alert history")
def alerts(
    svc: Svc,
    monitor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    state: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    return ok({"alerts": svc.alerts(monitor=monitor, state=state, limit=limit)})


@root_router.get("/metrics", include_in_schema=False)
def prometheus(svc: Svc) -> Response:
    """The server's view of every deployment's last 5 minutes, in Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # lazy: only scraped
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry

    now = int(time.time() * 1000)
    series = svc._svc.series_keys(now - 300_000)
    firing = svc.alerts(monitor=None, state="firing", limit=10_000)
    llm = usage_totals(svc.context, since=now - 300_000, until=now)

    class _Snapshot(Collector):
        def collect(self) -> Any:
            labels = ["deployment", "version", "route"]
            req = CounterMetricFamily(
                "opsloop_window_requests", "Requests in the last 5 minutes", labels=labels
            )
            err = CounterMetricFamily(
                "opsloop_window_errors", "Errors in the last 5 minutes", labels=labels
            )
            rate = GaugeMetricFamily(
                "opsloop_request_rate", "Requests per second over 5 minutes", labels=labels
            )
            lat = HistogramMetricFamily(
                "opsloop_window_latency_ms", "Latency over 5 minutes (ms)", labels=labels
            )
            for s in series:
                key = [s["deployment"], s["version"], s["route"]]
                req.add_metric(key, float(s["requests"]))
                err.add_metric(key, float(s["errors"]))
                rate.add_metric(key, float(s["requests"]) / 300)
                cum, buckets = 0.0, []
                for i, bound in enumerate([*LATENCY_BUCKETS_MS, float("inf")]):
                    cum += float(s[f"b{i}"])
                    buckets.append((str(bound) if bound != float("inf") else "+Inf", cum))
                lat.add_metric(key, buckets, sum_value=float(s["latency_sum_ms"]))
            alerts_g = GaugeMetricFamily(
                "opsloop_alerts_firing", "Alerts firing", labels=["monitor"]
            )
            for a in firing:
                alerts_g.add_metric([a.monitor], 1.0)
            gw_labels = ["route", "model"]
            gw = {
                f: GaugeMetricFamily(f"opsloop_gateway_window_{f}", help_, labels=gw_labels)
                for f, help_ in (
                    ("requests", "LLM gateway requests in the last 5 minutes"),
                    ("cost", "LLM gateway cost in the last 5 minutes (US dollars)"),
                    ("cache_hits", "LLM gateway cache hits in the last 5 minutes"),
                    ("cache_misses", "LLM gateway cache misses in the last 5 minutes"),
                    ("guardrail_hits", "LLM gateway requests a guard blocked, redacted or flagged"),
                )
            }
            for row in llm:
                for f, fam in gw.items():
                    fam.add_metric([row["route"], row["model"]], float(row[f]))
            yield from (req, err, rate, lat, alerts_g, *gw.values())

    registry = CollectorRegistry()
    registry.register(_Snapshot())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
