"""``RemoteGovernance``: tokens and the audit trail over HTTP against ``opsloop server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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

    def _protection_path(self, model: str, alias: str) -> str:
        return f"/approvals/protections/{quote(model, safe='')}/{quote(alias, safe='')}"

    def protect_alias(
        self, model: str, alias: str, *, reviewers: list[str] | None = None
    ) -> Protection:
        data = self._t.put(self._protection_path(model, alias), {"reviewers": reviewers or []})
        return Protection.model_validate(data)

    def unprotect_alias(self, model: str, alias: str) -> None:
        self._t.delete(self._protection_path(model, alias))

    def list_protections(self, *, model: str | None = None) -> list[Protection]:
        params = {"model": model} if model else None
        data = self._t.get("/approvals/protections", params)
        return [Protection.model_validate(p) for p in data["protections"]]

    def request_approval(
        self, model: str, alias: str, version: int, *, force: bool = False, note: str = ""
    ) -> Approval:
        body = {"model": model, "alias": alias, "version": version, "force": force, "note": note}
        return Approval.model_validate(self._t.post("/approvals", body))

    def list_approvals(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        alias: str | None = None,
        limit: int = 100,
    ) -> list[Approval]:
        given = {"state": state, "model": model, "alias": alias, "limit": limit}
        params = {k: v for k, v in given.items() if v is not None}
        return [Approval.model_validate(a) for a in self._t.get("/approvals", params)["approvals"]]

    def get_approval(self, approval_id: str) -> Approval:
        return Approval.model_validate(self._t.get(f"/approvals/{quote(approval_id, safe='')}"))

    def _decide(self, approval_id: str, verb: str, comment: str) -> Approval:
        path = f"/approvals/{quote(approval_id, safe='')}/{verb}"
        return Approval.model_validate(self._t.post(path, {"comment": comment}))

    def approve(self, approval_id: str, *, comment: str = "") -> Approval:
        return self._decide(approval_id, "approve", comment)

    def reject(self, approval_id: str, *, comment: str = "") -> Approval:
        return self._decide(approval_id, "reject", comment)

    def retention_policy(self) -> RetentionPolicy:
        return RetentionPolicy.model_validate(self._t.get("/retention"))

    def run_retention(self) -> RetentionReport:
        return RetentionReport.model_validate(self._t.post("/retention/run", None))
