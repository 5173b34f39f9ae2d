"""Governance tables: API tokens (hashed) and the hash-chained audit trail.

``api_tokens`` keeps one row per token: only the SHA-256 of its secret is
stored (``secret_hash``, unique), with its user, role, workspaces, expiry,
revocation and the time it was last used.

``audit_log`` is append-only: each row's ``hash`` is the SHA-256 of the
previous row's hash and its own content, so an edited or deleted row breaks
the chain from there on (``opsloop audit verify``). ``audit_head`` holds the
last row's ``seq`` and ``hash`` (one row, ``id = 1``), so cutting rows off the
end is noticed too.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

MS = sa.BigInteger

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),  # ols_ and the first characters
    sa.Column("name", sa.String(128), nullable=False, default=""),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | editor | admin | owner
    sa.Column("workspaces", sa.Text, nullable=False),  # JSON list; ["*"]: every workspace
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("expires_at", MS, nullable=True),
    sa.Column("revoked_at", MS, nullable=True),
    sa.Column("revoked_by", sa.String(256), nullable=True),
    sa.Column("last_used_at", MS, nullable=True),
    sa.Index("ix_api_tokens_user", "user"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", MS, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("token_id", sa.String(32), nullable=True),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("client", sa.String(256), nullable=False, default=""),  # the caller's address
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("route", sa.String(512), nullable=False),  # the route template
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("before", sa.Text, nullable=True),  # GET of the path before a PUT/PATCH/DELETE
    sa.Column("request", sa.Text, nullable=True),  # the JSON body sent (secrets masked, cut)
    sa.Column("response", sa.Text, nullable=True),  # the JSON answer: the state after
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
