"""``upsert``: insert rows, or update the named columns where the key exists (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

__all__ = ["upsert"]

_UPSERTS: dict[tuple[str, sa.Table, tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows`` into ``table``; a row whose ``keys`` exist updates its ``update`` columns."""
    if not rows:
        return
    # Built once per dialect and shape: building one (its ``excluded`` alias
    # copies the table's columns) costs more than running it.
    cache_key = (conn.dialect.name, table, tuple(keys), tuple(update))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        pg = conn.dialect.name == "postgresql"
        ins: Any = pg_insert(table) if pg else sqlite_insert(table)
        stmt = _UPSERTS[cache_key] = ins.on_conflict_do_update(
            index_elements=list(keys), set_={c: ins.excluded[c] for c in update}
        )
    conn.execute(stmt, rows)
