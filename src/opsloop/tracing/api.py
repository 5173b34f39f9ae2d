"""REST routes for tracing under ``/api/v1``, and the OTLP/HTTP receiver at ``/v1/traces``.

``router`` (mounted under ``/api/v1``): list and search traces, one trace as a
span tree with waterfall timings, statistics, the price table, and the SDK's
batch ingest. ``otlp_router`` (mounted at the server root, where OTLP
exporters look by default): ``POST /v1/traces`` with an OTLP
``ExportTraceServiceRequest`` as protobuf or JSON, optionally gzip-compressed.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opsloop.core.web import Ctx, StrictBody, ok, service
from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.tracing import _otlp
from opsloop.tracing._backend import trace_service
from opsloop.tracing._filter import TraceFilter
from opsloop.tracing._query import MAX_PAGE
from opsloop.tracing._service import TraceService
from opsloop.tracing.entities import (
    IngestResult,
    ModelPrice,
    TraceDetail,
    TracePage,
    TraceStats,
)

router = APIRouter(tags=["tracing"])
otlp_router = APIRouter(tags=["otlp"])


Svc = Annotated[TraceService, Depends(service(trace_service))]
TraceId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Str256 = Annotated[str | None, Query(max_length=256)]
MAX_MS = 10**15  # times and latencies in ms whose µs still fit a 64-bit column


def filters(
    name: Str256 = None,
    name_contains: Annotated[
        str | None, Query(max_length=256, description="Free text in the name.")
    ] = None,
    status: Annotated[str | None, Query(pattern="^(?i:ok|error)$")] = None,
    has_error: bool | None = None,
    user_id: Str256 = None,
    session_id: Str256 = None,
    model: Str256 = None,
    min_latency_ms: Annotated[float | None, Query(ge=0, le=MAX_MS)] = None,
    max_latency_ms: Annotated[float | None, Query(ge=0, le=MAX_MS)] = None,
    min_cost: Annotated[float | None, Query(ge=0)] = None,
    since_ms: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="Started at or after (epoch ms).")
    ] = None,
    until_ms: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="Started before (epoch ms).")
    ] = None,
    tag: Str256 = None,
    service_name: Str256 = None,
    experiment_id: Annotated[str | None, Query(max_length=64)] = None,
    deployment_id: Annotated[str | None, Query(max_length=64)] = None,
    filter: Annotated[
        str | None, Query(max_length=4096, description='e.g. status = "error" and latency_ms > 500')
    ] = None,
) -> TraceFilter:
    return TraceFilter(
        name=name,
        name_contains=name_contains,
        status=status,
        has_error=has_error,
        user_id=user_id,
        session_id=session_id,
        model=model,
        min_latency_ms=min_latency_ms,
        max_latency_ms=max_latency_ms,
        min_cost=min_cost,
        since_ms=since_ms,
        until_ms=until_ms,
        tag=tag,
        service_name=service_name,
        experiment_id=experiment_id,
        deployment_id=deployment_id,
        filter=filter,
    )


Filters = Annotated[TraceFilter, Depends(filters)]


class PriceBody(StrictBody):
    input_per_mtok: float = Field(ge=0, le=1_000_000)
    output_per_mtok: float = Field(ge=0, le=1_000_000)


class PriceList(BaseModel):
    prices: list[ModelPrice]


_BATCH_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["spans"],
                    "properties": {
                        "spans": {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "Spans as the SDK sends them; see opsloop.tracing._normalize.",
                        }
                    },
                }
            }
        },
    }
}


@router.get("/traces", response_model=TracePage, summary="List and search traces")
def list_traces(
    svc: Svc,
    f: Filters,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    page_token: Annotated[str | None, Query(max_length=500)] = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    sort: Annotated[
        str,
        Query(
            max_length=32,
            description="start_time (default), latency_ms, cost, tokens, input_tokens, "
            "output_tokens, spans, errors or name; ties by start time.",
        ),
    ] = "start_time",
) -> Response:
    return ok(svc.list_traces(f, limit=limit, page_token=page_token, order=order, sort=sort))


@router.post(
    "/traces/batch",
    response_model=IngestResult,
    summary="Store spans sent by the opsloop SDK",
    openapi_extra=_BATCH_SCHEMA,
)
async def ingest_batch(request: Request, svc: Svc) -> Response:
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) != {"spans"} or not isinstance(data["spans"], list):
        raise InvalidArgument('the body must be {"spans": [...]}')
    return ok(await run_in_threadpool(svc.ingest, data["spans"]))


@router.get(
    "/traces/stats", response_model=TraceStats, summary="Trace statistics per day and model"
)
def trace_stats(svc: Svc, f: Filters) -> Response:
    return ok(svc.stats(f))


@router.get("/traces/prices", response_model=PriceList, summary="The model price table")
def list_prices(svc: Svc) -> Response:
    return ok({"prices": svc.list_prices()})


@router.put("/traces/prices/{model:path}", response_model=ModelPrice, summary="Set a model's price")
def set_price(model: str, body: PriceBody, svc: Svc) -> Response:
    return ok(svc.set_price(model, body.input_per_mtok, body.output_per_mtok))


@router.delete("/traces/prices/{model:path}", status_code=204, summary="Remove a custom price")
def delete_price(model: str, svc: Svc) -> Response:
    svc.delete_price(model)
    return Response(status_code=204)


@router.get("/traces/{trace_id}", response_model=TraceDetail, summary="A trace and its span tree")
def get_trace(trace_id: TraceId, svc: Svc, flat: bool = False) -> Response:
    return ok(svc.get_trace(trace_id, flat=flat))


@router.delete("/traces/{trace_id}", status_code=204, summary="Delete a trace")
def delete_trace(trace_id: TraceId, svc: Svc) -> Response:
    svc.delete_trace(trace_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- OTLP

_OTLP_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@otlp_router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace receiver (protobuf or JSON)",
    openapi_extra=_OTLP_SCHEMA,
    response_class=Response,
)
async def otlp_traces(request: Request, svc: Svc, ctx: Ctx) -> Response:
    ct = request.headers.get("content-type")
    kind = _otlp.JSON if (ct or "").split(";")[0].strip().lower() == _otlp.JSON else _otlp.PROTOBUF
    try:
        try:
            kind = _otlp.media_type(ct)
        except InvalidArgument as exc:
            return _otlp_error(415, "UNSUPPORTED_MEDIA_TYPE", exc.message, _otlp.JSON)
        body = await request.body()
        limit = ctx.settings.max_request_bytes
        body = _otlp.safe_gunzip(body, request.headers.get("content-encoding", ""), limit)
        result, kind = await run_in_threadpool(svc.ingest_otlp, body, ct)
    except OpsloopError as exc:
        return _otlp_error(exc.http_status, exc.code, exc.message, kind)
    message = "; ".join(result.errors)
    return Response(
        _otlp.encode_response(result.rejected, message, kind), media_type=kind, status_code=200
    )


def _otlp_error(status: int, code: str, message: str, kind: str) -> Response:
    return Response(
        _otlp.encode_status(status, code, message, kind), status_code=status, media_type=kind
    )
