"""The governance room's backend seam: the operations, and the embedded backend.

Embedded, the caller has the database itself, so it acts as ``owner``: that
is how the first admin token is made (``opsloop tokens create`` on the
server's home or database).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from opsloop.governance._approvals import ApprovalService
from opsloop.governance._audit import AuditService
from opsloop.governance._retention import policy_of, run_retention
from opsloop.governance._tokens import TokenService
from opsloop.governance.entities import Principal
from opsloop.registry import RegistryService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.governance.entities import (
        Approval,
        AuditCheck,
        AuditEntry,
        NewToken,
        Protection,
        RetentionPolicy,
        RetentionReport,
        Token,
    )

__all__ = [
    "EmbeddedGovernance",
    "GovernanceBackend",
    "approval_service",
    "audit_service",
    "token_service",
]


class GovernanceBackend(Protocol):
    """What the ``Governance`` client needs, embedded or over HTTP."""

    def create_token(
        self,
        user: str,
        role: str,
        *,
        name: str = "",
        workspaces: list[str] | None = None,
        expires_in_s: float | None = None,
    ) -> NewToken: ...

    def list_tokens(self, *, user: str | None = None, active_only: bool = False) -> list[Token]: ...

    def get_token(self, token_id: str) -> Token: ...

    def revoke_token(self, token_id: str) -> Token: ...

    def audit(
        self,
        *,
        actor: str | None = None,
        method: str | None = None,
        path: str | None = None,
        token_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]: ...

    def verify_audit(self, *, expect_hash: str | None = None) -> AuditCheck: ...

    def whoami(self) -> Principal: ...

    def protect_alias(
        self, model: str, alias: str, *, reviewers: list[str] | None = None
    ) -> Protection: ...

    def unprotect_alias(self, model: str, alias: str) -> None: ...

    def list_protections(self, *, model: str | None = None) -> list[Protection]: ...

    def request_approval(
        self, model: str, alias: str, version: int, *, force: bool = False, note: str = ""
    ) -> Approval: ...

    def list_approvals(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        alias: str | None = None,
        limit: int = 100,
    ) -> list[Approval]: ...

    def get_approval(self, approval_id: str) -> Approval: ...

    def approve(self, approval_id: str, *, comment: str = "") -> Approval: ...

    def reject(self, approval_id: str, *, comment: str = "") -> Approval: ...

    def retention_policy(self) -> RetentionPolicy: ...

    def run_retention(self) -> RetentionReport: ...


def token_service(ctx: Context) -> TokenService:
    return TokenService(ctx.database)


def audit_service(ctx: Context) -> AuditService:
    return AuditService(ctx.database)


def approval_service(ctx: Context) -> ApprovalService:
    """Approvals over the context's database, moving aliases through its registry."""
    registry = RegistryService(
        ctx.database,
        ctx.blobs,
        default_actor=ctx.user,
        max_file_bytes=ctx.settings.max_artifact_bytes,
    )
    return ApprovalService(ctx.database, registry)


class EmbeddedGovernance:
    """The governance backend over the context's database (the caller acts as owner)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._tokens = ctx.room(token_service)
        self._audit = ctx.room(audit_service)
        self._approvals = ctx.room(approval_service)

    def create_token(
        self,
        user: str,
        role: str,
        *,
        name: str = "",
        workspaces: list[str] | None = None,
        expires_in_s: float | None = None,
    ) -> NewToken:
        return self._tokens.create(
            user,
            role,
            name=name,
            workspaces=workspaces,
            expires_in_s=expires_in_s,
            created_by=self._ctx.user,
        )

    def list_tokens(self, *, user: str | None = None, active_only: bool = False) -> list[Token]:
        return self._tokens.list(user=user, active_only=active_only)

    def get_token(self, token_id: str) -> Token:
        return self._tokens.get(token_id)

    def revoke_token(self, token_id: str) -> Token:
        return self._tokens.revoke(token_id, by=self._ctx.user)

    def audit(
        self,
        *,
        actor: str | None = None,
        method: str | None = None,
        path: str | None = None,
        token_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self._audit.list(
            actor=actor,
            method=method,
            path=path,
            token_id=token_id,
            since=since,
            until=until,
            before_seq=before_seq,
            limit=limit,
        )

    def verify_audit(self, *, expect_hash: str | None = None) -> AuditCheck:
        return self._audit.verify(expect_hash=expect_hash)

    def whoami(self) -> Principal:
        return Principal(user=self._ctx.user, role="owner")

    def protect_alias(
        self, model: str, alias: str, *, reviewers: list[str] | None = None
    ) -> Protection:
        return self._approvals.protect(model, alias, reviewers=reviewers, actor=self._ctx.user)

    def unprotect_alias(self, model: str, alias: str) -> None:
        self._approvals.unprotect(model, alias)

    def list_protections(self, *, model: str | None = None) -> list[Protection]:
        return self._approvals.protections(model=model)

    def request_approval(
        self, model: str, alias: str, version: int, *, force: bool = False, note: str = ""
    ) -> Approval:
        return self._approvals.request(
            model, alias, version, actor=self._ctx.user, force=force, note=note, role="owner"
        )

    def list_approvals(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        alias: str | None = None,
        limit: int = 100,
    ) -> list[Approval]:
        return self._approvals.list(state=state, model=model, alias=alias, limit=limit)

    def get_approval(self, approval_id: str) -> Approval:
        return self._approvals.get(approval_id)

    def approve(self, approval_id: str, *, comment: str = "") -> Approval:
        return self._approvals.approve(
            approval_id, actor=self._ctx.user, role="owner", comment=comment
        )

    def reject(self, approval_id: str, *, comment: str = "") -> Approval:
        return self._approvals.reject(
            approval_id, actor=self._ctx.user, role="owner", comment=comment
        )

    def retention_policy(self) -> RetentionPolicy:
        return policy_of(self._ctx.settings)

    def run_retention(self) -> RetentionReport:
        return run_retention(self._ctx.database, self._ctx.settings, actor=self._ctx.user)
