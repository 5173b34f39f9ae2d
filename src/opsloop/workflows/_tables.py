"""Workflow tables: the step cache, triggers (schedules and event subscriptions) and the event inbox.

A workflow run is a tracking run (a child run per step); these tables hold
only what runs cannot: the cache index (key -> the step run that made the
outputs), the triggers, and every event received with the run it started.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

# One row per cache key (sha256 of code, project code reached, packages, params, input hashes).
# Deleting the step run that made the outputs deletes its entry (its artifacts are gone).
workflow_cache = sa.Table(
    "workflow_cache",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(256), nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("outputs_json", sa.JSON, nullable=False),  # {"return": {"path", "digest", "size"}}
    sa.Column("created_at", MS, nullable=False),
    sa.Column("hits", sa.Integer, nullable=False, default=0),
    sa.Index("ix_workflow_cache_run", "run_id"),
)

# A schedule (kind "cron": spec {"cron": "*/5 * * * *"}) or an event subscription
# (kind "event": spec {"event": "registry.version_created", "match": {...}, "every": N}).
workflow_triggers = sa.Table(
    "workflow_triggers",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("workflow", sa.String(512), nullable=False),  # "module:attr" or a YAML file
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec_json", sa.JSON, nullable=False),
    sa.Column("params_json", sa.JSON, nullable=False),
    sa.Column("executor", sa.String(32), nullable=False, default="inline"),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("next_at", MS, nullable=True),  # cron: the next firing time
    sa.Column("pending", sa.Integer, nullable=False, default=0),  # events counted toward "every"
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
)

# The inbox: one row per (trigger, event); ``key`` is the idempotency key, so an event
# delivered twice is recorded once and acted on once.
workflow_events = sa.Table(
    "workflow_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("event", sa.String(128), nullable=False),
    sa.Column(
        "trigger_id", ID, sa.ForeignKey("workflow_triggers.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("payload_json", sa.JSON, nullable=False),
    sa.Column(
        "status", sa.String(16), nullable=False
    ),  # pending | running | done | failed | counted
    sa.Column("run_id", ID, nullable=True),  # the workflow run it started
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Index("ix_workflow_events_status", "status", "id"),
)

# Cursors of the event sources the dispatcher polls (the registry's change log, dataset
# versions, feedback): the newest time already turned into inbox rows. The row "lease" is
# the dispatchers' lease: ``owner`` holds it until ``position`` (ms), renewed while alive.
workflow_cursors = sa.Table(
    "workflow_cursors",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("updated_at", MS, nullable=False),
)
