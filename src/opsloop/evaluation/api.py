"""REST routes for evaluations and promotion gates, under ``/api/v1``.

- ``GET /evaluations[?experiment_id=&max_results=]``: evaluation runs, newest
  first, with their aggregates and intervals.
- ``GET /evaluations/compare?runs=a,b,c&metric=f1[&baseline=0&offset=0&limit=100]``:
  the comparison (see ``opsloop.evaluation.compare``); ``examples`` is one
  page of the aligned per-example rows, ``total_examples`` their count.
- ``GET /evaluations/{run_id}[?offset=&limit=]``: one evaluation with a page of examples.
- ``GET|PUT|DELETE /evaluations/gates/{model}``: a model's promotion gate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core import Context
from opsloop.core.web import Actor, Ctx, StrictBody, ok, service
from opsloop.errors import InvalidArgument
from opsloop.evaluation._backend import gate_service
from opsloop.evaluation._client import EVAL_FILTER
from opsloop.evaluation._compare import compare_results
from opsloop.evaluation._evaluate import load_result, metric_key
from opsloop.evaluation._gates import GateService
from opsloop.tracking import artifact_service, tracking_service
from opsloop.tracking.entities import Run

router = APIRouter(tags=["evaluation"])
MAX_COMPARE = 10

Gates = Annotated[GateService, Depends(service(gate_service))]


class _Reader:
    """What ``load_result`` needs, served from the app's own services."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def get_run(self, run_id: str) -> Run:
        return self.ctx.room(tracking_service).get_run(run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        _, fh = self.ctx.room(artifact_service).open(run_id, path)
        with fh:
            return fh.read()


class SetGate(StrictBody):
    rules: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    aliases: list[str] | None = Field(default=None, max_length=100)


def summary_row(run: Any) -> dict[str, Any]:
    """A run as the evaluations list shows it: aggregates with their intervals."""
    metrics = {k: m.value for k, m in run.metrics.items()}
    names = [n for n in run.params.get("metrics", "").split(",") if n]
    return {
        "run_id": run.id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "status": str(getattr(run.status, "value", run.status)),
        "start_time": run.start_time,
        "candidate": run.params.get("candidate", ""),
        "candidate_kind": run.params.get("candidate_kind", ""),
        "dataset": run.params.get("dataset", ""),
        "metric_names": [metric_key(n) for n in names],
        "metrics": metrics,
    }


@router.get("/evaluations", summary="List evaluation runs")
def list_evaluations(
    ctx: Ctx,
    experiment_id: Annotated[str | None, Query(max_length=64)] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    page = ctx.room(tracking_service).search_runs(
        [experiment_id] if experiment_id else None,
        filter=EVAL_FILTER,
        order_by=["start_time DESC"],
        max_results=max_results,
    )
    return ok({"evaluations": [summary_row(r) for r in page.runs]})


@router.get("/evaluations/compare", summary="Compare evaluation runs example by example")
def compare_evaluations(
    ctx: Ctx,
    runs: Annotated[str, Query(min_length=1, max_length=2000)],
    metric: Annotated[str, Query(min_length=1, max_length=250)],
    baseline: Annotated[int, Query(ge=0)] = 0,
    offset: Annotated[int, Query(ge=0, lt=2**63)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    n_bootstrap: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> Response:
    ids = [r.strip() for r in runs.split(",") if r.strip()]
    if len(ids) < 2 or len(ids) > MAX_COMPARE:
        raise InvalidArgument(f"runs must name 2..{MAX_COMPARE} evaluation runs, comma-separated")
    if baseline >= len(ids):
        raise InvalidArgument(f"baseline must be an index in 0..{len(ids) - 1}")
    reader = _Reader(ctx)
    results = [load_result(reader, rid) for rid in ids]
    cmp = compare_results(results, metric=metric, baseline=baseline, n_bootstrap=n_bootstrap)
    body = cmp.model_dump(mode="json")
    body["total_examples"] = len(cmp.examples)
    body["examples"] = body["examples"][offset : offset + limit]
    body["offset"], body["limit"] = offset, limit
    return ok(body)


@router.get("/evaluations/gates/{model}", summary="A model's promotion gate")
def get_gate(model: str, svc: Gates) -> Response:
    return ok(svc.get_gate(model))


@router.put("/evaluations/gates/{model}", summary="Set a model's promotion gate")
def set_gate(model: str, body: SetGate, svc: Gates, actor: Actor) -> Response:
    return ok(svc.set_gate(model, body.rules, aliases=body.aliases, actor=actor or ""))


@router.delete("/evaluations/gates/{model}", status_code=204, summary="Delete a model's gate")
def delete_gate(model: str, svc: Gates) -> Response:
    svc.delete_gate(model)
    return Response(status_code=204)


@router.get("/evaluations/{run_id}", summary="One evaluation with a page of its examples")
def get_evaluation(
    run_id: str,
    ctx: Ctx,
    offset: Annotated[int, Query(ge=0, lt=2**63)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    res = load_result(_Reader(ctx), run_id)
    body = res.model_dump(mode="json")
    body["total_examples"] = len(res.examples)
    body["examples"] = body["examples"][offset : offset + limit]
    body["offset"], body["limit"] = offset, limit
    return ok(body)
