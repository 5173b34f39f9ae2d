"""Deployments table: one row per model server started with ``opsloop serve`` (or the quickstart).

A server registers itself when it starts, heartbeats while it runs and marks
itself stopped on a graceful shutdown. A server killed hard never says so;
readers show it ``lost`` once its heartbeat is stale (see ``_service``), the
stored status stays what the server last wrote.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),  # the model URI served, e.g. models:/m@a
    sa.Column("model_uri", sa.String(1024), nullable=False),  # the version's own URI
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("alias", sa.String(256), nullable=True),
    sa.Column("url", sa.String(1024), nullable=False),
    sa.Column("host", sa.String(256), nullable=False, default=""),  # the machine's hostname
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | stopped | failed
    sa.Column("started_at", MS, nullable=False),
    sa.Column("last_heartbeat_at", MS, nullable=False),
    sa.Column("stopped_at", MS, nullable=True),
    sa.Column("workers", sa.Integer, nullable=False, default=1),
    sa.Column("flavor", sa.String(64), nullable=True),
    sa.Index("ix_deployments_model_name", "model_name"),
    sa.Index("ix_deployments_started_at", "started_at"),
)
