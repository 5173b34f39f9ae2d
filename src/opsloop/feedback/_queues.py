"""Annotation queues: a rule fills a queue with traces; annotators claim, lock, finish items.

A queue's rule is a trace filter (``score.thumbs = "false"``, ``score.helpful.llm_judge
< 3``, anything ``opsloop traces list --filter`` takes) and a sampling ratio: ``fill``
adds the matching traces not yet queued whose hash falls under the ratio (a given
trace is in or out of the sample the same way every time). ``claim`` gives an
annotator the item they already hold, else the oldest pending item assigned to them
or to nobody that is not locked by someone else (an expired lock no longer counts),
and locks it to them for ``lock_ttl_s`` seconds. ``complete`` and ``skip`` need the
lock (or no live lock of anyone else). One transaction per call; a claim is one
conditional ``UPDATE``, so two annotators never get the same item.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from opsloop.feedback._names import check_score_name
from opsloop.feedback._tables import annotation_queues, queue_items
from opsloop.feedback.entities import AnnotationQueue, AnnotatorProgress, QueueItem, QueueProgress
from opsloop.store import Database, now_ms
from opsloop.tracing import TraceService

__all__ = ["QueueOps"]

Q = annotation_queues.c
I = queue_items.c  # noqa: E741
MAX_FILL = 100_000


def _queue_of(row: Any) -> AnnotationQueue:
    return AnnotationQueue(
        name=row.name,
        filter=row.filter,
        sample_ratio=row.sample_ratio,
        scores=orjson.loads(row.scores),
        lock_ttl_s=row.lock_ttl_s,
        description=row.description or "",
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _item_of(row: Any) -> QueueItem:
    return QueueItem.model_validate(row._asdict())


def in_sample(queue: str, trace_id: str, ratio: float) -> bool:
    """Whether ``trace_id`` is in ``queue``'s sample (stable: the same answer every time)."""
    if ratio >= 1:
        return True
    h = hashlib.sha256(f"{queue}\x00{trace_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < ratio


class QueueOps:
    """The queue operations of ``FeedbackService`` (mixed in; ``self.db`` is its database)."""

    db: Database
    _definition: Any

    def create_queue(
        self,
        name: str,
        *,
        filter: str,
        scores: Iterable[str],
        sample_ratio: float = 1.0,
        lock_ttl_s: int = 600,
        description: str = "",
        author: str,
    ) -> AnnotationQueue:
        """A queue filled by ``filter`` (sampled at ``sample_ratio``) asking for ``scores``."""
        check_score_name(name)
        if not isinstance(filter, str) or not filter.strip():
            raise InvalidArgument(
                "a queue needs a trace filter (its rule)", details={"field": "filter"}
            )
        names = list(scores)
        if not names:
            raise InvalidArgument(
                "a queue asks for at least one score", details={"field": "scores"}
            )
        if (
            isinstance(sample_ratio, bool)
            or not isinstance(sample_ratio, int | float)
            or not 0 < sample_ratio <= 1
        ):
            raise InvalidArgument(
                "sample_ratio must be in (0, 1]", details={"field": "sample_ratio"}
            )
        if (
            isinstance(lock_ttl_s, bool)
            or not isinstance(lock_ttl_s, int)
            or not 1 <= lock_ttl_s <= 86_400
        ):
            raise InvalidArgument(
                "lock_ttl_s must be from 1 to 86400 seconds", details={"field": "lock_ttl_s"}
            )
        # The filter must parse (an error names the position) before anything is stored.
        TraceService(self.db).list_traces(filter=filter, limit=1)
        with self.db.write() as conn:
            for s in names:
                self._definition(conn, check_score_name(s))
            if conn.execute(sa.select(Q.name).where(Q.name == name)).first() is not None:
                raise AlreadyExists(f"queue {name!r} exists")
            conn.execute(
                annotation_queues.insert().values(
                    name=name,
                    filter=filter,
                    sample_ratio=float(sample_ratio),
                    scores=orjson.dumps(names).decode(),
                    lock_ttl_s=lock_ttl_s,
                    description=description,
                    created_at=now_ms(),
                    created_by=author,
                )
            )
        return self.get_queue(name)

    def get_queue(self, name: str) -> AnnotationQueue:
        with self.db.read() as conn:
            row = conn.execute(sa.select(annotation_queues).where(Q.name == name)).first()
        if row is None:
            raise NotFound(f"queue {name!r} not found")
        return _queue_of(row)

    def list_queues(self) -> list[AnnotationQueue]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(annotation_queues).order_by(Q.name)).all()
        return [_queue_of(r) for r in rows]

    def delete_queue(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute(queue_items.delete().where(I.queue == name))
            if not conn.execute(annotation_queues.delete().where(Q.name == name)).rowcount:
                raise NotFound(f"queue {name!r} not found")

    def fill_queue(self, name: str, *, limit: int = 10_000) -> int:
        """Add the traces the queue's rule picks that it does not hold yet; returns how many."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FILL:
            raise InvalidArgument(f"limit must be from 1 to {MAX_FILL}")
        q = self.get_queue(name)
        traces = TraceService(self.db)
        picked: list[str] = []
        token: str | None = None
        seen = 0
        while seen < limit:
            page = traces.list_traces(
                filter=q.filter, limit=min(500, limit - seen), page_token=token
            )
            seen += len(page.traces)
            picked += [t.id for t in page.traces if in_sample(name, t.id, q.sample_ratio)]
            token = page.next_page_token
            if not token or not page.traces:
                break
        now = now_ms()
        with self.db.write() as conn:
            have = (
                {
                    r.trace_id
                    for r in conn.execute(
                        sa.select(I.trace_id).where(I.queue == name, I.trace_id.in_(picked))
                    )
                }
                if picked
                else set()
            )
            new = [t for t in dict.fromkeys(picked) if t not in have]
            if new:
                try:
                    conn.execute(
                        queue_items.insert(),
                        [
                            {"queue": name, "trace_id": t, "status": "pending", "added_at": now + i}
                            for i, t in enumerate(new)
                        ],
                    )
                except sa.exc.IntegrityError:
                    raise Conflict(
                        f"queue {name!r} was filled concurrently; fill it again"
                    ) from None
        return len(new)

    def assign(self, name: str, trace_ids: Iterable[str], assignee: str | None) -> int:
        """Assign items to an annotator (None: to anyone); returns how many changed."""
        ids = list(trace_ids)
        with self.db.write() as conn:
            self._queue_row(conn, name)
            return int(
                conn.execute(
                    queue_items.update()
                    .where(I.queue == name, I.trace_id.in_(ids))
                    .values(assignee=assignee)
                ).rowcount
            )

    @staticmethod
    def _queue_row(conn: Any, name: str) -> Any:
        row = conn.execute(sa.select(annotation_queues).where(Q.name == name)).first()
        if row is None:
            raise NotFound(f"queue {name!r} not found")
        return row

    def claim(self, name: str, annotator: str) -> QueueItem | None:
        """The annotator's next item, locked to them; None when nothing is left for them."""
        now = now_ms()
        with self.db.write() as conn:
            q = self._queue_row(conn, name)
            held = conn.execute(
                sa.select(queue_items).where(
                    I.queue == name,
                    I.status == "pending",
                    I.locked_by == annotator,
                    I.lock_expires_at > now,
                )
            ).first()
            if held is not None:
                return _item_of(held)
            free = sa.or_(I.locked_by.is_(None), I.lock_expires_at <= now)
            mine = sa.or_(I.assignee.is_(None), I.assignee == annotator)
            for _ in range(20):  # another claimer may win a row between the read and the update
                row = conn.execute(
                    sa.select(I.trace_id)
                    .where(I.queue == name, I.status == "pending", free, mine)
                    .order_by(I.assignee.is_(None), I.added_at, I.trace_id)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                n = conn.execute(
                    queue_items.update()
                    .where(I.queue == name, I.trace_id == row.trace_id, I.status == "pending", free)
                    .values(locked_by=annotator, lock_expires_at=now + 1000 * q.lock_ttl_s)
                ).rowcount
                if n:
                    got = conn.execute(
                        sa.select(queue_items).where(I.queue == name, I.trace_id == row.trace_id)
                    ).one()
                    return _item_of(got)
        raise Conflict("could not claim an item (too much contention); try again")

    def _finish(self, name: str, trace_id: str, annotator: str, status: str) -> QueueItem:
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(queue_items).where(I.queue == name, I.trace_id == trace_id)
            ).first()
            if row is None:
                raise NotFound(f"trace {trace_id!r} is not in queue {name!r}")
            if row.status != "pending":
                raise Conflict(f"the item is {row.status} already", details={"status": row.status})
            if row.locked_by not in (None, annotator) and (row.lock_expires_at or 0) > now:
                raise Conflict(
                    f"the item is locked by {row.locked_by!r}", details={"locked_by": row.locked_by}
                )
            conn.execute(
                queue_items.update()
                .where(I.queue == name, I.trace_id == trace_id)
                .values(
                    status=status,
                    completed_by=annotator,
                    completed_at=now,
                    locked_by=None,
                    lock_expires_at=None,
                )
            )
            got = conn.execute(
                sa.select(queue_items).where(I.queue == name, I.trace_id == trace_id)
            ).one()
        return _item_of(got)

    def complete_item(self, name: str, trace_id: str, annotator: str) -> QueueItem:
        """Mark the annotator's item done (their scores are ordinary annotations)."""
        return self._finish(name, trace_id, annotator, "done")

    def skip_item(self, name: str, trace_id: str, annotator: str) -> QueueItem:
        return self._finish(name, trace_id, annotator, "skipped")

    def queue_items(
        self, name: str, *, status: str | None = None, limit: int = 1000
    ) -> list[QueueItem]:
        q = sa.select(queue_items).where(I.queue == name)
        if status is not None:
            q = q.where(I.status == status)
        with self.db.read() as conn:
            self._queue_row(conn, name)
            rows = conn.execute(
                q.order_by(I.added_at, I.trace_id).limit(max(1, min(limit, 100_000)))
            ).all()
        return [_item_of(r) for r in rows]

    def queue_progress(self, name: str) -> QueueProgress:
        now = now_ms()
        with self.db.read() as conn:
            self._queue_row(conn, name)
            rows = conn.execute(
                sa.select(I.status, I.locked_by, I.lock_expires_at, I.completed_by).where(
                    I.queue == name
                )
            ).all()
        counts = {"pending": 0, "done": 0, "skipped": 0}
        per: dict[str, dict[str, int]] = defaultdict(lambda: {"done": 0, "skipped": 0, "locked": 0})
        locked = 0
        for r in rows:
            counts[r.status] += 1
            if r.status in ("done", "skipped") and r.completed_by:
                per[r.completed_by][r.status] += 1
            elif r.status == "pending" and r.locked_by and (r.lock_expires_at or 0) > now:
                locked += 1
                per[r.locked_by]["locked"] += 1
        return QueueProgress(
            queue=name,
            total=len(rows),
            pending=counts["pending"],
            locked=locked,
            done=counts["done"],
            skipped=counts["skipped"],
            annotators=[AnnotatorProgress(annotator=a, **v) for a, v in sorted(per.items())],
        )
