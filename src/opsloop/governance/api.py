"""REST routes for tokens and the audit trail, under ``/api/v1`` (admin only with auth on).

- ``POST /tokens``: create a token (201); its secret is in this answer only.
- ``GET /tokens[?user=&active=true]``, ``GET /tokens/{id}``: tokens, never their secrets.
- ``POST /tokens/{id}/revoke``: revoke at once.
- ``GET /audit[?actor=&method=&path=&token_id=&since=&until=&before_seq=&limit=]``:
  the trail, newest first.
- ``GET /audit/verify[?expect_hash=]``: recompute the hash chain.
- ``GET /whoami``: the caller's user and role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from opsloop.core import resolve_user
from opsloop.core.web import Actor, Ctx, StrictBody, ok, service
from opsloop.governance._audit import AuditService
from opsloop.governance._backend import audit_service, token_service
from opsloop.governance._guard import principal_of
from opsloop.governance._tokens import TokenService
from opsloop.governance.entities import AuditCheck, NewToken, Principal, Role, Token

router = APIRouter(tags=["governance"])

Tokens = Annotated[TokenService, Depends(service(token_service))]
Audit = Annotated[AuditService, Depends(service(audit_service))]


class CreateToken(StrictBody):
    user: str = Field(min_length=1, max_length=256)
    role: Role
    name: str = Field(default="", max_length=128)
    workspaces: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    expires_in_s: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)


@router.post("/tokens", status_code=201, response_model=NewToken, summary="Create an API token")
def create_token(
    body: CreateToken, svc: Tokens, ctx: Ctx, actor: Actor, request: Request
) -> Response:
    me = principal_of(request.scope)
    created = svc.create(
        body.user,
        body.role,
        name=body.name,
        workspaces=body.workspaces,
        expires_in_s=body.expires_in_s,
        created_by=resolve_user(ctx.settings, actor),
        creator_role=me.role if me else None,
    )
    return ok(created, status_code=201)


@router.get("/tokens", summary="List API tokens (never their secrets)")
def list_tokens(
    svc: Tokens,
    user: Annotated[str | None, Query(max_length=256)] = None,
    active: bool = False,
) -> Response:
    return ok({"tokens": svc.list(user=user, active_only=active)})


@router.get("/tokens/{token_id}", response_model=Token, summary="Get an API token")
def get_token(token_id: str, svc: Tokens) -> Response:
    return ok(svc.get(token_id))


@router.post("/tokens/{token_id}/revoke", response_model=Token, summary="Revoke an API token")
def revoke_token(token_id: str, svc: Tokens, ctx: Ctx, actor: Actor) -> Response:
    return ok(svc.revoke(token_id, by=resolve_user(ctx.settings, actor)))


@router.get("/audit", summary="Search the audit trail, newest first")
def list_audit(
    svc: Audit,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    method: Annotated[str | None, Query(max_length=16)] = None,
    path: Annotated[str | None, Query(max_length=1024)] = None,
    token_id: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    until: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    before_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    entries = svc.list(
        actor=actor,
        method=method,
        path=path,
        token_id=token_id,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit,
    )
    return ok({"entries": entries})


@router.get("/audit/verify", response_model=AuditCheck, summary="Check the audit hash chain")
def verify_audit(
    svc: Audit, expect_hash: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    return ok(svc.verify(expect_hash=expect_hash))


@router.get("/whoami", response_model=Principal, summary="Who the caller acts as")
def whoami(ctx: Ctx, actor: Actor, request: Request) -> Response:
    me = principal_of(request.scope)
    return ok(me or Principal(user=resolve_user(ctx.settings, actor), role="owner"))
