"""Retention of traces: the tracing room's ``governance.retention.*`` hooks.

The governance room's retention run (``opsloop.governance._retention``) calls
these by name, one bounded batch at a time, until a call returns fewer rows
than ``batch``:

- ``governance.retention.traces``: :func:`purge_traces` deletes whole traces
  (their spans and per-model rows with them) that started before the cut-off;
- ``governance.retention.bodies``: :func:`empty_span_bodies` empties the
  inputs and outputs (prompts, completions, tool arguments) of spans that
  started before the cut-off, keeping the spans' timings, tokens and costs.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import Database, update_batch
from opsloop.tracing._service import TraceService
from opsloop.tracing._tables import spans, traces

__all__ = ["empty_span_bodies", "purge_traces"]


def purge_traces(db: Database, before_ms: int, batch: int) -> int:
    """Delete at most ``batch`` traces that started before ``before_ms``, oldest first."""
    with db.write() as conn:
        ids = list(
            conn.execute(
                sa.select(traces.c.id)
                .where(traces.c.start_us < before_ms * 1000)
                .order_by(traces.c.start_us)
                .limit(batch)
            ).scalars()
        )
        if ids:
            TraceService.delete_rows(conn, ids)
    return len(ids)


def empty_span_bodies(db: Database, before_ms: int, batch: int) -> int:
    """Empty the inputs and outputs of at most ``batch`` spans started before ``before_ms``."""
    where = sa.and_(
        spans.c.start_us < before_ms * 1000,
        sa.or_(spans.c.inputs.is_not(None), spans.c.outputs.is_not(None)),
    )
    return update_batch(db, spans, where, {"inputs": None, "outputs": None}, batch)
