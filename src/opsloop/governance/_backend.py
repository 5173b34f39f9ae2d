"""The governance room's backend seam: the operations, and the embedded backend.

Embedded, the caller has the database itself, so it acts as ``owner``: that
is how the first admin token is made (``opsloop tokens create`` on the
server's home or database).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from opsloop.governance._audit import AuditService
from opsloop.governance._tokens import TokenService
from opsloop.governance.entities import Principal

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.governance.entities import AuditCheck, AuditEntry, NewToken, Token

__all__ = ["EmbeddedGovernance", "GovernanceBackend", "audit_service", "token_service"]


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


def token_service(ctx: Context) -> TokenService:
    return TokenService(ctx.database)


def audit_service(ctx: Context) -> AuditService:
    return AuditService(ctx.database)


class EmbeddedGovernance:
    """The governance backend over the context's database (the caller acts as owner)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._tokens = ctx.room(token_service)
        self._audit = ctx.room(audit_service)

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
