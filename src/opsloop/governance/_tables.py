"""Governance tables: API tokens (hashed), the hash-chained audit trail, approvals,
UI sessions (hashed) and OpenID Connect sign-ins under way.

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

# Protected aliases: an alias of a registered model (by name) that moves only when a
# reviewer approves a request (``approvals``). ``reviewers``: a JSON list of user names who
# may approve besides admins and owners.
alias_protections = sa.Table(
    "alias_protections",
    metadata,
    sa.Column("model_name", sa.String(256), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("reviewers", sa.Text, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
)

# A request to move a protected alias, and its decision. ``pending_key`` is
# ``model\nalias`` while the request is pending and NULL after, so one alias has at most
# one pending request (a unique column holds many NULLs on SQLite and PostgreSQL).
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("alias", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("force", sa.Boolean, nullable=False, default=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),  # pending | approved | rejected
    sa.Column("pending_key", sa.String(400), nullable=True, unique=True),
    sa.Column("requested_by", sa.String(256), nullable=False),
    sa.Column("requested_at", MS, nullable=False),
    sa.Column("gate", sa.String(16), nullable=False),  # none | passed | failed (forced)
    sa.Column("gate_failures", sa.Text, nullable=False),  # JSON list
    sa.Column("reviewers", sa.Text, nullable=False),  # JSON list, as protected at request
    sa.Column("decided_by", sa.String(256), nullable=True),
    sa.Column("decided_at", MS, nullable=True),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Index("ix_approvals_model", "model_name", "alias"),
    sa.Index("ix_approvals_state", "state", "requested_at"),
)

# UI sessions: signed in with an API token or OpenID Connect. Only the SHA-256 of the
# session cookie's secret is stored. A session made from a token (``token_id``) ends
# with it; each ends at ``expires_at``, after ``session_idle_s`` without a request
# (``last_seen_at``, written at most once a minute) or when signed out (``ended_at``).
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("workspaces", sa.Text, nullable=False),  # JSON list, as the token's
    sa.Column("method", sa.String(16), nullable=False),  # token | oidc
    sa.Column("token_id", sa.String(32), nullable=True),
    sa.Column("subject", sa.String(256), nullable=True),  # the OIDC provider's ``sub``
    sa.Column("client", sa.String(256), nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("expires_at", MS, nullable=False),
    sa.Column("last_seen_at", MS, nullable=False),
    sa.Column("ended_at", MS, nullable=True),
    sa.Index("ix_ui_sessions_user", "user"),
    sa.Index("ix_ui_sessions_expires_at", "expires_at"),
)

# An OpenID Connect sign-in under way: the SHA-256 of its ``state``, and the nonce and
# PKCE verifier the callback needs; used once, then deleted.
oidc_logins = sa.Table(
    "oidc_logins",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(128), nullable=False),
    sa.Column("verifier", sa.String(128), nullable=False),
    sa.Column("next", sa.String(512), nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("expires_at", MS, nullable=False),
    sa.Index("ix_oidc_logins_expires_at", "expires_at"),
)
