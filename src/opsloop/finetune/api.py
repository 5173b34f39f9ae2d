"""REST routes for fine-tuning jobs, under ``/api/v1``.

- ``POST /finetune/jobs`` ``{"spec": JobSpec, "start": true}``: validate and
  queue a job, start its worker on the server's machine (201; a job whose
  model or data does not fit comes back ``failed`` with its ``error``).
  ``cache_dir`` is refused: the server keeps converted weights in its own cache.
- ``GET /finetune/jobs[?state=&output_model=]``: newest first.
- ``GET /finetune/jobs/{id}``: one job (state, step, checkpoint, result).
- ``POST /finetune/jobs/{id}/cancel``: cancel an unfinished job (409 when finished).
- ``POST /finetune/jobs/{id}/resume``: restart a failed job, or one whose worker
  died, from its last checkpoint (409 otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from opsloop.core.web import Actor, StrictBody, ok, service
from opsloop.errors import InvalidArgument
from opsloop.finetune._backend import finetune_service
from opsloop.finetune._service import FinetuneService
from opsloop.finetune.entities import FinetuneJob

router = APIRouter(tags=["finetune"])

Svc = Annotated[FinetuneService, Depends(service(finetune_service))]


class SubmitJob(StrictBody):
    spec: dict[str, Any]
    start: bool = True


class ResumeJob(StrictBody):
    start: bool = True


@router.post(
    "/finetune/jobs",
    status_code=201,
    response_model=FinetuneJob,
    summary="Submit a fine-tuning job",
)
def submit_job(body: SubmitJob, svc: Svc, actor: Actor) -> Response:
    if body.spec.get("cache_dir") is not None:
        # A folder on the server's disk is the server's to choose (its home's cache).
        raise InvalidArgument(
            "cache_dir cannot be set through the API; the server uses its own cache",
            details={"field": "cache_dir"},
        )
    return ok(svc.submit(body.spec, start=body.start, user=actor), status_code=201)


@router.get("/finetune/jobs", summary="List fine-tuning jobs, newest first")
def list_jobs(
    svc: Svc,
    state: Annotated[str | None, Query(max_length=16)] = None,
    output_model: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Response:
    return ok({"jobs": svc.list(state=state, output_model=output_model, limit=limit)})


@router.get("/finetune/jobs/{job_id}", response_model=FinetuneJob, summary="Get a fine-tuning job")
def get_job(job_id: str, svc: Svc) -> Response:
    return ok(svc.get(job_id))


@router.post(
    "/finetune/jobs/{job_id}/cancel", response_model=FinetuneJob, summary="Cancel a fine-tuning job"
)
def cancel_job(job_id: str, svc: Svc) -> Response:
    return ok(svc.cancel(job_id))


@router.post(
    "/finetune/jobs/{job_id}/resume",
    response_model=FinetuneJob,
    summary="Resume a fine-tuning job from its last checkpoint",
)
def resume_job(job_id: str, svc: Svc, body: ResumeJob | None = None) -> Response:
    return ok(svc.resume(job_id, start=(body or ResumeJob()).start))
