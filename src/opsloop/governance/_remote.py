"""``RemoteGovernance``: tokens and the audit trail over HTTP against ``opsloop server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.governance.entities import AuditCheck, AuditEntry, NewToken, Principal, Token

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteGovernance"]


class RemoteGovernance:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def _token_path(self, token_id: str, tail: str = "") -> str:
        return f"/tokens/{quote(token_id, safe='')}{tail}"

    def create_token(
        self,
        user: str,
        role: str,
        *,
        name: str = "",
        workspaces: list[str] | None = None,
        expires_in_s: float | None = None,
    ) -> NewToken:
        body = {
            "user": user,
            "role": role,
            "name": name,
            "workspaces": workspaces,
            "expires_in_s": expires_in_s,
        }
        return NewToken.model_validate(self._t.post("/tokens", body))

    def list_tokens(self, *, user: str | None = None, active_only: bool = False) -> list[Token]:
        params: dict[str, Any] = {"active": active_only}
        if user:
            params["user"] = user
        return [Token.model_validate(t) for t in self._t.get("/tokens", params)["tokens"]]

    def get_token(self, token_id: str) -> Token:
        return Token.model_validate(self._t.get(self._token_path(token_id)))

    def revoke_token(self, token_id: str) -> Token:
        data = self._t.post(self._token_path(token_id, "/revoke"), None, idempotent=True)
        return Token.model_validate(data)

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
        given = {
            "actor": actor,
            "method": method,
            "path": path,
            "token_id": token_id,
            "since": since,
            "until": until,
            "before_seq": before_seq,
            "limit": limit,
        }
        params = {k: v for k, v in given.items() if v is not None}
        return [AuditEntry.model_validate(e) for e in self._t.get("/audit", params)["entries"]]

    def verify_audit(self, *, expect_hash: str | None = None) -> AuditCheck:
        params = {"expect_hash": expect_hash} if expect_hash else None
        return AuditCheck.model_validate(self._t.get("/audit/verify", params))

    def whoami(self) -> Principal:
        return Principal.model_validate(self._t.get("/whoami"))
