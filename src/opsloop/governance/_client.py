"""``Governance(context)``: API tokens and the audit trail, the same embedded or against a server."""

from __future__ import annotations

import builtins

from opsloop.core import Context, HasContext, context_of
from opsloop.governance._backend import EmbeddedGovernance, GovernanceBackend
from opsloop.governance._remote import RemoteGovernance
from opsloop.governance.entities import (
    Approval,
    AuditCheck,
    AuditEntry,
    NewToken,
    Principal,
    Protection,
    RetentionPolicy,
    RetentionReport,
    Token,
)

__all__ = ["Governance"]


def _embedded(ctx: Context) -> GovernanceBackend:
    return EmbeddedGovernance(ctx)


def _remote(ctx: Context) -> GovernanceBackend:
    return RemoteGovernance(ctx)


class Governance:
    """Create, list and revoke API tokens; search and verify the audit trail; protect
    aliases and decide the approvals that move them.

    Embedded (on the server's home or database) you act as owner; against a
    server, as the token in ``Settings.token`` (an admin for tokens and the trail).
    """

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: GovernanceBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    def create_token(
        self,
        user: str,
        role: str = "viewer",
        *,
        name: str = "",
        workspaces: builtins.list[str] | None = None,
        expires_in_s: float | None = 90 * 86400,
    ) -> NewToken:
        """A token for ``user`` with ``role``; ``.secret`` is shown this once (only a hash is kept).

        ``expires_in_s=None`` never expires. On a server a caller grants at most its own role.
        """
        return self._backend.create_token(
            user, role, name=name, workspaces=workspaces, expires_in_s=expires_in_s
        )

    def list_tokens(
        self, *, user: str | None = None, active_only: bool = False
    ) -> builtins.list[Token]:
        return self._backend.list_tokens(user=user, active_only=active_only)

    def get_token(self, token_id: str) -> Token:
        return self._backend.get_token(token_id)

    def revoke_token(self, token_id: str) -> Token:
        """Revoke at once: the next request with it answers 401 ``TOKEN_REVOKED``."""
        return self._backend.revoke_token(token_id)

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
    ) -> builtins.list[AuditEntry]:
        """Audit entries newest first; ``path`` matches part of the path; ``before_seq`` pages."""
        return self._backend.audit(
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
        """Recompute the hash chain; ``.first_bad_seq`` names the first entry that fails."""
        return self._backend.verify_audit(expect_hash=expect_hash)

    def whoami(self) -> Principal:
        """Who this client acts as (embedded: the context's user, as owner)."""
        return self._backend.whoami()

    # ------------------------------------------------------------------ approvals

    def protect_alias(
        self, model: str, alias: str, *, reviewers: builtins.list[str] | None = None
    ) -> Protection:
        """Protect ``alias`` of ``model``: it then moves only when a reviewer approves a
        request (``reviewers``: who may approve besides admins and owners). Admins only."""
        return self._backend.protect_alias(model, alias, reviewers=reviewers)

    def unprotect_alias(self, model: str, alias: str) -> None:
        """Lift the protection (admins only); pending requests stay pending."""
        self._backend.unprotect_alias(model, alias)

    def list_protections(self, *, model: str | None = None) -> builtins.list[Protection]:
        return self._backend.list_protections(model=model)

    def request_approval(
        self, model: str, alias: str, version: int, *, force: bool = False, note: str = ""
    ) -> Approval:
        """Ask to move a protected alias to ``version``: a pending ``Approval`` carrying the
        promotion gate's result. A failed gate refuses the request unless ``force``."""
        return self._backend.request_approval(model, alias, version, force=force, note=note)

    def list_approvals(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        alias: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Approval]:
        """Approvals newest first; ``state``: pending, approved or rejected."""
        return self._backend.list_approvals(state=state, model=model, alias=alias, limit=limit)

    def get_approval(self, approval_id: str) -> Approval:
        return self._backend.get_approval(approval_id)

    def approve(self, approval_id: str, *, comment: str = "") -> Approval:
        """Approve (a named reviewer, admin or owner; not the requester): the alias moves
        in the same transaction, recorded in the audit trail."""
        return self._backend.approve(approval_id, comment=comment)

    def reject(self, approval_id: str, *, comment: str = "") -> Approval:
        return self._backend.reject(approval_id, comment=comment)

    # ------------------------------------------------------------------ retention

    def retention_policy(self) -> RetentionPolicy:
        """The retention policy in force (the server's settings; embedded, this context's)."""
        return self._backend.retention_policy()

    def run_retention(self) -> RetentionReport:
        """Apply the retention policy once now (a server also runs it on a schedule)."""
        return self._backend.run_retention()
