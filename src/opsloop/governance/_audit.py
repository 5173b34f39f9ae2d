"""The audit trail: an append-only, hash-chained log of every change.

Row ``n``'s hash is ``sha256(hash(n-1) + "\\n" + canonical JSON of row n)``
(the first row chains from 64 zeros), and ``audit_head`` keeps the last
``seq`` and hash. ``verify()`` recomputes the chain: an edited row no longer
matches its hash, a deleted one leaves a gap in ``seq`` and a ``prev_hash``
naming a row that is gone, rows cut off the end disagree with the head.

A chain kept in the same database shows changes made by anyone who does not
also recompute every later hash; to catch that too, keep the head hash
``verify`` prints somewhere else and give it back with ``expect_hash``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument
from opsloop.governance._tables import audit_head, audit_log
from opsloop.governance.entities import AuditCheck, AuditEntry
from opsloop.store import Database, now_ms

__all__ = ["GENESIS", "AuditService", "append_entry", "mask_secrets", "stored_json"]

GENESIS = "0" * 64
MAX_STORED_CHARS = 16_384
_SECRET_KEYS = ("secret", "password", "api_key", "apikey", "authorization", "credential")
_SECRET_VALUES = ("ols_", "sk-")
_PG_LOCK = 724019  # serialises appends on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)


def mask_secrets(value: Any) -> Any:
    """``value`` with every secret-looking string replaced by ``"[masked]"``."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name = str(k).lower()
            secret_key = name == "token" or any(s in name for s in _SECRET_KEYS)
            out[k] = "[masked]" if secret_key and isinstance(v, str) else mask_secrets(v)
        return out
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str) and value.startswith(_SECRET_VALUES):
        return "[masked]"
    return value


def stored_json(raw: bytes | None) -> str | None:
    """A JSON body as stored in the trail: secrets masked, at most 16 KiB, else a note."""
    if not raw:
        return None
    if len(raw) > MAX_STORED_CHARS:
        return json.dumps({"omitted": "too large", "bytes": len(raw)})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return json.dumps({"omitted": "not JSON", "bytes": len(raw)})
    return json.dumps(mask_secrets(data), ensure_ascii=False, separators=(",", ":"))


_FIELDS = (
    "seq", "at", "actor", "token_id", "role", "client", "method", "path", "route", "status",
    "before", "request", "response",
)  # fmt: skip


def chain_hash(prev_hash: str, row: Mapping[str, Any] | sa.RowMapping) -> str:
    content = json.dumps([row[f] for f in _FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def _entry(mapping: Mapping[str, Any] | sa.RowMapping) -> AuditEntry:
    data = dict(mapping)
    for f in ("before", "request", "response"):
        data[f] = None if data[f] is None else json.loads(data[f])
    return AuditEntry(**data)


def append_entry(
    conn: Connection,
    *,
    actor: str,
    method: str,
    path: str,
    route: str,
    status: int,
    token_id: str | None = None,
    role: str | None = None,
    client: str = "",
    before: str | None = None,
    request: str | None = None,
    response: str | None = None,
) -> AuditEntry:
    """Append one entry inside the open write transaction ``conn``: it commits (or rolls
    back) with the change it records (an approval moving an alias, for one)."""
    row: dict[str, Any] = {
        "at": now_ms(),
        "actor": actor[:256] or "unknown",
        "token_id": token_id,
        "role": role,
        "client": client[:256],
        "method": method[:16],
        "path": path,
        "route": route[:512],
        "status": int(status),
        "before": before,
        "request": request,
        "response": response,
    }
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK})"))
    head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
    row.update(seq=seq + 1, prev_hash=prev)
    row["hash"] = chain_hash(prev, row)
    conn.execute(audit_log.insert().values(**row))
    if head is None:
        conn.execute(audit_head.insert().values(id=1, seq=row["seq"], hash=row["hash"]))
    else:
        conn.execute(
            audit_head.update().where(audit_head.c.id == 1).values(seq=row["seq"], hash=row["hash"])
        )
    return _entry(row)


class AuditService:
    """Append to, search and verify the audit trail."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        *,
        actor: str,
        method: str,
        path: str,
        route: str,
        status: int,
        token_id: str | None = None,
        role: str | None = None,
        client: str = "",
        before: str | None = None,
        request: str | None = None,
        response: str | None = None,
    ) -> AuditEntry:
        """Add one entry at the end of the chain (appends are serialised)."""
        with self.db.write() as conn:
            return append_entry(
                conn,
                actor=actor,
                method=method,
                path=path,
                route=route,
                status=status,
                token_id=token_id,
                role=role,
                client=client,
                before=before,
                request=request,
                response=response,
            )

    def list(
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
        """Entries newest first; ``path`` matches a part of the path; ``before_seq`` pages."""
        if not 1 <= limit <= 10_000:
            raise InvalidArgument("limit must be from 1 to 10000", details={"field": "limit"})
        t = audit_log
        q = sa.select(t).order_by(t.c.seq.desc()).limit(limit)
        if actor:
            q = q.where(t.c.actor == actor)
        if method:
            q = q.where(t.c.method == method.upper())
        if path:
            escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(t.c.path.like(f"%{escaped}%", escape="\\"))
        if token_id:
            q = q.where(t.c.token_id == token_id)
        if since is not None:
            q = q.where(t.c.at >= since)
        if until is not None:
            q = q.where(t.c.at < until)
        if before_seq is not None:
            q = q.where(t.c.seq < before_seq)
        with self.db.read() as conn:
            return [_entry(r._mapping) for r in conn.execute(q)]

    def verify(self, *, expect_hash: str | None = None) -> AuditCheck:
        """Recompute the chain; name the first entry that does not hold."""
        entries, prev_seq, prev_hash = 0, 0, GENESIS
        bad: tuple[int, str] | None = None
        with self.db.read() as conn:
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
            seen_expected = expect_hash is None
            for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).yield_per(1000):
                entries += 1
                row = r._mapping
                if r.seq != prev_seq + 1:
                    bad = (prev_seq + 1, f"entries {prev_seq + 1} to {r.seq - 1} are missing")
                elif r.prev_hash != prev_hash:
                    bad = (r.seq, "its prev_hash does not name the entry before it")
                elif chain_hash(prev_hash, row) != r.hash:
                    bad = (r.seq, "its content does not match its hash (edited)")
                if bad:
                    break
                prev_seq, prev_hash = r.seq, r.hash
                seen_expected = seen_expected or r.hash == expect_hash
        if bad is None:
            head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
            if (head_seq, head_hash) != (prev_seq, prev_hash):
                bad = (
                    prev_seq + 1,
                    f"the head names entry {head_seq}; the chain ends at {prev_seq}",
                )
            elif not seen_expected:
                bad = (prev_seq, f"the expected hash {expect_hash} is not in the chain")
        return AuditCheck(
            ok=bad is None,
            entries=entries,
            head_seq=prev_seq,
            head_hash=prev_hash,
            first_bad_seq=bad[0] if bad else None,
            problem=bad[1] if bad else None,
        )
