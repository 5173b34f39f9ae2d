"""Tracing tables: traces, spans, per-trace model usage, and the editable price table.

``traces`` holds one row per trace with everything list and filter queries
need (name, status, user, session, token and cost totals, start time), so
listing and filtering never touch ``spans``. Spans arrive in pieces (an OTel
exporter sends children before their parent), so a trace row is merged with
SQL on every batch rather than rewritten: starts take the minimum, counters
add up, the root span names the trace when it arrives.

``trace_models`` is the one-to-many "models used by a trace" side of that
denormalisation: filtering traces by model walks its ``(model, start_us)``
index instead of scanning spans.

Times are epoch microseconds: precise enough for a waterfall, and (unlike
nanoseconds) still exact as a JavaScript number.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import metadata

TRACE_ID = sa.String(32)
SPAN_ID = sa.String(16)
US = sa.BigInteger

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("id", TRACE_ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("root_span_id", SPAN_ID, nullable=True),
    sa.Column("start_us", US, nullable=False),
    sa.Column("end_us", US, nullable=False),
    sa.Column("duration_us", US, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("span_count", sa.Integer, nullable=False),
    sa.Column("error_count", sa.Integer, nullable=False),
    sa.Column("user_id", sa.String(256), nullable=True),
    sa.Column("session_id", sa.String(256), nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("total_cost", sa.Float, nullable=False),
    sa.Column("tags", sa.Text, nullable=True),  # JSON list of strings
    sa.Column("service_name", sa.String(256), nullable=True),
    sa.Column("experiment_id", sa.String(64), nullable=True),
    sa.Column("deployment_id", sa.String(64), nullable=True),
    # Every list query is "filter, newest first, keyset on (start_us, id)":
    # each index below ends with those two so the page comes off the index in order.
    sa.Index("ix_traces_start", "start_us", "id"),
    sa.Index("ix_traces_user_start", "user_id", "start_us", "id"),
    sa.Index("ix_traces_session_start", "session_id", "start_us", "id"),
    sa.Index("ix_traces_status_start", "status", "start_us", "id"),
    sa.Index("ix_traces_name_start", "name", "start_us", "id"),
    sa.Index("ix_traces_deployment_start", "deployment_id", "start_us", "id"),
    sa.Index("ix_traces_experiment_start", "experiment_id", "start_us", "id"),
    # Latency and cost bounds: used when few traces pass them (see _query._range_index_pays).
    sa.Index("ix_traces_duration", "duration_us", "start_us", "id"),
    sa.Index("ix_traces_cost", "total_cost", "start_us", "id"),
)

spans = sa.Table(
    "spans",
    metadata,
    sa.Column(
        "trace_id", TRACE_ID, sa.ForeignKey("traces.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("span_id", SPAN_ID, primary_key=True),
    sa.Column("parent_span_id", SPAN_ID, nullable=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("start_us", US, nullable=False),
    sa.Column("end_us", US, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("status_message", sa.Text, nullable=True),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=True),
    sa.Column("output_tokens", sa.Integer, nullable=True),
    sa.Column("cost", sa.Float, nullable=True),
    # JSON text (already masked and size-limited when written).
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("inputs", sa.Text, nullable=True),
    sa.Column("outputs", sa.Text, nullable=True),
    sa.Column("events", sa.Text, nullable=True),
)

trace_models = sa.Table(
    "trace_models",
    metadata,
    sa.Column(
        "trace_id", TRACE_ID, sa.ForeignKey("traces.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("model", sa.String(256), primary_key=True),
    sa.Column("start_us", US, nullable=False),  # the trace's start, kept equal to traces.start_us
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    # Each call's duration in µs, comma-separated: per-model latency percentiles
    # read these short strings instead of the spans' rows.
    sa.Column("latencies_us", sa.Text, nullable=False),
    sa.Index("ix_trace_models_model_start", "model", "start_us", "trace_id"),
)

model_prices = sa.Table(
    "model_prices",
    metadata,
    sa.Column("model", sa.String(256), primary_key=True),
    # US dollars per million tokens.
    sa.Column("input_per_mtok", sa.Float, nullable=False),
    sa.Column("output_per_mtok", sa.Float, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
