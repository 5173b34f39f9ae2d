"""API tokens over the database: create, list, revoke, and authenticate a secret.

A secret is ``ols_`` and 43 random URL-safe characters (256 bits); only its
SHA-256 is stored, so a stolen database gives no usable token. Looking a
secret up is one indexed read of that hash, remembered for ``CACHE_TTL_S``
(``cached``): a server process revoking a token forgets it at once, another
process (a second worker, the CLI on the database) is obeyed within those
seconds. ``last_used_at`` is written at most once a minute per token, so
authenticating stays a read.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import uuid
from typing import Any, Literal

import sqlalchemy as sa

from opsloop.errors import InvalidArgument, NotFound, PermissionDenied
from opsloop.governance._errors import TokenExpired, TokenInvalid, TokenRevoked
from opsloop.governance._tables import api_tokens
from opsloop.governance.entities import ROLES, NewToken, Principal, Token
from opsloop.store import Database, now_ms

__all__ = ["SECRET_PREFIX", "TokenService", "check_role", "hash_secret", "role_at_least"]

SECRET_PREFIX = "ols_"
LAST_USED_EVERY_MS = 60_000
CACHE_TTL_S = 5.0
_CACHE_MAX = 10_000
MAX_TOKEN_LIFETIME_S = 10 * 365 * 86400


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgument(
            f"role {role!r} is not one of {', '.join(ROLES)}", details={"field": "role"}
        )
    return role


def role_at_least(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (viewer < editor < admin < owner)."""
    return ROLES.index(role) >= ROLES.index(needed)


def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise InvalidArgument(
            f"{field} must be a {'non-empty ' if required else ''}string of at most {limit} "
            "characters",
            details={"field": field},
        )
    return value


def _workspaces(items: Any) -> list[str]:
    items = ["*"] if items is None else items
    if not isinstance(items, list | tuple) or not items or len(items) > 100:
        raise InvalidArgument("workspaces must be a list of 1 to 100 names ('*': every one)")
    return sorted({_text(w, "workspaces", 128) for w in items})


class TokenService:
    """API tokens: hashed, per user, with a role, workspaces, expiry and revocation."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # secret hash -> (principal, expires_at, when it was read)
        self._cache: dict[str, tuple[Principal, int | None, float]] = {}
        self._cache_lock = threading.Lock()

    def cached(self, secret: str) -> Principal | None:
        """The principal a secret stood for when read less than ``CACHE_TTL_S`` ago, if still
        unexpired; None means: ask ``authenticate`` (the database)."""
        hit = self._cache.get(hash_secret(secret))
        if hit is None:
            return None
        principal, expires_at, read_at = hit
        if time.monotonic() - read_at > CACHE_TTL_S:
            return None
        if expires_at is not None and expires_at <= now_ms():
            return None
        return principal

    @staticmethod
    def _entity(row: Any, now: int) -> Token:
        status: Literal["active", "expired", "revoked"] = "active"
        if row.revoked_at is not None:
            status = "revoked"
        elif row.expires_at is not None and row.expires_at <= now:
            status = "expired"
        return Token(
            id=row.id,
            prefix=row.prefix,
            name=row.name or "",
            user=row.user,
            role=row.role,
            workspaces=json.loads(row.workspaces),
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            revoked_by=row.revoked_by,
            last_used_at=row.last_used_at,
            status=status,
        )

    def create(
        self,
        user: str,
        role: str,
        *,
        name: str = "",
        workspaces: list[str] | None = None,
        expires_in_s: float | None = None,
        created_by: str,
        creator_role: str | None = None,
    ) -> NewToken:
        """A new token for ``user``; ``creator_role`` (the caller's, on a server) caps ``role``."""
        check_role(role)
        if creator_role is not None and not role_at_least(creator_role, role):
            raise PermissionDenied(
                f"a {creator_role} cannot create a token with role {role}",
                details={"role": role, "your_role": creator_role},
            )
        if expires_in_s is not None and not 0 < expires_in_s <= MAX_TOKEN_LIFETIME_S:
            raise InvalidArgument(
                f"expires_in_s must be from 1 to {MAX_TOKEN_LIFETIME_S} seconds (None: never)",
                details={"field": "expires_in_s"},
            )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = now_ms()
        values = {
            "id": "tok_" + uuid.uuid4().hex[:16],
            "secret_hash": hash_secret(secret),
            "prefix": secret[:10],
            "name": _text(name, "name", 128, required=False),
            "user": _text(user, "user", 256),
            "role": role,
            "workspaces": json.dumps(_workspaces(workspaces)),
            "created_at": now,
            "created_by": created_by[:256] or "unknown",
            "expires_at": None if expires_in_s is None else now + int(expires_in_s * 1000),
        }
        with self.db.write() as conn:
            conn.execute(api_tokens.insert().values(**values))
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == values["id"])).one()
        return NewToken(token=self._entity(row, now), secret=secret)

    def get(self, token_id: str) -> Token:
        with self.db.read() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return self._entity(row, now_ms())

    def list(self, *, user: str | None = None, active_only: bool = False) -> list[Token]:
        """Tokens newest first (never their secrets)."""
        q = sa.select(api_tokens).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
        if user:
            q = q.where(api_tokens.c.user == user)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        now = now_ms()
        out = [self._entity(r, now) for r in rows]
        return [t for t in out if t.status == "active"] if active_only else out

    def revoke(self, token_id: str, *, by: str) -> Token:
        """Revoke a token at once; revoking twice keeps the first revocation."""
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(api_tokens.c.revoked_at).where(api_tokens.c.id == token_id)
            ).first()
            if row is None:
                raise NotFound(f"token {token_id!r} not found")
            if row.revoked_at is None:
                conn.execute(
                    api_tokens.update()
                    .where(api_tokens.c.id == token_id)
                    .values(revoked_at=now_ms(), revoked_by=by[:256] or "unknown")
                )
        with self._cache_lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0].token_id != token_id}
        return self.get(token_id)

    def authenticate(self, secret: str) -> Principal:
        """The principal a secret stands for; ``TokenInvalid``, ``TokenExpired``, ``TokenRevoked``."""
        if not secret.startswith(SECRET_PREFIX) or len(secret) > 256:
            raise TokenInvalid("the token is not an opsloop API token (they start with ols_)")
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.secret_hash == hash_secret(secret))
            ).first()
        if row is None:
            raise TokenInvalid("unknown token")
        now = now_ms()
        if row.revoked_at is not None:
            raise TokenRevoked(f"token {row.id} was revoked", details={"token_id": row.id})
        if row.expires_at is not None and row.expires_at <= now:
            raise TokenExpired(f"token {row.id} has expired", details={"token_id": row.id})
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY_MS:
            with self.db.write() as conn:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
        principal = Principal(
            user=row.user, role=row.role, token_id=row.id, workspaces=json.loads(row.workspaces)
        )
        with self._cache_lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[row.secret_hash] = (principal, row.expires_at, time.monotonic())
        return principal
