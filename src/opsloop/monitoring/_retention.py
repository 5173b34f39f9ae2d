"""Retention of the prediction log: the monitoring room's ``governance.retention.*`` hooks.

Called by name by the governance room's retention run, one bounded batch at a
time (see ``opsloop.tracing._retention``):

- ``governance.retention.predictions``: :func:`purge_predictions` deletes logged
  prediction rows, and late labels, recorded before the cut-off (the per-minute
  rollups, counts without request data, stay);
- ``governance.retention.bodies``: :func:`empty_prediction_bodies` empties the
  logged inputs and outputs of older rows, keeping their latency and status.
"""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.monitoring._tables import labels_t, predictions_t
from opsloop.store import Database, delete_batch, update_batch

__all__ = ["empty_prediction_bodies", "purge_predictions"]

EMPTY = "{}"


def purge_predictions(db: Database, before_ms: int, batch: int) -> int:
    """Delete at most ``batch`` prediction rows, then labels, older than ``before_ms``."""
    n = delete_batch(db, predictions_t, predictions_t.c.ts < before_ms, batch)
    if n < batch:
        n += delete_batch(db, labels_t, labels_t.c.created_at < before_ms, batch - n)
    return n


def empty_prediction_bodies(db: Database, before_ms: int, batch: int) -> int:
    """Empty the inputs and output of at most ``batch`` rows logged before ``before_ms``."""
    p = predictions_t
    where = sa.and_(p.c.ts < before_ms, sa.or_(p.c.inputs != EMPTY, p.c.output.is_not(None)))
    return update_batch(db, p, where, {"inputs": EMPTY, "output": None}, batch)
