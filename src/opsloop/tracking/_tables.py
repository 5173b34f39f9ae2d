"""Tracking tables: experiments, runs, params, tags, metrics and artifacts.

Metric points are stored in chunks: one row per flushed batch and key, holding
packed little-endian arrays of steps (int64), timestamps (int64 ms) and values
(float64). Logging 100k points is a handful of inserts, reading a history back
is a handful of blob reads, and a run holds millions of points without a
million-row index. ``latest_metrics`` keeps each key's latest value (highest
step, then newest timestamp) plus min/max/count, for search and run tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
KEY = sa.String(250)
MS = sa.BigInteger

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, default="active"),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id", ID, sa.ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "experiment_id", ID, sa.ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", MS, nullable=False),
    sa.Column("end_time", MS, nullable=True),
    sa.Column("parent_run_id", ID, sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("user", sa.String(256), nullable=False, default=""),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False, default="active"),
    sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    sa.Index("ix_runs_parent", "parent_run_id"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_run_tags_key_value", "key", "value"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    # The value as a number when it parses as one, so `params.lr < 0.01` compares numbers.
    sa.Column("value_num", sa.Float, nullable=True),
    sa.Index("ix_params_key_value", "key", "value"),
)

metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", KEY, nullable=False),
    # Client-chosen id of the flush this chunk came from: a retried flush is not stored twice.
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("min_step", sa.BigInteger, nullable=False),
    sa.Column("max_step", sa.BigInteger, nullable=False),
    sa.Column("min_ts", MS, nullable=False),
    sa.Column("max_ts", MS, nullable=False),
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("timestamps", sa.LargeBinary, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Index("ix_metric_chunks_run_key", "run_id", "key", "id"),
    sa.Index("ux_metric_chunks_batch", "run_id", "key", "batch_id", unique=True),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", MS, nullable=False),
    sa.Column("min_value", sa.Float, nullable=True),
    sa.Column("max_value", sa.Float, nullable=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    # "sha256:" + 64 hex; blob_ref: `opsloop gc` keeps the blobs named here (store/_gc.py)
    sa.Column("digest", sa.String(71), nullable=False, info={"blob_ref": True}),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(128), nullable=False),
    sa.Column("created_at", MS, nullable=False),
    sa.Index("ix_artifacts_digest", "digest"),
)
