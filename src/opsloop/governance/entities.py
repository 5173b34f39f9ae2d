"""Governance types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ROLES",
    "Approval",
    "AuditCheck",
    "AuditEntry",
    "NewToken",
    "Principal",
    "Protection",
    "RetentionPolicy",
    "RetentionReport",
    "RetentionResult",
    "Role",
    "Token",
]

Role = Literal["viewer", "editor", "admin", "owner"]
ROLES: tuple[str, ...] = ("viewer", "editor", "admin", "owner")
"""From least to most: a role may do everything the roles before it may."""


class Token(BaseModel):
    """An API token as listed: never its secret (only its hash is stored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    prefix: str  # the secret's first characters, to recognise it
    name: str = ""
    user: str
    role: Role
    workspaces: list[str]
    created_at: int
    created_by: str
    expires_at: int | None = None
    revoked_at: int | None = None
    revoked_by: str | None = None
    last_used_at: int | None = None
    status: Literal["active", "expired", "revoked"]


class NewToken(BaseModel):
    """A token just created, with its secret: shown this once, never again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Token
    secret: str


class Principal(BaseModel):
    """Who a request acts as: the token's user, role and workspaces."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    role: Role
    token_id: str | None = None
    workspaces: list[str] = ["*"]
    session_id: str | None = None  # set when signed in to the UI (a session cookie)


class AuditEntry(BaseModel):
    """One change: who, what (method, route, path), when, from where, and its outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    at: int
    actor: str
    token_id: str | None = None
    role: str | None = None
    client: str = ""
    method: str
    path: str
    route: str
    status: int
    before: Any = None  # the state a PUT, PATCH or DELETE replaced, where a GET reads it
    request: Any = None
    response: Any = None
    prev_hash: str
    hash: str


class AuditCheck(BaseModel):
    """What ``opsloop audit verify`` found: ``ok``, or the first entry that breaks the chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


class Protection(BaseModel):
    """A protected alias: it moves only when a reviewer approves a request to move it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    alias: str
    reviewers: list[str]  # who may approve, besides admins and owners
    updated_at: int
    updated_by: str


class Approval(BaseModel):
    """A request to move a protected alias, with the promotion gate's result, and its
    decision (``approved``: the alias moved in the same transaction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    model: str
    alias: str
    version: int
    from_version: int | None = None  # the version the alias named when it was requested
    force: bool = False  # a failed gate is overridden (``gate == "failed"``)
    note: str = ""
    state: Literal["pending", "approved", "rejected"]
    requested_by: str
    requested_at: int
    gate: Literal["none", "passed", "failed"]  # the promotion gate's result at the request
    gate_failures: list[dict[str, Any]] = []
    reviewers: list[str] = []
    decided_by: str | None = None
    decided_at: int | None = None
    comment: str = ""


class RetentionPolicy(BaseModel):
    """The server's retention settings: days kept (None: forever), how often, batch size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    traces_days: float | None = None
    predictions_days: float | None = None
    bodies_days: float | None = None  # span inputs/outputs, logged predict inputs/outputs
    interval_s: float
    batch: int


class RetentionResult(BaseModel):
    """What one room's hook removed for one kind: rows older than ``before_ms``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["traces", "predictions", "bodies"]
    hook: str  # the room's function, module:name
    before_ms: int
    rows: int  # deleted (bodies: emptied)
    batches: int


class RetentionReport(BaseModel):
    """One retention run: the policy applied and what each hook removed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: int
    policy: RetentionPolicy
    results: list[RetentionResult] = []
