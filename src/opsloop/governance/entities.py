"""Governance types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ROLES", "AuditCheck", "AuditEntry", "NewToken", "Principal", "Role", "Token"]

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
