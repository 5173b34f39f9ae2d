"""The MLflow REST routers: ``/api/2.0/mlflow/...`` and ``/api/2.0/mlflow-artifacts/...``.

Thin: one route per router reads the request the MLflow way (``_wire``),
finds the handler by method and path (``_tracking.HANDLERS``,
``_registry.HANDLERS``), runs it in a worker thread and answers JSON, or
MLflow's error shape. The routes are left out of opsloop's OpenAPI document:
they follow MLflow's protocol (docs/mlflow.md lists them), not opsloop's.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from opsloop.core import Context
from opsloop.core.web import claimed_user
from opsloop.errors import OpsloopError
from opsloop.mlflowapi import _artifacts as A
from opsloop.mlflowapi import _logged_models, _registry, _tracking
from opsloop.mlflowapi._wire import MlflowError, Msg, error_json, json_response

__all__ = ["PREFIX", "artifacts_router", "router"]

log = logging.getLogger("opsloop.mlflowapi")

PREFIX = "/api/2.0/mlflow"
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Handler = Callable[[Context, Msg], dict[str, Any]]


def _not_implemented(what: str) -> Handler:
    def handler(ctx: Context, m: Msg) -> dict[str, Any]:
        raise MlflowError("NOT_IMPLEMENTED", f"opsloop's MLflow API does not support {what}")

    return handler


def _log_model(ctx: Context, m: Msg) -> dict[str, Any]:
    """MLflow 2's record of a logged model: appended to the run's ``mlflow.log-model.history``."""
    s = _tracking.svc(ctx)
    rid = m.text("run_id", required=True)
    assert rid is not None
    model = json.loads(m.text("model_json", required=True) or "{}")
    history = json.loads(s.get_run(rid).tags.get("mlflow.log-model.history", "[]") or "[]")
    history.append(model)
    text = json.dumps(history)
    while len(text) > 8000 and len(history) > 1:
        history.pop(0)
        text = json.dumps(history)
    s.log_batch(rid, tags={"mlflow.log-model.history": text[:8000]})
    return {}


def _list_run_artifacts(ctx: Context, m: Msg) -> dict[str, Any]:
    rid = m.text("run_id") or m.text("run_uuid")
    if not rid:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'."
        )
    run = _tracking.svc(ctx).get_run(rid)
    path = (m.text("path") or "").strip("/")
    files = A.list_files(ctx, f"{run.experiment_id}/{run.id}/artifacts/{path}")
    return {
        "root_uri": _tracking.run_artifact_uri(run),
        "files": [{**f, "path": f"{path}/{f['path']}" if path else f["path"]} for f in files],
    }


HANDLERS: dict[tuple[str, str], Handler] = {
    **_tracking.HANDLERS,
    **_logged_models.HANDLERS,
    **_registry.HANDLERS,
    ("POST", "/runs/log-model"): _log_model,
    ("GET", "/artifacts/list"): _list_run_artifacts,
    ("GET", "/metrics/get-history-bulk-interval"): _not_implemented(
        "get-history-bulk-interval (use /metrics/get-history)"
    ),
    ("GET", "/logged-models/{model_id}/artifacts/directories"): _not_implemented(
        "listing logged model artifact directories (list its artifact_uri instead)"
    ),
    ("POST", "/artifacts/presigned-upload-url"): _not_implemented("presigned URLs"),
    ("POST", "/artifacts/presigned-download-url"): _not_implemented("presigned URLs"),
}


def _compile(template: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{[a-z_]+(?::path)?\})", template):
        if part.startswith("{"):
            name, _, kind = part[1:-1].partition(":")
            out += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}$")


_STATIC = {k: h for k, h in HANDLERS.items() if "{" not in k[1]}
_TEMPLATED = [(method, _compile(path), h) for (method, path), h in HANDLERS.items() if "{" in path]


def match(method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
    h = _STATIC.get((method, path))
    if h is not None:
        return h, {}
    for m, pattern, handler in _TEMPLATED:
        if m == method:
            found = pattern.match(path)
            if found:
                return handler, found.groupdict()
    return None, {}


async def _message(request: Request) -> Msg:
    if request.method == "GET":
        return Msg.from_query(request.query_params.multi_items())
    msg = Msg.from_body(await request.body())
    for k, v in request.query_params.items():
        msg.data.setdefault(k, v)
    return msg


def _failure(exc: BaseException) -> Response:
    if not isinstance(exc, (MlflowError, OpsloopError)):
        log.exception("MLflow API request failed", exc_info=exc)
    return error_json(exc)


def _endpoint_not_found(request: Request) -> Response:
    return json_response(
        {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"opsloop's MLflow API has no endpoint {request.method} {request.url.path}",
        },
        404,
    )


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.api_route("/{rest:path}", methods=METHODS)
async def mlflow_call(rest: str, request: Request) -> Response:
    handler, params = match(request.method, "/" + rest)
    if handler is None:
        return _endpoint_not_found(request)
    try:
        msg = await _message(request)
        msg.data.update(params)
        authenticated = claimed_user(request, None)
        if authenticated is not None and rest == "runs/create":  # the token's user, not the body's
            msg.data["user_id"] = authenticated
        result = await run_in_threadpool(handler, request.app.state.opsloop, msg)
    except Exception as exc:
        return _failure(exc)
    return json_response(result)


# ---------------------------------------------------------------------------- artifact proxy

artifacts_router = APIRouter(prefix=ARTIFACTS_PREFIX, include_in_schema=False)


@artifacts_router.get("/artifacts")
async def list_artifacts(request: Request, path: str = "") -> Response:
    ctx: Context = request.app.state.opsloop
    try:
        files = await run_in_threadpool(A.list_files, ctx, path)
    except Exception as exc:
        return _failure(exc)
    return json_response({"files": files})


@artifacts_router.get("/artifacts/{path:path}")
async def download_artifact(path: str, request: Request) -> Response:
    ctx: Context = request.app.state.opsloop
    try:
        size, fh = await run_in_threadpool(A.open_file, ctx, path)
    except Exception as exc:
        return _failure(exc)
    return StreamingResponse(
        A.file_chunks(fh),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), "X-Content-Type-Options": "nosniff"},
    )


@artifacts_router.put("/artifacts/{path:path}")
async def upload_artifact(path: str, request: Request) -> Response:
    ctx: Context = request.app.state.opsloop
    limit = ctx.settings.max_artifact_bytes
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed below
    try:
        part = A.mpu_part_path(path)
        size = 0
        async for block in request.stream():
            size += len(block)
            if size > limit:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"artifact is larger than the limit of {limit} bytes"
                )
            spool.write(block)
        spool.seek(0)
        if part is not None:
            await run_in_threadpool(_save_part, spool, part)
            return json_response({})
        media = request.headers.get("content-type")
        await run_in_threadpool(A.put, ctx, path, spool, media)  # type: ignore[arg-type]
    except Exception as exc:
        return _failure(exc)
    finally:
        spool.close()
    return json_response({})


def _save_part(spool: Any, target: Any) -> None:
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        shutil.copyfileobj(spool, out, 1 << 20)
    tmp.replace(target)


@artifacts_router.delete("/artifacts/{path:path}")
async def delete_artifact(path: str, request: Request) -> Response:
    try:
        await run_in_threadpool(A.delete, request.app.state.opsloop, path)
    except Exception as exc:
        return _failure(exc)
    return json_response({})


@artifacts_router.post("/mpu/{action}/{path:path}")
async def multipart(action: str, path: str, request: Request) -> Response:
    ctx: Context = request.app.state.opsloop
    try:
        msg = Msg.from_body(await request.body())
        # The URL names the folder; the body's ``path`` is the client's local file, whose
        # name the artifact takes (as ``mlflow server`` does).
        name = posixpath.basename(msg.req("path").replace("\\", "/"))
        path = f"{path.rstrip('/')}/{name}"
        if action == "create":
            n = msg.int64("num_parts", 1) or 1
            base = str(request.base_url)
            result = await run_in_threadpool(A.mpu_create, ctx, path, n, base)
            return json_response(result)
        if action == "complete":
            upload_id = msg.req("upload_id")
            await run_in_threadpool(A.mpu_complete, ctx, path, upload_id, msg.dicts("parts"))
            return json_response({})
        if action == "abort":
            await run_in_threadpool(A.mpu_abort, path, msg.req("upload_id"))
            return json_response({})
    except Exception as exc:
        return _failure(exc)
    return _endpoint_not_found(request)


@artifacts_router.api_route("/{rest:path}", methods=METHODS)
async def artifacts_fallback(rest: str, request: Request) -> Response:
    return _endpoint_not_found(request)
