"""Tabular prediction routes: ``POST /invocations``, ``/v1/predict`` and ``/v1/predict_proba``.

Bodies (one of):

- ``{"records": [{"col": value, ...}, ...]}``
- ``{"columns": {"col": [values...], ...}}``
- ``{"inputs": ...}``: records, columns, or rows as lists in signature order
- MLflow's ``dataframe_records`` / ``dataframe_split`` and TF-serving's ``instances``,
  so clients written for those servers work unchanged.

Each request is checked against the model's signature on its own (a bad one
gets a 400 naming the column and row), then its rows join the micro-batch.
The answer is ``{"predictions": [...]}``, one per input row, in order; its
``X-Opsloop-Response-Id`` header names it for ``POST /v1/feedback``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from opsloop.core.web import JSONBody
from opsloop.errors import InvalidArgument, OpsloopError, PayloadTooLarge
from opsloop.registry.flavors import validate_input
from opsloop.serving._feedback import RESPONSE_ID_HEADER, new_response_id
from opsloop.serving._runtime import ModelHolder, Runtime

__all__ = [
    "FastPredictMiddleware",
    "PredictionObserver",
    "answer",
    "notify",
    "parse_rows",
    "predict_router",
]

log = logging.getLogger("opsloop.serving")
VERSION_HEADER = "x-opsloop-model-version"

_FORMS = ("records", "columns", "inputs", "dataframe_records", "dataframe_split", "instances")


def _records_from_columns(cols: Any) -> list[dict[str, Any]]:
    if not isinstance(cols, Mapping) or not cols:
        raise InvalidArgument('"columns" must be an object mapping column names to lists of values')
    n: int | None = None
    for k, v in cols.items():
        if not isinstance(v, list):
            raise InvalidArgument(
                f"column {k!r} must be a list of values, got {type(v).__name__}",
                details={"column": k},
            )
        if n is None:
            n = len(v)
        elif len(v) != n:
            raise InvalidArgument(
                f"columns have different lengths: {k!r} has {len(v)} values, expected {n}",
                details={"column": k},
            )
    keys = list(cols)
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def _records_from_lists(rows: list[Any], names: list[str] | None) -> list[dict[str, Any]]:
    if not names:
        raise InvalidArgument(
            "rows given as lists need a model signature naming the columns; "
            'send records ([{"col": value}]) or columns ({"col": [values]}) instead'
        )
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            raise InvalidArgument(
                f"row {i} must be a list of {len(names)} values in signature order {names}",
                details={"row": i, "expected": names},
            )
        out.append(dict(zip(names, row, strict=True)))
    return out


def _check_records(rows: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise InvalidArgument(f'"{what}" must be a list of objects, got {type(rows).__name__}')
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise InvalidArgument(
                f'"{what}" row {i} must be an object of column values, got {type(r).__name__}',
                details={"row": i},
            )
    return rows


def parse_rows(body: Any, input_names: list[str] | None) -> list[dict[str, Any]]:
    """The request's rows as records; ``InvalidArgument`` for any other shape."""
    if not isinstance(body, dict):
        raise InvalidArgument(
            "the body must be a JSON object with one of " + ", ".join(f'"{f}"' for f in _FORMS)
        )
    forms = [f for f in _FORMS if f in body]
    if len(forms) != 1:
        raise InvalidArgument(
            "the body must have exactly one of "
            + ", ".join(f'"{f}"' for f in _FORMS)
            + (f"; got {forms}" if forms else ""),
            details={"given": sorted(body)[:20]},
        )
    form = forms[0]
    data = body[form]
    if form in ("records", "dataframe_records"):
        return _check_records(data, form)
    if form == "columns":
        return _records_from_columns(data)
    if form == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise InvalidArgument('"dataframe_split" must be {"columns": [...], "data": [[...]]}')
        return _records_from_lists(data["data"], data.get("columns") or input_names)
    # inputs / instances: records, columns, or positional rows
    if isinstance(data, dict):
        return _records_from_columns(data)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return data
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        return _records_from_lists(data, input_names)
    if isinstance(data, list) and data and input_names and len(input_names) == 1:
        return [{input_names[0]: v} for v in data]
    raise InvalidArgument(
        f'"{form}" must be records (a list of objects), columns (an object of lists) '
        "or rows (a list of lists in signature order)"
    )


def _validator(rt: Runtime) -> Any:
    """The registry's signature check, when the model has a signature it understands."""
    sig = getattr(rt.model, "signature", None)
    if sig is None or not hasattr(sig, "input_names"):
        return None
    return lambda rows: validate_input(sig, rows)


class PredictionObserver(Protocol):
    """What a ``serving.observer`` hook returns: told of every predict answer, on the request path.

    ``observe`` must be cheap (append to a buffer; write elsewhere). ``record``
    holds ``route``, ``request_id``, ``model``, ``version``, ``rows`` (the
    input records, or None on an error), ``outputs``, ``latency_ms``, ``status``.
    """

    def observe(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


async def answer(
    holder: ModelHolder, raw: bytes, proba: bool, seen: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """The body of a predict answer and the model version that made it; raises ``OpsloopError``.

    ``seen`` (when given) is filled with the model's name and version and the
    request's rows, for the observers."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}") from None
    async with holder.use() as rt:
        batcher = rt.predict_proba if proba else rt.predict
        if batcher is None:
            what = "predict_proba" if proba else "prediction"
            raise InvalidArgument(
                f"this {rt.kind} model does not serve {what}; see GET /v1/metadata",
                details={"kind": rt.kind},
            )
        sig = getattr(rt.model, "signature", None)
        rows = parse_rows(body, getattr(sig, "input_names", None) or None)
        if not rows:
            raise InvalidArgument("the request has no rows")
        if len(rows) > rt.options.max_rows_per_request:
            raise PayloadTooLarge(
                f"{len(rows)} rows in one request; the limit is {rt.options.max_rows_per_request}"
            )
        check = _validator(rt)
        if check is not None:
            check(rows)
        if seen is not None:
            seen["model"], seen["version"] = rt.name, str(rt.resolved.version or "")
        predictions = await batcher.submit(rows)
        if seen is not None:
            seen["rows"], seen["outputs"] = rows, predictions
        return {"predictions": predictions}, str(rt.resolved.version or "")


def notify(
    observers: Sequence[PredictionObserver],
    seen: dict[str, Any],
    route: str,
    request_id: str,
    status: int,
    t0: float,
) -> None:
    seen["latency_ms"] = (time.perf_counter() - t0) * 1000.0
    seen["route"], seen["request_id"], seen["status"] = route, request_id, status
    for obs in observers:
        try:
            obs.observe(seen)
        except Exception:  # an observer never fails a request
            log.exception("prediction observer %r failed", obs)


def predict_router(holder: ModelHolder, observers: Sequence[PredictionObserver] = ()) -> APIRouter:
    """The predict routes (documented in OpenAPI; ``FastPredictMiddleware`` usually answers first)."""
    router = APIRouter(tags=["predict"])

    async def run(request: Request, proba: bool) -> Response:
        t0 = time.perf_counter()
        seen: dict[str, Any] | None = {} if observers else None
        rid = new_response_id()
        try:
            payload, version = await answer(holder, await request.body(), proba, seen)
        except OpsloopError as exc:
            if seen is not None:
                notify(observers, seen, request.url.path, rid, exc.http_status, t0)
            raise
        if seen is not None:
            notify(observers, seen, request.url.path, rid, 200, t0)
        return JSONBody(payload, headers={VERSION_HEADER: version, RESPONSE_ID_HEADER: rid})

    @router.post("/invocations", summary="Predict (MLflow-compatible path)")
    async def invocations(request: Request) -> Response:
        return await run(request, proba=False)

    @router.post("/v1/predict", summary="Predict: one output per input row")
    async def predict(request: Request) -> Response:
        return await run(request, proba=False)

    @router.post("/v1/predict_proba", summary="Class probabilities per input row (classifiers)")
    async def predict_proba(request: Request) -> Response:
        return await run(request, proba=True)

    return router


class FastPredictMiddleware:
    """Answer the predict routes straight from ASGI, skipping the framework's per-request layers.

    Predict requests are the hot path and the model call holds the GIL, so
    every microsecond of Python per request costs throughput: this answers
    exactly as the FastAPI routes do (same body, same errors, same limit on
    the body size) with about half the per-request work. Other requests pass
    through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        holder: ModelHolder,
        max_bytes: int,
        observers: Sequence[PredictionObserver] = (),
    ) -> None:
        self.app = app
        self.holder = holder
        self.max_bytes = max_bytes
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proba = _FAST_PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if proba is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                err = PayloadTooLarge(
                    f"request body is larger than the limit of {self.max_bytes} bytes"
                )
                await _send_json(send, err.http_status, err.to_payload())
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        headers: list[tuple[bytes, bytes]] = []
        t0 = time.perf_counter()
        seen: dict[str, Any] | None = {} if self.observers else None
        rid = new_response_id()
        try:
            payload, version = await answer(self.holder, b"".join(chunks), proba, seen)
            status = 200
            headers.append((VERSION_HEADER.encode(), version.encode()))
            headers.append((RESPONSE_ID_HEADER.encode(), rid.encode()))
        except OpsloopError as exc:
            status, payload = exc.http_status, exc.to_payload()
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            status = 500
            payload = {
                "error": {
                    "code": "INTERNAL",
                    "message": "internal server error; see the server log",
                }
            }
        if seen is not None:
            notify(self.observers, seen, scope["path"], rid, status, t0)
        await _send_json(send, status, payload, headers)


_FAST_PATHS = {"/invocations": False, "/v1/predict": False, "/v1/predict_proba": True}


async def _send_json(
    send: Send, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})
