"""REST routes for feedback, under ``/api/v1``.

- ``GET /feedback/scores``: defined scores, then the built-in ones.
- ``PUT /feedback/scores/{name}``: define a score (again: same shape updates the description).
- ``GET|DELETE /feedback/scores/{name}``; ``GET /feedback/scores/{name}/agreement?source=``.
- ``POST /feedback/annotations``: record an annotation (an upsert: one per target, score and
  author; ``key`` makes a retry update the same one).
- ``GET /feedback/annotations[?trace_id=&span_id=&session_id=&prediction_id=&name=&author=&source=]``.
- ``GET|DELETE /feedback/annotations/{id}``.
- ``POST /feedback/training-data``: SFT or preference rows made from feedback, with lineage.
- ``POST|GET /feedback/exports``: the links from dataset versions to annotations and traces.

- ``POST|GET /feedback/queues``, ``GET|DELETE /feedback/queues/{name}``: annotation queues;
  ``POST .../fill`` (apply the rule), ``.../assign``, ``.../claim`` (the next item, locked),
  ``.../items/{trace_id}/complete|skip``, ``GET .../items``, ``GET .../progress``.

Traces are searched by score with the trace filter: ``GET /traces?filter=score.NAME >= 4``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from opsloop.core import resolve_user
from opsloop.core.web import Actor, Ctx, StrictBody, claimed_user, ok, service
from opsloop.errors import InvalidArgument
from opsloop.feedback._backend import feedback_service
from opsloop.feedback._service import FeedbackService
from opsloop.feedback.entities import (
    Agreement,
    Annotation,
    AnnotationQueue,
    QueueItem,
    QueueProgress,
    ScoreDefinition,
)

router = APIRouter(tags=["feedback"])

Svc = Annotated[FeedbackService, Depends(service(feedback_service))]
Name = Annotated[str, Path(min_length=1, max_length=64)]
Text = Annotated[str | None, Query(min_length=1, max_length=300)]


class DefineScore(StrictBody):
    name: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    categories: list[str] | None = Field(default=None, max_length=100)
    min_value: float | None = None
    max_value: float | None = None
    description: str = Field(default="", max_length=10_000)
    author: str | None = Field(default=None, max_length=256)


class Annotate(StrictBody):
    name: str = Field(min_length=1, max_length=64)
    value: bool | float | str | None = None
    trace_id: str | None = Field(default=None, max_length=64)
    span_id: str | None = Field(default=None, max_length=32)
    session_id: str | None = Field(default=None, max_length=256)
    prediction_id: str | None = Field(default=None, max_length=128)
    comment: str | None = None
    correction: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    source: str = Field(default="human", max_length=16)
    author: str | None = Field(default=None, max_length=256)
    key: str | None = Field(default=None, max_length=256)
    metadata: dict[str, Any] | None = None


class TrainingDataRequest(StrictBody):
    kind: Literal["sft", "preference"] = "sft"
    accept: str = Field(default="thumbs", max_length=64)
    min_value: float | None = None
    limit: int = Field(default=100_000, ge=1, le=1_000_000)


class RecordExport(StrictBody):
    dataset_version_id: str = Field(min_length=1, max_length=32)
    kind: Literal["sft", "preference"]
    links: list[tuple[str, str | None]] = Field(max_length=1_000_000)


@router.get("/feedback/scores", summary="List score definitions (defined, then built-in)")
def list_scores(svc: Svc) -> Response:
    return ok({"scores": svc.list_scores()})


@router.put("/feedback/scores/{name}", response_model=ScoreDefinition, summary="Define a score")
def define_score(name: Name, body: DefineScore, svc: Svc, ctx: Ctx, actor: Actor) -> Response:
    if body.name is not None and body.name != name:
        raise InvalidArgument(f"the body names score {body.name!r}, the path {name!r}")
    return ok(
        svc.define_score(
            name,
            body.kind,
            categories=body.categories,
            min_value=body.min_value,
            max_value=body.max_value,
            description=body.description,
            author=body.author or resolve_user(ctx.settings, actor),
        )
    )


@router.get("/feedback/scores/{name}", response_model=ScoreDefinition, summary="Get a score")
def get_score(name: Name, svc: Svc) -> Response:
    return ok(svc.get_score(name))


@router.delete("/feedback/scores/{name}", status_code=204, summary="Delete an unused score")
def delete_score(name: Name, svc: Svc) -> Response:
    svc.delete_score(name)
    return Response(status_code=204)


@router.get(
    "/feedback/scores/{name}/agreement",
    response_model=Agreement,
    summary="Inter-annotator and judge-versus-human agreement on a score",
)
def agreement(
    name: Name, svc: Svc, source: Annotated[str, Query(max_length=16)] = "human"
) -> Response:
    return ok(svc.agreement(name, source=source))


@router.post(
    "/feedback/annotations", response_model=Annotation, summary="Record an annotation (upsert)"
)
def annotate(body: Annotate, svc: Svc, ctx: Ctx, actor: Actor, request: Request) -> Response:
    fields = body.model_dump(exclude={"name", "value", "author"})
    author = body.author or resolve_user(ctx.settings, actor)
    if body.source == "human":  # on a server with auth on, a person annotates as themself
        author = claimed_user(request, author) or author
    return ok(svc.annotate(body.name, body.value, author=author, **fields))


@router.get("/feedback/annotations", summary="List annotations, oldest first")
def list_annotations(
    svc: Svc,
    trace_id: Text = None,
    span_id: Text = None,
    session_id: Text = None,
    prediction_id: Text = None,
    name: Text = None,
    author: Text = None,
    source: Text = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> Response:
    return ok(
        {
            "annotations": svc.list_annotations(
                trace_id=trace_id,
                span_id=span_id,
                session_id=session_id,
                prediction_id=prediction_id,
                name=name,
                author=author,
                source=source,
                limit=limit,
            )
        }
    )


@router.get(
    "/feedback/annotations/{annotation_id}", response_model=Annotation, summary="Get an annotation"
)
def get_annotation(annotation_id: Annotated[str, Path(max_length=64)], svc: Svc) -> Response:
    return ok(svc.get_annotation(annotation_id))


@router.delete(
    "/feedback/annotations/{annotation_id}", status_code=204, summary="Delete an annotation"
)
def delete_annotation(annotation_id: Annotated[str, Path(max_length=64)], svc: Svc) -> Response:
    svc.delete_annotation(annotation_id)
    return Response(status_code=204)


@router.post("/feedback/training-data", summary="Training rows made from feedback, with lineage")
def training_data(body: TrainingDataRequest, svc: Svc) -> Response:
    data, links = svc.training_data(
        body.kind, accept=body.accept, min_value=body.min_value, limit=body.limit
    )
    return ok({"data": data, "links": links})


@router.post("/feedback/exports", summary="Link a dataset version to its annotations")
def record_export(body: RecordExport, svc: Svc) -> Response:
    return ok({"exports": svc.record_export(body.dataset_version_id, body.kind, body.links)})


@router.get("/feedback/exports", summary="Which annotations and traces went into which versions")
def list_exports(
    svc: Svc,
    dataset_version_id: Text = None,
    annotation_id: Text = None,
    trace_id: Text = None,
) -> Response:
    return ok(
        {
            "exports": svc.exports(
                dataset_version_id=dataset_version_id,
                annotation_id=annotation_id,
                trace_id=trace_id,
            )
        }
    )


# ---------------------------------------------------------------- annotation queues

TraceIdPath = Annotated[str, Path(min_length=1, max_length=64)]


class CreateQueue(StrictBody):
    name: str = Field(min_length=1, max_length=64)
    filter: str = Field(min_length=1, max_length=4096)
    scores: list[str] = Field(min_length=1, max_length=50)
    sample_ratio: float = Field(default=1.0, gt=0, le=1)
    lock_ttl_s: int = Field(default=600, ge=1, le=86_400)
    description: str = Field(default="", max_length=10_000)
    author: str | None = Field(default=None, max_length=256)


class FillQueue(StrictBody):
    limit: int = Field(default=10_000, ge=1, le=100_000)


class Assign(StrictBody):
    trace_ids: list[str] = Field(max_length=100_000)
    assignee: str | None = Field(default=None, max_length=256)


class AnnotatorBody(StrictBody):
    annotator: str | None = Field(default=None, max_length=256)


def _who(body: AnnotatorBody | None, ctx: Ctx, actor: str | None) -> str:
    return (body.annotator if body else None) or resolve_user(ctx.settings, actor)


@router.post(
    "/feedback/queues", status_code=201, response_model=AnnotationQueue, summary="Create a queue"
)
def create_queue(body: CreateQueue, svc: Svc, ctx: Ctx, actor: Actor) -> Response:
    q = svc.create_queue(
        body.name,
        filter=body.filter,
        scores=body.scores,
        sample_ratio=body.sample_ratio,
        lock_ttl_s=body.lock_ttl_s,
        description=body.description,
        author=body.author or resolve_user(ctx.settings, actor),
    )
    return ok(q, status_code=201)


@router.get("/feedback/queues", summary="List annotation queues")
def list_queues(svc: Svc) -> Response:
    return ok({"queues": svc.list_queues()})


@router.get("/feedback/queues/{name}", response_model=AnnotationQueue, summary="Get a queue")
def get_queue(name: Name, svc: Svc) -> Response:
    return ok(svc.get_queue(name))


@router.delete("/feedback/queues/{name}", status_code=204, summary="Delete a queue")
def delete_queue(name: Name, svc: Svc) -> Response:
    svc.delete_queue(name)
    return Response(status_code=204)


@router.post("/feedback/queues/{name}/fill", summary="Apply the queue's rule: add matching traces")
def fill_queue(name: Name, svc: Svc, body: FillQueue | None = None) -> Response:
    return ok({"added": svc.fill_queue(name, limit=(body or FillQueue()).limit)})


@router.post("/feedback/queues/{name}/assign", summary="Assign items to an annotator")
def assign(name: Name, body: Assign, svc: Svc) -> Response:
    return ok({"assigned": svc.assign(name, body.trace_ids, body.assignee)})


@router.post("/feedback/queues/{name}/claim", summary="The annotator's next item, locked to them")
def claim(
    name: Name, svc: Svc, ctx: Ctx, actor: Actor, body: AnnotatorBody | None = None
) -> Response:
    return ok({"item": svc.claim(name, _who(body, ctx, actor))})


@router.post(
    "/feedback/queues/{name}/items/{trace_id}/complete",
    response_model=QueueItem,
    summary="Finish an item",
)
def complete_item(
    name: Name,
    trace_id: TraceIdPath,
    svc: Svc,
    ctx: Ctx,
    actor: Actor,
    body: AnnotatorBody | None = None,
) -> Response:
    return ok(svc.complete_item(name, trace_id, _who(body, ctx, actor)))


@router.post(
    "/feedback/queues/{name}/items/{trace_id}/skip",
    response_model=QueueItem,
    summary="Skip an item",
)
def skip_item(
    name: Name,
    trace_id: TraceIdPath,
    svc: Svc,
    ctx: Ctx,
    actor: Actor,
    body: AnnotatorBody | None = None,
) -> Response:
    return ok(svc.skip_item(name, trace_id, _who(body, ctx, actor)))


@router.get("/feedback/queues/{name}/items", summary="A queue's items, oldest first")
def queue_items(
    name: Name,
    svc: Svc,
    status: Annotated[Literal["pending", "done", "skipped"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> Response:
    return ok({"items": svc.queue_items(name, status=status, limit=limit)})


@router.get(
    "/feedback/queues/{name}/progress",
    response_model=QueueProgress,
    summary="Items by state, and per annotator",
)
def queue_progress(name: Name, svc: Svc) -> Response:
    return ok(svc.queue_progress(name))
