"""REST routes for tracking, under ``/api/v1``. Thin: parse, call the service, answer."""

from __future__ import annotations

import math
import tempfile
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opsloop.core import Context as AppState
from opsloop.core.web import StrictBody as _Body
from opsloop.core.web import claimed_user, ok
from opsloop.core.web import get_context as get_state
from opsloop.errors import PayloadTooLarge
from opsloop.store import LocalArtifactStore
from opsloop.tracking import artifact_service, tracking_service
from opsloop.tracking._filter import decode_page_token, encode_page_token
from opsloop.tracking._service import MAX_SEARCH_RESULTS, check_batch_limits
from opsloop.tracking._validation import wire_value
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
)

router = APIRouter(tags=["tracking"])


State = Annotated[AppState, Depends(get_state)]
RunId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9a-zA-Z_\-]+$")]


class CreateExperiment(_Body):
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class UpdateExperiment(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=100_000)


class TagValue(_Body):
    value: str = Field(max_length=8000)


class CreateRun(_Body):
    experiment_id: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=256)
    start_time: int | None = None
    parent_run_id: str | None = Field(default=None, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)
    params: dict[str, str] = Field(default_factory=dict, max_length=1000)
    notes: str = Field(default="", max_length=100_000)
    user: str = Field(default="", max_length=256)
    metrics: list[tuple[str, float | None, int, int]] = Field(
        default_factory=list,
        description="First metric points as ``[key, value, step, timestamp_ms]`` (null value = NaN), "
        "stored with the run in the same transaction.",
    )


class UpdateRun(_Body):
    status: str | None = Field(default=None, max_length=16)
    end_time: int | None = None
    name: str | None = Field(default=None, min_length=1, max_length=256)
    notes: str | None = Field(default=None, max_length=100_000)


class LogBatch(_Body):
    """Metric points as ``[key, value, step, timestamp_ms]``; a null value means NaN."""

    metrics: list[tuple[str, float | None, int, int]] = Field(default_factory=list)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    batch_id: str | None = Field(default=None, min_length=1, max_length=64)


class LogBatchResult(BaseModel):
    points_written: int


class SearchRuns(_Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=1000)
    filter: str | None = Field(default=None, max_length=4096)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    max_results: int = Field(default=100, ge=1, le=MAX_SEARCH_RESULTS)
    page_token: str | None = Field(default=None, max_length=1000)
    include_deleted: bool = False
    parent_run_id: str | None = Field(default=None, max_length=32)


class CompareRuns(_Body):
    run_ids: list[str] = Field(min_length=1, max_length=100)


class ExperimentList(BaseModel):
    experiments: list[Experiment]
    next_page_token: str | None = None


# ---------------------------------------------------------------------------- experiments


@router.get("/experiments", response_model=ExperimentList, summary="List experiments")
def list_experiments(
    st: State,
    include_deleted: bool = False,
    max_results: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    page_token: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:

    offset = decode_page_token(page_token)
    exps = st.room(tracking_service).list_experiments(include_deleted=include_deleted)
    page = exps[offset : offset + max_results]
    nxt = encode_page_token(offset + max_results) if offset + max_results < len(exps) else None
    return ok({"experiments": page, "next_page_token": nxt})


@router.post(
    "/experiments", response_model=Experiment, status_code=201, summary="Create an experiment"
)
def create_experiment(body: CreateExperiment, st: State) -> Response:
    return ok(
        st.room(tracking_service).create_experiment(body.name, body.description, body.tags), 201
    )


@router.get(
    "/experiments/by-name/{name}", response_model=Experiment, summary="Get an experiment by name"
)
def get_experiment_by_name(name: Annotated[str, Field(max_length=256)], st: State) -> Response:
    return ok(st.room(tracking_service).get_experiment_by_name(name))


@router.get("/experiments/{experiment_id}", response_model=Experiment, summary="Get an experiment")
def get_experiment(experiment_id: RunId, st: State) -> Response:
    return ok(st.room(tracking_service).get_experiment(experiment_id))


@router.patch(
    "/experiments/{experiment_id}",
    response_model=Experiment,
    summary="Rename or describe an experiment",
)
def update_experiment(experiment_id: RunId, body: UpdateExperiment, st: State) -> Response:
    return ok(
        st.room(tracking_service).update_experiment(
            experiment_id, name=body.name, description=body.description
        )
    )


@router.put(
    "/experiments/{experiment_id}/tags/{key:path}", status_code=204, summary="Set an experiment tag"
)
def set_experiment_tag(experiment_id: RunId, key: str, body: TagValue, st: State) -> Response:
    st.room(tracking_service).set_experiment_tag(experiment_id, key, body.value)
    return Response(status_code=204)


@router.delete(
    "/experiments/{experiment_id}/tags/{key:path}",
    status_code=204,
    summary="Delete an experiment tag",
)
def delete_experiment_tag(experiment_id: RunId, key: str, st: State) -> Response:
    st.room(tracking_service).delete_experiment_tag(experiment_id, key)
    return Response(status_code=204)


@router.delete(
    "/experiments/{experiment_id}", status_code=204, summary="Delete an experiment (restorable)"
)
def delete_experiment(experiment_id: RunId, st: State) -> Response:
    st.room(tracking_service).delete_experiment(experiment_id)
    return Response(status_code=204)


@router.post(
    "/experiments/{experiment_id}/restore", status_code=204, summary="Restore a deleted experiment"
)
def restore_experiment(experiment_id: RunId, st: State) -> Response:
    st.room(tracking_service).restore_experiment(experiment_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- runs

_NAN = float("nan")


class MetricHistoryWire(MetricHistory):
    """``MetricHistory`` as the route sends it: JSON has no infinities, so they are strings."""

    values: list[float | Literal["Infinity", "-Infinity"] | None]  # type: ignore[assignment]


def _points(wire: list[tuple[str, float | None, int, int]]) -> list[tuple[str, float, int, int]]:
    """Points from the wire, null back to NaN."""
    return [(k, _NAN if v is None else v, step, ts) for k, v, step, ts in wire]


@router.post("/runs", response_model=Run, status_code=201, summary="Create a run")
def create_run(body: CreateRun, st: State, request: Request) -> Response:
    s = st.settings
    check_batch_limits(
        len(body.metrics),
        len(body.params),
        len(body.tags),
        max_metrics=s.max_batch_metrics,
        max_params=s.max_batch_params,
        max_tags=s.max_batch_tags,
    )
    run = st.room(tracking_service).create_run(
        body.experiment_id,
        name=body.name,
        start_time=body.start_time,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        params=body.params,
        notes=body.notes,
        user=claimed_user(request, body.user) or "",
        metrics=_points(body.metrics),
    )
    return ok(run, 201)


@router.post(
    "/runs/search", response_model=RunPage, summary="Search runs with a filter, ordering and pages"
)
def search_runs(body: SearchRuns, st: State) -> Response:
    page = st.room(tracking_service).search_runs(
        body.experiment_ids or None,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=body.include_deleted,
        parent_run_id=body.parent_run_id,
    )
    return ok(page)


@router.post("/runs/compare", response_model=RunComparison, summary="Compare runs side by side")
def compare_runs(body: CompareRuns, st: State) -> Response:
    return ok(st.room(tracking_service).compare_runs(body.run_ids))


@router.get(
    "/runs/{run_id}",
    response_model=Run,
    summary="Get a run with its params, tags and latest metrics",
)
def get_run(run_id: RunId, st: State) -> Response:
    return ok(st.room(tracking_service).get_run(run_id))


@router.patch("/runs/{run_id}", response_model=Run, summary="Update a run's status, name or notes")
def update_run(run_id: RunId, body: UpdateRun, st: State) -> Response:
    return ok(
        st.room(tracking_service).update_run(
            run_id, status=body.status, end_time=body.end_time, name=body.name, notes=body.notes
        )
    )


@router.delete(
    "/runs/{run_id}", status_code=204, summary="Delete a run (restorable unless purge=true)"
)
def delete_run(run_id: RunId, st: State, purge: bool = False) -> Response:
    st.room(tracking_service).delete_run(run_id, purge=purge)
    return Response(status_code=204)


@router.post("/runs/{run_id}/restore", response_model=Run, summary="Restore a deleted run")
def restore_run(run_id: RunId, st: State) -> Response:
    return ok(st.room(tracking_service).restore_run(run_id))


@router.post(
    "/runs/{run_id}/batch",
    response_model=LogBatchResult,
    summary="Log metrics, params and tags in one transaction",
)
def log_batch(run_id: RunId, body: LogBatch, st: State) -> Response:
    s = st.settings
    check_batch_limits(
        len(body.metrics),
        len(body.params),
        len(body.tags),
        max_metrics=s.max_batch_metrics,
        max_params=s.max_batch_params,
        max_tags=s.max_batch_tags,
    )
    n = st.room(tracking_service).log_batch(
        run_id,
        metrics=_points(body.metrics),
        params=body.params,
        tags=body.tags,
        batch_id=body.batch_id,
    )
    return ok({"points_written": n})


@router.put("/runs/{run_id}/tags/{key:path}", status_code=204, summary="Set a run tag")
def set_run_tag(run_id: RunId, key: str, body: TagValue, st: State) -> Response:
    st.room(tracking_service).set_tag(run_id, key, body.value)
    return Response(status_code=204)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204, summary="Delete a run tag")
def delete_run_tag(run_id: RunId, key: str, st: State) -> Response:
    st.room(tracking_service).delete_tag(run_id, key)
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/metric-history",
    response_model=MetricHistoryWire,
    summary="A metric's points, optionally downsampled",
)
def metric_history(
    run_id: RunId,
    st: State,
    key: Annotated[str, Query(min_length=1, max_length=250)],
    max_points: Annotated[int | None, Query(ge=10, le=10_000_000)] = None,
    x: Annotated[str, Query(pattern="^(step|time)$")] = "step",
) -> Response:
    h = st.room(tracking_service).get_metric_history(run_id, key, max_points=max_points, x=x)
    if math.inf in h.values or -math.inf in h.values:  # C-level scans: the common case
        # JSON has no infinities (orjson writes null): they travel as "Infinity"/"-Infinity",
        # which the SDK turns back into floats. NaN stays null.
        wire = h.model_dump()
        wire["values"] = [wire_value(v) for v in h.values]
        return ok(wire)
    return ok(h)


@router.get(
    "/runs/{run_id}/metric-histories", summary="Several metrics' points at once (for charts)"
)
def metric_histories(
    run_id: RunId,
    st: State,
    keys: Annotated[list[str], Query(min_length=1, max_length=100)],
    max_points: Annotated[int | None, Query(ge=10, le=100_000)] = 2000,
    x: Annotated[str, Query(pattern="^(step|time)$")] = "step",
) -> Response:
    return ok(
        {
            "histories": [
                st.room(tracking_service).get_metric_history(run_id, k, max_points=max_points, x=x)
                for k in keys
            ]
        }
    )


# ---------------------------------------------------------------------------- artifacts


@router.get(
    "/runs/{run_id}/artifacts",
    response_model=list[ArtifactInfo],
    summary="List a run's artifacts under a path",
)
def list_artifacts(
    run_id: RunId,
    st: State,
    path: Annotated[str, Query(max_length=1024)] = "",
    recursive: bool = False,
) -> Response:
    return ok(st.room(artifact_service).list(run_id, path, recursive=recursive))


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response_model=ArtifactInfo,
    status_code=201,
    summary="Upload one artifact file (raw body)",
)
async def upload_artifact(run_id: RunId, path: str, request: Request, st: State) -> Response:
    limit = st.settings.max_artifact_bytes
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed in finally
    size = 0
    try:
        async for block in request.stream():
            size += len(block)
            if size > limit:
                raise PayloadTooLarge(f"artifact is larger than the limit of {limit} bytes")
            spool.write(block)
        spool.seek(0)
        media_type = request.headers.get("x-opsloop-media-type")
        artifacts = st.room(artifact_service)
        info = await run_in_threadpool(artifacts.put_stream, run_id, path, spool, media_type)  # type: ignore[arg-type]
    finally:
        spool.close()
    return ok(info, 201)


_SAFE_INLINE = (
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/jsonl",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    summary="Download one artifact file",
    response_class=Response,
)
def download_artifact(run_id: RunId, path: str, st: State) -> Response:
    info, fh = st.room(artifact_service).open(run_id, path)
    # Never let an uploaded HTML or SVG file run script in the UI's origin.
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
    }
    media = info.media_type or "application/octet-stream"
    if not media.startswith(_SAFE_INLINE) and not media.startswith("text/"):
        name = path.rsplit("/", 1)[-1]
        quoted = quote(name)  # a name quoting changes goes as RFC 5987 filename*
        headers["Content-Disposition"] = (
            f'attachment; filename="{name}"'
            if quoted == name
            else f"attachment; filename*=utf-8''{quoted}"
        )
    if media.startswith("text/html") or media.startswith("image/svg"):
        media = "text/plain; charset=utf-8"
    if isinstance(st.blobs, LocalArtifactStore) and info.digest:
        fh.close()
        return FileResponse(st.blobs.local_path(info.digest), media_type=media, headers=headers)

    def chunks() -> Any:
        with fh:
            while True:
                block = fh.read(1024 * 1024)
                if not block:
                    return
                yield block

    return StreamingResponse(
        chunks(), media_type=media, headers={**headers, "Content-Length": str(info.size)}
    )
