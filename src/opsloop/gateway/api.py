"""REST routes managing the gateway, under ``/api/v1`` (the gateway itself is
``opsloop gateway serve``; these routes manage what it enforces).

- ``GET /gateway/routes``; ``GET|PUT|DELETE /gateway/routes/{name}``
- ``GET /gateway/teams``; ``GET|PUT /gateway/teams/{name}`` (the body: limits)
- ``GET /gateway/keys[?team=]``; ``POST /gateway/keys`` (201; the secret, once);
  ``GET /gateway/keys/{id}``; ``POST /gateway/keys/{id}/revoke``;
  ``PUT /gateway/keys/{id}/limits``
- ``GET /gateway/usage?group_by=key|team|route|model|none&bucket=hour|day&since=&until=``
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import Actor, StrictBody, ok, service
from opsloop.gateway._backend import gateway_service
from opsloop.gateway._service import GatewayService
from opsloop.gateway.entities import (
    CreatedKey,
    Limits,
    Route,
    RouteSpec,
    Team,
    UsageReport,
    VirtualKey,
)

router = APIRouter(tags=["gateway"])

Svc = Annotated[GatewayService, Depends(service(gateway_service))]


class CreateKey(StrictBody):
    name: str = Field(min_length=1, max_length=256)
    routes: list[str] = Field(default_factory=list, max_length=256)
    team: str | None = Field(default=None, max_length=256)
    owner: str = Field(default="", max_length=256)
    limits: Limits = Field(default_factory=Limits)
    expires_at: int | None = Field(default=None, ge=0, lt=2**62)


@router.get("/gateway/routes", summary="List gateway routes")
def list_routes(svc: Svc) -> Response:
    return ok({"routes": svc.list_routes()})


@router.get("/gateway/routes/{name}", response_model=Route, summary="Get a gateway route")
def get_route(name: str, svc: Svc) -> Response:
    return ok(svc.get_route(name))


@router.put("/gateway/routes/{name}", response_model=Route, summary="Create or replace a route")
def put_route(name: str, body: RouteSpec, svc: Svc, actor: Actor) -> Response:
    return ok(svc.set_route(name, body, actor=actor or ""))


@router.delete("/gateway/routes/{name}", summary="Delete a gateway route")
def delete_route(name: str, svc: Svc) -> Response:
    svc.delete_route(name)
    return ok({"deleted": name})


@router.get("/gateway/teams", summary="List gateway teams")
def list_teams(svc: Svc) -> Response:
    return ok({"teams": svc.list_teams()})


@router.get("/gateway/teams/{name}", response_model=Team, summary="Get a team and its limits")
def get_team(name: str, svc: Svc) -> Response:
    return ok(svc.get_team(name))


@router.put("/gateway/teams/{name}", response_model=Team, summary="Create a team or set its limits")
def put_team(name: str, body: Limits, svc: Svc) -> Response:
    return ok(svc.set_team(name, body))


@router.get("/gateway/keys", summary="List virtual keys (never their secrets)")
def list_keys(svc: Svc, team: Annotated[str | None, Query(max_length=256)] = None) -> Response:
    return ok({"keys": svc.list_keys(team=team)})


@router.post(
    "/gateway/keys", status_code=201, response_model=CreatedKey, summary="Create a virtual key"
)
def create_key(body: CreateKey, svc: Svc) -> Response:
    created = svc.create_key(
        body.name,
        routes=body.routes,
        team=body.team,
        owner=body.owner,
        limits=body.limits,
        expires_at=body.expires_at,
    )
    return ok(created, status_code=201)


@router.get("/gateway/keys/{key_id}", response_model=VirtualKey, summary="Get a virtual key")
def get_key(key_id: str, svc: Svc) -> Response:
    return ok(svc.get_key(key_id))


@router.post(
    "/gateway/keys/{key_id}/revoke", response_model=VirtualKey, summary="Revoke a virtual key"
)
def revoke_key(key_id: str, svc: Svc) -> Response:
    return ok(svc.revoke_key(key_id))


@router.put(
    "/gateway/keys/{key_id}/limits", response_model=VirtualKey, summary="Set a key's limits"
)
def put_key_limits(key_id: str, body: Limits, svc: Svc) -> Response:
    return ok(svc.set_key_limits(key_id, body))


@router.get("/gateway/usage", response_model=UsageReport, summary="Usage and cost over time")
def usage(
    svc: Svc,
    group_by: Annotated[str, Query(max_length=16)] = "key",
    bucket: Annotated[str | None, Query(max_length=8)] = None,
    since: Annotated[int | None, Query(ge=0, lt=2**62)] = None,
    until: Annotated[int | None, Query(ge=0, lt=2**62)] = None,
) -> Response:
    return ok(svc.usage(group_by=group_by, bucket=bucket, since=since, until=until))
