"""REST routes for tokens and the audit trail, under ``/api/v1`` (admin only with auth on).

- ``POST /tokens``: create a token (201); its secret is in this answer only.
- ``GET /tokens[?user=&active=true]``, ``GET /tokens/{id}``: tokens, never their secrets.
- ``POST /tokens/{id}/revoke``: revoke at once.
- ``GET /audit[?actor=&method=&path=&token_id=&since=&until=&before_seq=&limit=]``:
  the trail, newest first.
- ``GET /audit/verify[?expect_hash=]``: recompute the hash chain.
- ``GET /whoami``: the caller's user and role.
- ``GET /approvals/protections[?model=]``, ``PUT|DELETE /approvals/protections/{model}/{alias}``:
  protected aliases (changing them: admins).
- ``POST /approvals``: ask to move a protected alias (201, pending, with the gate's result).
- ``GET /approvals[?state=&model=&alias=&limit=]``, ``GET /approvals/{id}``.
- ``POST /approvals/{id}/approve`` (the alias moves), ``POST /approvals/{id}/reject``: a
  named reviewer, an admin or an owner, never the requester.
- ``GET /retention``: the server's retention policy; ``POST /retention/run``: apply it now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from opsloop.core import resolve_user
from opsloop.core.web import Actor, Ctx, StrictBody, ok, service
from opsloop.governance._approvals import ApprovalService
from opsloop.governance._audit import AuditService
from opsloop.governance._backend import approval_service, audit_service, token_service
from opsloop.governance._guard import principal_of
from opsloop.governance._retention import policy_of, run_retention
from opsloop.governance._sessions import session_service
from opsloop.governance._tokens import TokenService
from opsloop.governance.entities import (
    Approval,
    AuditCheck,
    NewToken,
    Principal,
    Protection,
    RetentionPolicy,
    RetentionReport,
    Role,
    Token,
)

router = APIRouter(tags=["governance"])

Tokens = Annotated[TokenService, Depends(service(token_service))]
Audit = Annotated[AuditService, Depends(service(audit_service))]
Approvals = Annotated[ApprovalService, Depends(service(approval_service))]
ModelName = Annotated[str, Path(min_length=1, max_length=256)]
AliasName = Annotated[str, Path(min_length=1, max_length=128)]
ApprovalId = Annotated[str, Path(min_length=1, max_length=32)]


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
    revoked = svc.revoke(token_id, by=resolve_user(ctx.settings, actor))
    ctx.room(session_service).forget_token(token_id)  # its UI sessions end at once here too
    return ok(revoked)


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


# ---------------------------------------------------------------------------- approvals


class Protect(StrictBody):
    reviewers: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=100
    )


class RequestApproval(StrictBody):
    model: str = Field(min_length=1, max_length=256)
    alias: str = Field(min_length=1, max_length=128)
    version: int = Field(ge=1, le=2**31 - 1)
    force: bool = False  # ask to override a failed promotion gate (the reviewer sees it)
    note: str = Field(default="", max_length=2000)


class Decide(StrictBody):
    comment: str = Field(default="", max_length=2000)


def _caller(request: Request, ctx: Ctx, actor: Actor) -> dict[str, str | None]:
    """Who calls, as an approval records it: the token's user and role (auth off: owner)."""
    me = principal_of(request.scope)
    return {
        "actor": me.user if me else resolve_user(ctx.settings, actor),
        "role": me.role if me else "owner",
        "token_id": me.token_id if me else None,
        "client": request.client.host if request.client else "",
    }


@router.get("/approvals/protections", summary="Protected aliases")
def list_protections(
    svc: Approvals, model: Annotated[str | None, Query(max_length=256)] = None
) -> Response:
    return ok({"protections": svc.protections(model=model)})


@router.put(
    "/approvals/protections/{model}/{alias}",
    response_model=Protection,
    summary="Protect an alias: it moves only when a reviewer approves",
)
def protect_alias(
    model: ModelName, alias: AliasName, body: Protect, svc: Approvals, ctx: Ctx, actor: Actor,
    request: Request,
) -> Response:  # fmt: skip
    who = _caller(request, ctx, actor)
    return ok(svc.protect(model, alias, reviewers=body.reviewers, actor=str(who["actor"])))


@router.delete(
    "/approvals/protections/{model}/{alias}", status_code=204, summary="Lift an alias' protection"
)
def unprotect_alias(model: ModelName, alias: AliasName, svc: Approvals) -> Response:
    svc.unprotect(model, alias)
    return Response(status_code=204)


@router.post(
    "/approvals",
    status_code=201,
    response_model=Approval,
    summary="Ask to move a protected alias (pending, with the promotion gate's result)",
)
def request_approval(
    body: RequestApproval, svc: Approvals, ctx: Ctx, actor: Actor, request: Request
) -> Response:
    who = _caller(request, ctx, actor)
    made = svc.request(
        body.model,
        body.alias,
        body.version,
        actor=str(who["actor"]),
        force=body.force,
        note=body.note,
        role=who["role"],
        token_id=who["token_id"],
        client=str(who["client"]),
    )
    return ok(made, status_code=201)


@router.get("/approvals", summary="Approvals, newest first")
def list_approvals(
    svc: Approvals,
    state: Annotated[str | None, Query(pattern="^(pending|approved|rejected)$")] = None,
    model: Annotated[str | None, Query(max_length=256)] = None,
    alias: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    return ok({"approvals": svc.list(state=state, model=model, alias=alias, limit=limit)})


@router.get("/approvals/{approval_id}", response_model=Approval, summary="An approval")
def get_approval(approval_id: ApprovalId, svc: Approvals) -> Response:
    return ok(svc.get(approval_id))


def _decide(
    decide: Callable[..., Approval], approval_id: str, body: Decide, request: Request,
    ctx: Ctx, actor: Actor,
) -> Response:  # fmt: skip
    """Approve or reject as the caller (its actor, role, token and address)."""
    who = _caller(request, ctx, actor)
    return ok(
        decide(
            approval_id,
            actor=str(who["actor"]),
            role=str(who["role"]),
            comment=body.comment,
            token_id=who["token_id"],
            client=str(who["client"]),
        )
    )


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=Approval,
    summary="Approve: the alias moves in the same transaction",
)
def approve(
    approval_id: ApprovalId, body: Decide, svc: Approvals, ctx: Ctx, actor: Actor,
    request: Request,
) -> Response:  # fmt: skip
    return _decide(svc.approve, approval_id, body, request, ctx, actor)


@router.post(
    "/approvals/{approval_id}/reject", response_model=Approval, summary="Reject: the alias stays"
)
def reject(
    approval_id: ApprovalId, body: Decide, svc: Approvals, ctx: Ctx, actor: Actor,
    request: Request,
) -> Response:  # fmt: skip
    return _decide(svc.reject, approval_id, body, request, ctx, actor)


# ---------------------------------------------------------------------------- retention


@router.get("/retention", response_model=RetentionPolicy, summary="The retention policy")
def retention_policy(ctx: Ctx) -> Response:
    return ok(policy_of(ctx.settings))


@router.post(
    "/retention/run", response_model=RetentionReport, summary="Apply the retention policy now"
)
def retention_run(ctx: Ctx, actor: Actor, request: Request) -> Response:
    me = principal_of(request.scope)
    who = me.user if me else resolve_user(ctx.settings, actor)
    return ok(run_retention(ctx.database, ctx.settings, actor=who))
