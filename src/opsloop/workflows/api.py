"""REST routes of the workflows room, under ``/api/v1``.

- ``GET /workflows/runs[?workflow=&limit=]``: workflow runs, newest first.
- ``GET /workflows/runs/{run_id}``: a run, its DAG and each step (cache hit or not, lineage).
- ``GET /workflows/cache[?step=]``: how many entries; ``GET|PUT /workflows/cache/{key}``:
  one entry; ``POST /workflows/cache/{key}/hits``; ``POST /workflows/cache/drop``.
- ``GET|POST /workflows/triggers``, ``DELETE /workflows/triggers/{name}``: schedules and
  event subscriptions.
- ``POST /workflows/events``: record an event under its idempotency key (``monitoring.alert``);
  ``GET /workflows/events[?trigger=&status=&limit=]``: the inbox with the runs it started.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import Actor, Ctx, StrictBody, ok, service
from opsloop.errors import NotFound
from opsloop.workflows._backend import cache_service, trigger_service
from opsloop.workflows._cache import CacheService
from opsloop.workflows._client import Workflows
from opsloop.workflows._load import load_workflow
from opsloop.workflows._triggers import TriggerService
from opsloop.workflows.entities import CacheEntry, TriggerInfo

router = APIRouter(tags=["workflows"])

Cache = Annotated[CacheService, Depends(service(cache_service))]
Triggers = Annotated[TriggerService, Depends(service(trigger_service))]
Key = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
TriggerName = Annotated[str, Path(min_length=1, max_length=200)]


class OutputRef(StrictBody):
    path: str = Field(min_length=1, max_length=500)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    size: int = Field(ge=0)


class PutEntry(StrictBody):
    step: str = Field(min_length=1, max_length=256)
    run_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    outputs: dict[Annotated[str, Field(pattern=r"^return$")], OutputRef] = Field(
        min_length=1, max_length=1
    )


class DropKeys(StrictBody):
    keys: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(max_length=10_000)


class CreateTrigger(StrictBody):
    name: str = Field(min_length=1, max_length=200)
    workflow: str = Field(min_length=1, max_length=512)
    kind: str = Field(pattern=r"^(cron|event)$")
    spec: dict[str, Any] = Field(max_length=10)
    params: dict[str, Any] = Field(default_factory=dict, max_length=200)
    executor: str = Field(default="inline", pattern=r"^(inline|process|ray)$")


class Emit(StrictBody):
    event: str = Field(min_length=3, max_length=128)
    key: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, max_length=200)


@router.get("/workflows/runs", summary="List workflow runs")
def list_runs(
    ctx: Ctx,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    runs = ctx.room(Workflows).list_runs(workflow, limit=limit)
    return ok({"runs": runs})


@router.get("/workflows/runs/{run_id}", summary="A workflow run: its DAG, steps and lineage")
def show_run(run_id: RunId, ctx: Ctx) -> Response:
    return ok(ctx.room(Workflows).show(run_id))


@router.get("/workflows/cache", summary="Count cache entries")
def count_cache(svc: Cache, step: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    return ok({"count": svc.count(step)})


@router.get("/workflows/cache/{key}", response_model=CacheEntry, summary="A cache entry")
def get_entry(key: Key, svc: Cache) -> Response:
    entry = svc.get(key)
    if entry is None:
        raise NotFound(f"no cache entry {key}")
    return ok(entry)


@router.put("/workflows/cache/{key}", status_code=204, summary="Record a cache entry")
def put_entry(key: Key, body: PutEntry, svc: Cache) -> Response:
    svc.put(key, body.step, body.run_id, {k: v.model_dump() for k, v in body.outputs.items()})
    return Response(status_code=204)


@router.post("/workflows/cache/{key}/hits", status_code=204, summary="Count a cache hit")
def hit_entry(key: Key, svc: Cache) -> Response:
    svc.hit(key)
    return Response(status_code=204)


@router.post("/workflows/cache/drop", summary="Drop cache entries")
def drop_entries(body: DropKeys, svc: Cache) -> Response:
    return ok({"dropped": svc.drop(body.keys)})


@router.get("/workflows/triggers", summary="List schedules and event triggers")
def list_triggers(svc: Triggers) -> Response:
    return ok({"triggers": svc.all()})


@router.post(
    "/workflows/triggers", response_model=TriggerInfo, status_code=201, summary="Add a trigger"
)
def create_trigger(body: CreateTrigger, svc: Triggers, actor: Actor) -> Response:
    load_workflow(body.workflow)  # the dispatcher will load it: refuse one that does not load
    t = svc.create(
        body.name,
        body.workflow,
        body.kind,
        body.spec,
        body.params,
        executor=body.executor,
        user=actor or "",
    )
    return ok(t, 201)


@router.delete("/workflows/triggers/{name}", status_code=204, summary="Delete a trigger")
def delete_trigger(name: TriggerName, svc: Triggers) -> Response:
    svc.delete(name)
    return Response(status_code=204)


@router.post("/workflows/events", summary="Record an event under its idempotency key")
def emit(body: Emit, svc: Triggers) -> Response:
    return ok({"recorded": svc.emit(body.event, body.key, body.payload)})


@router.get("/workflows/events", summary="The event inbox, newest first")
def list_events(
    svc: Triggers,
    trigger: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern=r"^(pending|running|done|failed|counted)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    return ok({"events": svc.events(trigger=trigger, status=status, limit=limit)})
