"""Fine-tuning jobs: one row per job, tying the job's explicit state to its tracking run.

A job *is* a run (``run_id``: its params, loss curves, throughput and cost
live there, like every run's); this table adds what a run has no place for:
the state machine (``validating`` -> ``queued`` -> ``running`` ->
``succeeded`` | ``failed`` | ``cancelled``), changed by conditional updates so
a cancel and a worker's finish cannot both win, the worker that holds it
(``host``, ``pid``, ``heartbeat_at``), its last checkpoint and the version
it registered.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

finetune_jobs = sa.Table(
    "finetune_jobs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),  # sft | dpo
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),  # the JobSpec, base model and dataset pinned
    sa.Column("output_model", sa.String(256), nullable=False),
    sa.Column("result_version", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("host", sa.String(256), nullable=False, default=""),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("step", sa.Integer, nullable=False, default=0),
    sa.Column("max_steps", sa.Integer, nullable=False),
    sa.Column("checkpoint_step", sa.Integer, nullable=True),
    sa.Column("resumed_from_step", sa.Integer, nullable=True),
    sa.Column("elapsed_s", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("started_at", MS, nullable=True),
    sa.Column("ended_at", MS, nullable=True),
    sa.Column("heartbeat_at", MS, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
    sa.Index("ix_finetune_jobs_created_at", "created_at"),
    sa.Index("ix_finetune_jobs_state", "state"),
)
