"""REST routes for deployments, under ``/api/v1``.

- ``GET /deployments[?model_name=&status=]``: newest first; a ``running``
  server whose heartbeat is stale shows ``lost``.
- ``GET /deployments/{id}``: one deployment.
- ``POST /deployments``: a server registers itself (201).
- ``POST /deployments/{id}/heartbeat``: it is alive (and serves ``version`` now).
- ``POST /deployments/{id}/stop``: it stopped (``{"failed": true}``: it failed).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import StrictBody, ok, service
from opsloop.deployments._backend import deployment_service
from opsloop.deployments._service import DeploymentService
from opsloop.deployments.entities import Deployment

router = APIRouter(tags=["deployments"])

Svc = Annotated[DeploymentService, Depends(service(deployment_service))]


class RegisterDeployment(StrictBody):
    name: str = Field(min_length=1, max_length=256)
    model_uri: str = Field(min_length=1, max_length=1024)
    model_name: str = Field(min_length=1, max_length=256)
    url: str = Field(min_length=1, max_length=1024)
    version: int | None = Field(default=None, ge=1)
    alias: str | None = Field(default=None, max_length=256)
    host: str = Field(default="", max_length=256)
    pid: int | None = None
    workers: int = Field(default=1, ge=1)
    flavor: str | None = Field(default=None, max_length=64)


class Heartbeat(StrictBody):
    version: int | None = Field(default=None, ge=1)
    model_uri: str | None = Field(default=None, max_length=1024)
    flavor: str | None = Field(default=None, max_length=64)


class Stop(StrictBody):
    failed: bool = False


@router.get("/deployments", summary="List model servers, newest first")
def list_deployments(
    svc: Svc,
    model_name: Annotated[str | None, Query(max_length=256)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Response:
    return ok({"deployments": svc.list(model_name=model_name, status=status, limit=limit)})


@router.post("/deployments", status_code=201, summary="Register a model server")
def register_deployment(body: RegisterDeployment, svc: Svc) -> Response:
    return ok(svc.register(**body.model_dump()), status_code=201)


@router.get("/deployments/{deployment_id}", response_model=Deployment, summary="Get a deployment")
def get_deployment(deployment_id: str, svc: Svc) -> Response:
    return ok(svc.get(deployment_id))


@router.post(
    "/deployments/{deployment_id}/heartbeat",
    response_model=Deployment,
    summary="A model server is alive",
)
def heartbeat(deployment_id: str, svc: Svc, body: Heartbeat | None = None) -> Response:
    b = body or Heartbeat()
    return ok(
        svc.heartbeat(deployment_id, version=b.version, model_uri=b.model_uri, flavor=b.flavor)
    )


@router.post(
    "/deployments/{deployment_id}/stop", response_model=Deployment, summary="A model server stopped"
)
def stop(deployment_id: str, svc: Svc, body: Stop | None = None) -> Response:
    return ok(svc.stop(deployment_id, failed=(body or Stop()).failed))
