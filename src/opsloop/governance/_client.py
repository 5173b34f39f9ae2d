"""``Governance(context)``: API tokens and the audit trail, the same embedded or against a server."""

from __future__ import annotations

import builtins

from opsloop.core import Context, HasContext, context_of
from opsloop.governance._backend import EmbeddedGovernance, GovernanceBackend
from opsloop.governance._remote import RemoteGovernance
from opsloop.governance.entities import AuditCheck, AuditEntry, NewToken, Principal, Token

__all__ = ["Governance"]


def _embedded(ctx: Context) -> GovernanceBackend:
    return EmbeddedGovernance(ctx)


def _remote(ctx: Context) -> GovernanceBackend:
    return RemoteGovernance(ctx)


class Governance:
    """Create, list and revoke API tokens; search and verify the audit trail.

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
