"""Bounded batches: delete or update at most ``batch`` rows per transaction (retention).

Each call picks the keys of at most ``batch`` rows matching ``where`` and
changes exactly those, in one short write transaction, so a large clean-up
never holds the database's write lock for long: the caller calls again until
fewer than ``batch`` rows come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from opsloop.store._engine import Database

__all__ = ["delete_batch", "update_batch"]


def _picked(conn: sa.Connection, table: sa.Table, where: Any, batch: int) -> Any | None:
    keys = list(table.primary_key.columns)
    rows = conn.execute(sa.select(*keys).where(where).limit(batch)).all()
    if not rows:
        return None
    if len(keys) == 1:
        return keys[0].in_([r[0] for r in rows]), len(rows)
    return sa.tuple_(*keys).in_([tuple(r) for r in rows]), len(rows)


def delete_batch(db: Database, table: sa.Table, where: Any, batch: int) -> int:
    """Delete at most ``batch`` rows of ``table`` matching ``where``; how many were."""
    with db.write() as conn:
        picked = _picked(conn, table, where, batch)
        if picked is None:
            return 0
        conn.execute(table.delete().where(picked[0]))
        return int(picked[1])


def update_batch(
    db: Database, table: sa.Table, where: Any, values: Mapping[str, Any], batch: int
) -> int:
    """Set ``values`` on at most ``batch`` rows of ``table`` matching ``where``; how many."""
    with db.write() as conn:
        picked = _picked(conn, table, where, batch)
        if picked is None:
            return 0
        conn.execute(table.update().where(picked[0]).values(**values))
        return int(picked[1])
