"""UI sessions: signed in once (an API token or OpenID Connect), then a cookie.

The cookie ``opsloop_session`` holds a random secret (256 bits); the server
stores only its SHA-256. Its CSRF token is derived from that secret
(``csrf_token``), so it needs no storage, cannot be guessed without the
cookie, and a cookie planted by another site cannot come with a matching one.
The browser's script reads it from the ``opsloop_csrf`` cookie and sends it as
``X-CSRF-Token`` with every change (the guard checks it).

A session lasts at most ``Settings.session_ttl_s`` (never past its token's
expiry), ends after ``Settings.session_idle_s`` without a request, when
signed out, and when the token it was made from is revoked. Like tokens, a
session is remembered for ``CACHE_TTL_S`` after being read; signing out
forgets it at once in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from opsloop.governance._errors import SessionExpired, SessionInvalid
from opsloop.governance._tables import api_tokens, ui_sessions
from opsloop.governance._tokens import CACHE_TTL_S, hash_secret
from opsloop.governance.entities import Principal
from opsloop.store import Database, now_ms

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SessionService",
    "csrf_matches",
    "csrf_token",
    "session_service",
]

SESSION_COOKIE = "opsloop_session"
CSRF_COOKIE = "opsloop_csrf"
CSRF_HEADER = "x-csrf-token"
SEEN_EVERY_MS = 60_000
_CACHE_MAX = 10_000


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a session: derived from its secret, which only its browser holds."""
    return hmac.new(session_secret.encode(), b"opsloop csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_secret: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session_secret), str(sent))


class SessionService:
    """Sessions over the database: start, authenticate, end."""

    def __init__(self, db: Database, *, ttl_s: float, idle_s: float) -> None:
        self.db = db
        self.ttl_ms = int(ttl_s * 1000)
        self.idle_ms = int(idle_s * 1000)
        # ``last_seen_at`` is written at most once a minute (a tenth of a short idle limit).
        self.seen_every_ms = max(1, min(SEEN_EVERY_MS, self.idle_ms // 10))
        # secret hash -> (principal, expires_at, when it was read)
        self._cache: dict[str, tuple[Principal, int, float]] = {}
        self._lock = threading.Lock()

    def start(
        self,
        principal: Principal,
        *,
        method: str,
        client: str = "",
        subject: str | None = None,
        not_after: int | None = None,
    ) -> tuple[str, int]:
        """A new session for ``principal``: its secret (for the cookie) and its expiry (ms)."""
        secret = secrets.token_urlsafe(32)
        now = now_ms()
        expires = now + self.ttl_ms
        if not_after is not None:
            expires = min(expires, not_after)
        with self.db.write() as conn:
            conn.execute(
                ui_sessions.insert().values(
                    id="ses_" + uuid.uuid4().hex[:16],
                    secret_hash=hash_secret(secret),
                    user=principal.user[:256],
                    role=principal.role,
                    workspaces=json.dumps(principal.workspaces),
                    method=method,
                    token_id=principal.token_id,
                    subject=subject[:256] if subject else None,
                    client=client[:256],
                    created_at=now,
                    expires_at=expires,
                    last_seen_at=now,
                )
            )
            # Sessions long over are removed as new ones start (a few rows at a time).
            old = (
                sa.select(ui_sessions.c.id)
                .where(ui_sessions.c.expires_at < now - 86_400_000)
                .limit(100)
            )
            conn.execute(ui_sessions.delete().where(ui_sessions.c.id.in_(old)))
        return secret, expires

    def cached(self, secret: str) -> Principal | None:
        """The principal a session stood for when read less than ``CACHE_TTL_S`` ago."""
        hit = self._cache.get(hash_secret(secret))
        # Read again at least as often as ``last_seen_at`` is written, so activity counts.
        fresh_s = min(CACHE_TTL_S, self.seen_every_ms / 1000)
        if hit is None or time.monotonic() - hit[2] > fresh_s or hit[1] <= now_ms():
            return None
        return hit[0]

    def authenticate(self, secret: str) -> Principal:
        """The principal of a live session; ``SessionInvalid`` or ``SessionExpired``."""
        if not secret or len(secret) > 128:
            raise SessionInvalid("the session cookie is not an opsloop session")
        digest = hash_secret(secret)
        q = (
            sa.select(
                ui_sessions,
                api_tokens.c.revoked_at.label("token_revoked_at"),
                api_tokens.c.expires_at.label("token_expires_at"),
            )
            .select_from(
                ui_sessions.outerjoin(api_tokens, api_tokens.c.id == ui_sessions.c.token_id)
            )
            .where(ui_sessions.c.secret_hash == digest)
        )
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None or row.ended_at is not None:
            raise SessionInvalid("no such session (signed out, or never signed in): sign in")
        now = now_ms()
        why = self._ended(row, now)
        if why:
            raise SessionExpired(f"the session {why}: sign in again", details={"session": row.id})
        if now - row.last_seen_at >= self.seen_every_ms:
            with self.db.write() as conn:
                conn.execute(
                    ui_sessions.update().where(ui_sessions.c.id == row.id).values(last_seen_at=now)
                )
        principal = Principal(
            user=row.user,
            role=row.role,
            token_id=row.token_id,
            workspaces=json.loads(row.workspaces),
            session_id=row.id,
        )
        # Cached no longer than the idle limit allows from now.
        until = min(row.expires_at, now + self.idle_ms)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (principal, until, time.monotonic())
        return principal

    def _ended(self, row: Any, now: int) -> str | None:
        if row.expires_at <= now:
            return "has expired"
        if now - row.last_seen_at > self.idle_ms:
            return "was idle too long"
        if row.token_id is not None:
            if row.token_revoked_at is not None:
                return "was made with a token since revoked"
            if row.token_expires_at is not None and row.token_expires_at <= now:
                return "was made with a token since expired"
        return None

    def end(self, secret: str) -> bool:
        """Sign a session out; True when one was live."""
        digest = hash_secret(secret)
        with self._lock:
            self._cache.pop(digest, None)
        with self.db.write() as conn:
            done = conn.execute(
                ui_sessions.update()
                .where(ui_sessions.c.secret_hash == digest, ui_sessions.c.ended_at.is_(None))
                .values(ended_at=now_ms())
            )
        return bool(done.rowcount)

    def forget_token(self, token_id: str) -> None:
        """Forget the cached sessions made with a token (it was just revoked)."""
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0].token_id != token_id}


def session_service(ctx: Context) -> SessionService:
    """The server's sessions (one cache per process)."""
    s = ctx.settings
    return SessionService(ctx.database, ttl_s=s.session_ttl_s, idle_s=s.session_idle_s)
