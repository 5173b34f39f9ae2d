"""Triggers and the event inbox over the database.

``emit`` records an event for every enabled trigger it matches, under the
idempotency key ``<trigger id>:<event key>`` (unique), so an event delivered
twice is recorded, and acted on, once. A trigger with ``every: N`` counts
events (``status="counted"``) and makes every Nth one ``pending``. Schedules
put one ``pending`` row per firing time (key ``<trigger id>:cron:<ms>``).
``claim`` moves a pending row to ``running`` (one claimer wins);
``started`` records the run it started before the run goes on, so a
dispatcher killed mid-run resumes that run after a restart rather than
starting another.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, InvalidArgument, NotFound
from opsloop.store import Database, now_ms
from opsloop.workflows._cron import parse_cron
from opsloop.workflows._tables import workflow_cursors, workflow_events, workflow_triggers
from opsloop.workflows.entities import EventRecord, TriggerInfo

__all__ = ["EVENTS", "TriggerService"]

#: The events opsloop emits (the dispatcher polls the rooms for the first four);
#: any other dotted name can be emitted with ``Workflows.emit``.
EVENTS = (
    "datasets.version_created",
    "registry.version_created",
    "registry.alias_moved",
    "feedback.created",
    "monitoring.alert",
)
_NAME = re.compile(r"^[A-Za-z0-9_][\w\-.]{0,199}$")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def _trigger(row: Any) -> TriggerInfo:
    return TriggerInfo(
        id=row.id,
        name=row.name,
        workflow=row.workflow,
        kind=row.kind,
        spec=dict(row.spec_json),
        params=dict(row.params_json),
        executor=row.executor,
        enabled=bool(row.enabled),
        next_at=row.next_at,
        pending=row.pending,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(
        id=row.id,
        key=row.key,
        event=row.event,
        trigger_id=row.trigger_id,
        payload=dict(row.payload_json),
        status=row.status,
        run_id=row.run_id,
        error=row.error or "",
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _matches(match: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    return all(str(payload.get(k)) == str(v) for k, v in match.items())


class TriggerService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- triggers ------------------------------------------------------------------------
    def create(
        self,
        name: str,
        workflow: str,
        kind: str,
        spec: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        executor: str = "inline",
        user: str = "",
    ) -> TriggerInfo:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgument(f"trigger name {name!r}: letters, digits, '_', '-', '.'")
        if not isinstance(workflow, str) or not workflow or len(workflow) > 512:
            raise InvalidArgument("workflow: module:attr or a YAML file's path")
        spec = dict(spec)
        now = now_ms()
        next_at = None
        if kind == "cron":
            next_at = parse_cron(str(spec.get("cron", ""))).next_after(now)
            spec = {"cron": str(spec["cron"])}
        elif kind == "event":
            ev = spec.get("event")
            if not isinstance(ev, str) or not _EVENT.match(ev):
                raise InvalidArgument(f"event {ev!r}: a dotted name such as registry.alias_moved")
            every = spec.get("every", 1)
            if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= 1_000_000:
                raise InvalidArgument("every: a whole number from 1")
            match = spec.get("match") or {}
            if not isinstance(match, dict):
                raise InvalidArgument("match: an object of payload fields")
            spec = {"event": ev, "every": every, "match": match}
        else:
            raise InvalidArgument(f"kind {kind!r}: cron or event")
        row = {
            "id": uuid.uuid4().hex,
            "name": name,
            "workflow": workflow,
            "kind": kind,
            "spec_json": spec,
            "params_json": dict(params),
            "executor": executor,
            "enabled": True,
            "next_at": next_at,
            "pending": 0,
            "created_at": now,
            "created_by": user,
        }
        with self.db.write() as conn:
            if conn.execute(
                sa.select(workflow_triggers.c.id).where(workflow_triggers.c.name == name)
            ).first():
                raise AlreadyExists(f"trigger {name!r} exists")
            conn.execute(workflow_triggers.insert().values(**row))
        return self.get(name)

    def get(self, name: str) -> TriggerInfo:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(workflow_triggers).where(workflow_triggers.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"no trigger {name!r}")
        return _trigger(row)

    def all(self) -> list[TriggerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(workflow_triggers).order_by(workflow_triggers.c.name))
            return [_trigger(r) for r in rows]

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(
                workflow_triggers.delete().where(workflow_triggers.c.name == name)
            ).rowcount
        if not n:
            raise NotFound(f"no trigger {name!r}")

    # -- events --------------------------------------------------------------------------
    def _insert_event(
        self,
        conn: Connection,
        key: str,
        event: str,
        trigger_id: str | None,
        payload: Mapping[str, Any],
        status: str,
    ) -> bool:
        if conn.execute(
            sa.select(workflow_events.c.id).where(workflow_events.c.key == key)
        ).first():
            return False
        now = now_ms()
        conn.execute(
            workflow_events.insert().values(
                key=key,
                event=event,
                trigger_id=trigger_id,
                payload_json=dict(payload),
                status=status,
                run_id=None,
                error="",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        return True

    def emit_in(
        self,
        conn: Connection,
        event: str,
        key: str,
        payload: Mapping[str, Any],
        at: int | None = None,
    ) -> int:
        """Record ``event`` for every matching trigger inside ``conn``'s transaction
        (triggers made after the event happened, at ``at``, do not see it)."""
        n = 0
        at = now_ms() if at is None else at
        triggers = conn.execute(
            sa.select(workflow_triggers).where(
                workflow_triggers.c.kind == "event", workflow_triggers.c.enabled.is_(True)
            )
        ).all()
        for t in triggers:
            spec = dict(t.spec_json)
            if spec.get("event") != event or not _matches(spec.get("match") or {}, payload):
                continue
            if t.created_at > at:
                continue
            every = int(spec.get("every", 1))
            count = t.pending + 1
            status = "pending" if count >= every else "counted"
            if self._insert_event(conn, f"{t.id}:{key}", event, t.id, payload, status):
                n += 1
                conn.execute(
                    workflow_triggers.update()
                    .where(workflow_triggers.c.id == t.id)
                    .values(pending=0 if status == "pending" else count)
                )
        return n

    def emit(self, event: str, key: str, payload: Mapping[str, Any] | None = None) -> int:
        if not isinstance(event, str) or not _EVENT.match(event):
            raise InvalidArgument(f"event {event!r}: a dotted name such as monitoring.alert")
        if not isinstance(key, str) or not 1 <= len(key) <= 200:
            raise InvalidArgument("key: the event's idempotency key, 1-200 characters")
        with self.db.write() as conn:
            return self.emit_in(conn, event, key, dict(payload or {}))

    def active(self) -> bool:
        """Whether there is anything to do: an enabled trigger or a pending event."""
        with self.db.read() as conn:
            return bool(
                conn.execute(
                    sa.select(workflow_triggers.c.id)
                    .where(workflow_triggers.c.enabled.is_(True))
                    .limit(1)
                ).first()
                or conn.execute(
                    sa.select(workflow_events.c.id)
                    .where(workflow_events.c.status == "pending")
                    .limit(1)
                ).first()
            )

    def fire_schedules(self, now: int | None = None) -> int:
        """Turn every due schedule into a pending event (one per firing time, idempotent)."""
        now = now_ms() if now is None else now
        n = 0
        with self.db.write() as conn:
            due = conn.execute(
                sa.select(workflow_triggers).where(
                    workflow_triggers.c.kind == "cron",
                    workflow_triggers.c.enabled.is_(True),
                    workflow_triggers.c.next_at <= now,
                )
            ).all()
            for t in due:
                at = int(t.next_at)
                n += self._insert_event(
                    conn, f"{t.id}:cron:{at}", "schedule", t.id, {"at": at}, "pending"
                )
                conn.execute(
                    workflow_triggers.update()
                    .where(workflow_triggers.c.id == t.id)
                    .values(next_at=parse_cron(t.spec_json["cron"]).next_after(max(now, at)))
                )
        return n

    def recover(self) -> int:
        """At a dispatcher's start: events a dead dispatcher left running become pending again
        (keeping the run they started, which is then resumed, not started twice)."""
        with self.db.write() as conn:
            return conn.execute(
                workflow_events.update()
                .where(workflow_events.c.status == "running")
                .values(status="pending", updated_at=now_ms())
            ).rowcount

    def claim(self, limit: int = 10) -> list[tuple[EventRecord, TriggerInfo | None]]:
        """Take up to ``limit`` pending events (each claimed by one dispatcher)."""
        out = []
        with self.db.write() as conn:
            rows = conn.execute(
                sa.select(workflow_events)
                .where(workflow_events.c.status == "pending")
                .order_by(workflow_events.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for r in rows:
                conn.execute(
                    workflow_events.update()
                    .where(workflow_events.c.id == r.id)
                    .values(status="running", attempts=r.attempts + 1, updated_at=now_ms())
                )
                t = None
                if r.trigger_id:
                    tr = conn.execute(
                        sa.select(workflow_triggers).where(workflow_triggers.c.id == r.trigger_id)
                    ).first()
                    t = None if tr is None else _trigger(tr)
                out.append(
                    (
                        _event(r).model_copy(
                            update={"status": "running", "attempts": r.attempts + 1}
                        ),
                        t,
                    )
                )
        return out

    def started(self, event_id: int, run_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                workflow_events.update()
                .where(workflow_events.c.id == event_id)
                .values(run_id=run_id, updated_at=now_ms())
            )

    def finish(self, event_id: int, status: str, error: str = "") -> None:
        with self.db.write() as conn:
            conn.execute(
                workflow_events.update()
                .where(workflow_events.c.id == event_id)
                .values(status=status, error=error[:4000], updated_at=now_ms())
            )

    def events(
        self, *, trigger: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRecord]:
        q = sa.select(workflow_events).order_by(workflow_events.c.id.desc()).limit(limit)
        if status:
            q = q.where(workflow_events.c.status == status)
        with self.db.read() as conn:
            if trigger:
                t = conn.execute(
                    sa.select(workflow_triggers.c.id).where(workflow_triggers.c.name == trigger)
                ).first()
                if t is None:
                    raise NotFound(f"no trigger {trigger!r}")
                q = q.where(workflow_events.c.trigger_id == t.id)
            return [_event(r) for r in conn.execute(q)]

    # -- source cursors --------------------------------------------------------------------
    def cursor(self, conn: Connection, source: str) -> int:
        row = conn.execute(
            sa.select(workflow_cursors.c.position).where(workflow_cursors.c.source == source)
        ).first()
        return -1 if row is None else int(row.position)

    def set_cursor(self, conn: Connection, source: str, position: int) -> None:
        n = conn.execute(
            workflow_cursors.update()
            .where(workflow_cursors.c.source == source)
            .values(position=position, updated_at=now_ms())
        ).rowcount
        if not n:
            conn.execute(
                workflow_cursors.insert().values(
                    source=source, position=position, owner=None, updated_at=now_ms()
                )
            )

    # -- the dispatchers' lease --------------------------------------------------------------
    def lease(self, owner: str, ttl_ms: int) -> str:
        """Take or renew the one dispatcher lease: ``"new"`` (taken, the last holder is gone),
        ``"held"`` (renewed) or ``"other"`` (another live dispatcher holds it)."""
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(workflow_cursors).where(workflow_cursors.c.source == "lease")
            ).first()
            if row is not None and row.owner != owner and row.position > now:
                return "other"
            values = {"position": now + ttl_ms, "owner": owner, "updated_at": now}
            if row is None:
                conn.execute(workflow_cursors.insert().values(source="lease", **values))
            else:
                conn.execute(
                    workflow_cursors.update()
                    .where(workflow_cursors.c.source == "lease")
                    .values(**values)
                )
            return "held" if row is not None and row.owner == owner else "new"

    def release(self, owner: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                workflow_cursors.update()
                .where(workflow_cursors.c.source == "lease", workflow_cursors.c.owner == owner)
                .values(position=0, updated_at=now_ms())
            )
