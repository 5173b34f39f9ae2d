"""The events opsloop's rooms already record, turned into workflow events.

The dispatcher polls each source for rows newer than its cursor (with a
minute of overlap, since rows can commit out of time order) and emits one
event per row under the idempotency key ``<source>:<row id>``: a row seen
twice is recorded once. The cursor moves in the same transaction as the
inbox rows, so a crash between the two loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.datasets.tables import dataset_versions, datasets
from opsloop.feedback.tables import annotations_t
from opsloop.registry.tables import registry_events
from opsloop.workflows._triggers import TriggerService

__all__ = ["SOURCES", "poll_sources"]

OVERLAP_MS = 60_000
BATCH = 1000

Event = tuple[str, str, dict[str, Any], int]  # (event, key, payload, time)


def _registry(conn: Connection, since: int) -> Iterator[Event]:
    rows = conn.execute(
        sa.select(registry_events)
        .where(
            registry_events.c.at >= since,
            registry_events.c.action.in_(("version_created", "alias_set")),
        )
        .order_by(registry_events.c.at, registry_events.c.id)
        .limit(BATCH)
    )
    for r in rows:
        detail = dict(r.detail_json or {})
        payload = {"model": r.model_name, "version": r.version, "actor": r.actor}
        if r.action == "alias_set":
            payload["alias"] = detail.get("alias")
            yield "registry.alias_moved", f"registry:{r.id}", payload, int(r.at)
        else:
            yield "registry.version_created", f"registry:{r.id}", payload, int(r.at)


def _datasets(conn: Connection, since: int) -> Iterator[Event]:
    rows = conn.execute(
        sa.select(
            dataset_versions.c.id,
            dataset_versions.c.version,
            dataset_versions.c.created_at,
            dataset_versions.c.row_count,
            datasets.c.name,
        )
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(dataset_versions.c.created_at >= since)
        .order_by(dataset_versions.c.created_at)
        .limit(BATCH)
    )
    for r in rows:
        payload = {"dataset": r.name, "version": r.version, "version_id": r.id, "rows": r.row_count}
        yield "datasets.version_created", f"datasets:{r.id}", payload, int(r.created_at)


def _feedback(conn: Connection, since: int) -> Iterator[Event]:
    rows = conn.execute(
        sa.select(
            annotations_t.c.id,
            annotations_t.c.name,
            annotations_t.c.source,
            annotations_t.c.created_at,
        )
        .where(annotations_t.c.created_at >= since)
        .order_by(annotations_t.c.created_at)
        .limit(BATCH)
    )
    for r in rows:
        payload = {"score": r.name, "source": r.source, "annotation_id": r.id}
        yield "feedback.created", f"feedback:{r.id}", payload, int(r.created_at)


SOURCES: dict[str, Callable[[Connection, int], Iterator[Event]]] = {
    "registry": _registry,
    "datasets": _datasets,
    "feedback": _feedback,
}


def poll_sources(svc: TriggerService) -> int:
    """One pass over every source; returns the number of inbox rows made."""
    made = 0
    for name, source in SOURCES.items():
        with svc.db.write() as conn:
            cursor = svc.cursor(conn, name)
            since = max(0, cursor - OVERLAP_MS) if cursor >= 0 else 0
            newest = cursor
            for event, key, payload, at in list(source(conn, since)):
                made += svc.emit_in(conn, event, key, payload, at)
                newest = max(newest, at)
            if newest != cursor:
                svc.set_cursor(conn, name, newest)
    return made
