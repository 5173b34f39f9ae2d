"""Monitoring tables: the prediction log, late labels, per-minute rollups, monitors and alerts.

``monitoring_predictions`` holds one row per logged input row of a predict
request (sampled; PII masked before it is written). ``monitoring_labels``
holds the ground truth that arrives later, keyed like the prediction it
labels (request id, row), so a label may arrive before or after its
prediction row and they join at query time. ``monitoring_rollups`` counts
every request (never sampled) per minute, deployment, model version and
route, with a fixed latency histogram (``b0``..``b12``, upper bounds in
``LATENCY_BUCKETS_MS``), so a day of traffic is 1,440 rows per series and
percentiles come from the histogram. ``monitors`` are the scheduled checks;
``monitoring_alerts`` their alerts (one open alert per monitor at a time).
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

MS = sa.BigInteger

#: Upper bounds (ms) of the rollups' latency buckets; the last bucket is everything above.
LATENCY_BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
BUCKET_COLUMNS: tuple[str, ...] = tuple(f"b{i}" for i in range(len(LATENCY_BUCKETS_MS) + 1))
COUNTER_COLUMNS: tuple[str, ...] = (
    "requests",
    "errors",
    "rows",
    "latency_sum_ms",
    "tokens",
    "cost",
    *BUCKET_COLUMNS,
)

predictions_t = sa.Table(
    "monitoring_predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row_index", sa.Integer, nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON object (masked)
    sa.Column("output", sa.Text, nullable=True),  # JSON value (masked)
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("ts", MS, nullable=False),
    sa.UniqueConstraint("request_id", "row_index", name="uq_monitoring_predictions_row"),
    sa.Index("ix_monitoring_predictions_dep_ts", "deployment", "ts"),
)

labels_t = sa.Table(
    "monitoring_labels",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("row_index", sa.Integer, primary_key=True),
    sa.Column("label", sa.Text, nullable=False),  # JSON value
    sa.Column("created_at", MS, nullable=False),
)

rollups_t = sa.Table(
    "monitoring_rollups",
    metadata,
    sa.Column("minute", MS, primary_key=True),  # start of the minute, ms
    sa.Column("deployment", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("route", sa.String(64), primary_key=True),
    *(
        sa.Column(
            c,
            sa.Float if c in ("latency_sum_ms", "cost") else sa.BigInteger,
            nullable=False,
            default=0,
        )
        for c in COUNTER_COLUMNS
    ),
    sa.Index("ix_monitoring_rollups_dep_minute", "deployment", "minute"),
)

monitors_t = sa.Table(
    "monitors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # metric | drift
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: metric/op/threshold or reference
    sa.Column("interval_s", sa.Integer, nullable=False),
    sa.Column("window_s", sa.Integer, nullable=False),
    sa.Column("cooldown_s", sa.Integer, nullable=False),
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("webhook_secret", sa.Text, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("last_window_end", MS, nullable=True),
    sa.Column("created_at", MS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

alerts_t = sa.Table(
    "monitoring_alerts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("monitor", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # JSON
    sa.Column("window_end", MS, nullable=False),
    sa.Column("opened_at", MS, nullable=False),
    sa.Column("updated_at", MS, nullable=False),
    sa.Column("notified_at", MS, nullable=True),
    sa.Column("resolved_at", MS, nullable=True),
    sa.Column("notifications", sa.Integer, nullable=False, default=0),
    sa.Index("ix_monitoring_alerts_monitor", "monitor", "state"),
    sa.Index("ix_monitoring_alerts_opened", "opened_at"),
)
