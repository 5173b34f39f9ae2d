"""REST routes for tuning studies, under ``/api/v1``.

- ``GET /tuning/studies[?experiment_id=]``: the registered studies.
- ``POST /tuning/studies``: get or create a study (and its parent run);
  answers ``{"study": ..., "created": bool}`` (201 when created).
- ``GET /tuning/studies/{name}``: one study.
- ``GET /tuning/studies/{name}/summary``: its trials, counts by state, best
  trial and Pareto front, read from its runs (what the UI charts).
- ``DELETE /tuning/studies/{name}``: forget the study (its runs stay).

The server never imports Optuna: Optuna's state stays with the SDK.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import StrictBody, ok, service
from opsloop.tuning._backend import tuning_service
from opsloop.tuning._service import TuningService
from opsloop.tuning.entities import StudyInfo, StudySummary

router = APIRouter(tags=["tuning"])


Svc = Annotated[TuningService, Depends(service(tuning_service))]


class RegisterStudy(StrictBody):
    name: str = Field(min_length=1, max_length=200)
    experiment_id: str = Field(min_length=1, max_length=64)
    directions: list[str] = Field(min_length=1, max_length=16)
    objectives: list[str] = Field(min_length=1, max_length=16)
    space: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    storage: str = Field(default="", max_length=1024)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)
    user: str = Field(default="", max_length=256)


@router.get("/tuning/studies", summary="List tuning studies")
def list_studies(
    svc: Svc, experiment_id: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    return ok({"studies": svc.list_studies(experiment_id)})


@router.post("/tuning/studies", summary="Get or create a tuning study and its parent run")
def register_study(body: RegisterStudy, svc: Svc) -> Response:
    study, created = svc.register_study(
        body.name,
        experiment_id=body.experiment_id,
        directions=body.directions,
        objectives=body.objectives,
        space=body.space,
        storage=body.storage,
        user=body.user,
        tags=body.tags,
    )
    return ok({"study": study, "created": created}, 201 if created else 200)


@router.get("/tuning/studies/{name}", response_model=StudyInfo, summary="Get a tuning study")
def get_study(name: str, svc: Svc) -> Response:
    return ok(svc.get_study(name))


@router.get(
    "/tuning/studies/{name}/summary",
    response_model=StudySummary,
    summary="A study's trials, best trial and Pareto front",
)
def study_summary(name: str, svc: Svc) -> Response:
    return ok(svc.summary(name))


@router.delete("/tuning/studies/{name}", status_code=204, summary="Forget a tuning study")
def delete_study(name: str, svc: Svc) -> Response:
    svc.delete_study(name)
    return Response(status_code=204)
