"""Tuning tables: the study registry.

A study's trials and sampler state live in Optuna's own storage (its own
tables, in a separate SQLite file or PostgreSQL schema, see ``_storage``);
its results live in opsloop runs (a parent run per study, a child run per
trial). This table ties the three together by study name: which experiment
and parent run the study logs to, what it optimises, and where its Optuna
storage is, so a study resumed after a crash finds its parent run again and
the API can list studies without Optuna.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

tuning_studies = sa.Table(
    "tuning_studies",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column(
        "experiment_id", ID, sa.ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False
    ),
    # The study's parent run; purging that run leaves the study without one (a new one is made).
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("directions", sa.JSON, nullable=False),  # ["maximize", "minimize"]
    sa.Column("objectives", sa.JSON, nullable=False),  # ["f1", "train_seconds"]
    sa.Column("space_json", sa.JSON, nullable=False),  # the space of the latest session
    sa.Column("storage", sa.String(1024), nullable=False, default=""),  # password-free URL
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False, default=""),
    sa.Index("ix_tuning_studies_experiment", "experiment_id"),
)
