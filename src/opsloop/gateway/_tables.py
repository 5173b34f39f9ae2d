"""The gateway's tables: routes, teams, virtual keys (hashed), shared counters, the usage log.

``gateway_counters`` holds the limit counters when no Redis is configured:
one row per (scope, window, metric), changed only inside a write transaction
that locks the rows it reads (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on
PostgreSQL), so replicas sharing the database never both spend the last unit.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

MS = sa.BigInteger

gateway_routes = sa.Table(
    "gateway_routes",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),  # RouteSpec without its name
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False, default=""),
)

gateway_teams = sa.Table(
    "gateway_teams",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("limits", sa.JSON, nullable=False),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
)

gateway_keys = sa.Table(
    "gateway_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("prefix", sa.String(16), nullable=False),  # shown in lists, never the secret
    sa.Column("team", sa.String(256), nullable=True),
    sa.Column("owner", sa.String(256), nullable=False, default=""),
    sa.Column("routes", sa.JSON, nullable=False),  # route names this key may call ("*": all)
    sa.Column("limits", sa.JSON, nullable=False),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("expires_at", MS, nullable=True),
    sa.Column("revoked_at", MS, nullable=True),
    sa.Index("ix_gateway_keys_team", "team"),
)

gateway_counters = sa.Table(
    "gateway_counters",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),  # key:<id> | team:<name>
    sa.Column("metric", sa.String(32), primary_key=True),
    sa.Column("window", sa.String(16), primary_key=True),  # m:<minute> | d:<YYYYMMDD> | M:<YYYYMM>
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("expires_at", MS, nullable=False),
    sa.Index("ix_gateway_counters_expires_at", "expires_at"),
)

gateway_usage = sa.Table(
    "gateway_usage",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("ts", MS, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("team", sa.String(256), nullable=True),
    sa.Column("route", sa.String(256), nullable=True),
    sa.Column("model", sa.String(256), nullable=True),  # the upstream model that answered
    sa.Column("endpoint", sa.String(32), nullable=False),  # chat | completions | embeddings
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("code", sa.String(64), nullable=True),  # the error code of a refusal or failure
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_micros", sa.BigInteger, nullable=False, default=0),  # 1e-6 USD
    sa.Column("latency_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("overhead_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("cache", sa.String(8), nullable=True),  # hit | miss
    sa.Column("decisions", sa.JSON, nullable=False),  # retries, fallbacks, breaker, guards, ...
    sa.Index("ix_gateway_usage_ts", "ts"),
    sa.Index("ix_gateway_usage_key_ts", "key_id", "ts"),
)
