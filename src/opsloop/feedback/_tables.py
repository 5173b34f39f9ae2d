"""Feedback tables: score definitions, annotations, and the export lineage.

``score_definitions`` declares each score once (its kind, categories or
bounds). ``annotations`` holds one row per (target, score name, author): a
second annotation by the same author replaces the first, other authors' stay.
The target is a trace, a span (``trace_id`` and ``span_id``), a session or a
served prediction (the response id a model server answered with);
``target_id`` is the one string naming it, so the natural key is one unique
index. ``key`` is the client's upsert key: a retry with the same key updates
the same row. Values are stored twice where that helps filtering:
``value_num`` (numbers; booleans as 1/0) and ``value_text`` (categories, text,
``true``/``false``).

``feedback_exports`` links a dataset version made from feedback to every
trace and annotation that went into it.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

ID = sa.String(32)
MS = sa.BigInteger

score_definitions = sa.Table(
    "score_definitions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # boolean | categorical | numeric | text
    sa.Column("categories", sa.Text, nullable=True),  # JSON list (categorical)
    sa.Column("min_value", sa.Float, nullable=True),
    sa.Column("max_value", sa.Float, nullable=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("updated_at", MS, nullable=False),
)

annotations_t = sa.Table(
    "annotations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("key", sa.String(256), nullable=True, unique=True),
    sa.Column("target_kind", sa.String(16), nullable=False),  # trace|span|session|prediction
    sa.Column("target_id", sa.String(300), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("span_id", sa.String(16), nullable=True),
    sa.Column("session_id", sa.String(256), nullable=True),
    sa.Column("prediction_id", sa.String(128), nullable=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value_num", sa.Float, nullable=True),
    sa.Column("value_text", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("correction", sa.Text, nullable=True),
    sa.Column("response_a", sa.Text, nullable=True),  # preference: the two responses
    sa.Column("response_b", sa.Text, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),  # human | llm_judge | code
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("meta", sa.Text, nullable=True),  # JSON object
    sa.Column("created_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.UniqueConstraint("target_kind", "target_id", "name", "author", name="uq_annotations_one"),
    # The trace filter's EXISTS (score.NAME op value) walks this index.
    sa.Index("ix_annotations_trace_name", "trace_id", "name", "value_num"),
    sa.Index("ix_annotations_name_target", "name", "target_kind", "target_id"),
    sa.Index("ix_annotations_session", "session_id"),
    sa.Index("ix_annotations_prediction", "prediction_id"),
)

feedback_exports = sa.Table(
    "feedback_exports",
    metadata,
    sa.Column("dataset_version_id", ID, primary_key=True),
    sa.Column("annotation_id", ID, primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("export_kind", sa.String(16), nullable=False),  # sft | preference
    sa.Column("created_at", MS, nullable=False),
    sa.Index("ix_feedback_exports_annotation", "annotation_id"),
    sa.Index("ix_feedback_exports_trace", "trace_id"),
)

annotation_queues = sa.Table(
    "annotation_queues",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("filter", sa.Text, nullable=False),  # the trace filter that fills it
    sa.Column("sample_ratio", sa.Float, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),  # JSON list: the scores an annotator gives
    sa.Column("lock_ttl_s", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

queue_items = sa.Table(
    "queue_items",
    metadata,
    sa.Column(
        "queue",
        sa.String(64),
        sa.ForeignKey("annotation_queues.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("trace_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done | skipped
    sa.Column("assignee", sa.String(256), nullable=True),
    sa.Column("locked_by", sa.String(256), nullable=True),
    sa.Column("lock_expires_at", MS, nullable=True),
    sa.Column("completed_by", sa.String(256), nullable=True),
    sa.Column("completed_at", MS, nullable=True),
    sa.Column("added_at", MS, nullable=False),
    sa.Index("ix_queue_items_status", "queue", "status", "added_at"),
)
