"""Background batching of metric points.

``add`` only appends to an in-memory list, so a training loop never waits on
storage. A daemon thread writes the points every ``interval_s`` seconds or when
``max_points`` are waiting; ``flush`` writes everything now and returns only
once it is stored. A write that fails keeps its points (with the same batch id,
so a retry after a lost reply is not stored twice) and the next ``flush``
raises ``FlushError``: points are never dropped silently. At interpreter exit a
last flush runs; if it fails, the points go to a JSONL file under the home
folder and the path is printed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.core import BackgroundFlusher
from opsloop.errors import Conflict, FlushError, InvalidArgument, NotFound

Point = tuple[str, float, int, int]
WriteFn = Callable[[str, list[Point], str], object]  # (run_id, points, batch_id)


class MetricBuffer(BackgroundFlusher):
    thread_name = "opsloop-metric-flush"
    spill_prefix = "unflushed"
    what = "metric points"

    def __init__(
        self,
        write: WriteFn,
        *,
        interval_s: float = 2.0,
        max_points: int = 50_000,
        max_batch: int = 100_000,
        spill_dir: Path | None = None,
    ) -> None:
        super().__init__(interval_s=interval_s, spill_dir=spill_dir)
        self._write = write
        self.max_points = max_points
        self.max_batch = max_batch
        self._pending: dict[str, list[Point]] = {}
        self._count = 0
        # Batches whose write failed, kept with their id for an idempotent retry.
        self._retry: list[tuple[str, list[Point], str]] = []
        # Points a flush has taken and not yet confirmed (they still count as pending).
        self._inflight = 0

    # -- hot path ----------------------------------------------------------------

    def add(self, run_id: str, point: Point) -> None:
        with self._lock:
            lst = self._pending.get(run_id)
            if lst is None:
                lst = self._pending[run_id] = []
            lst.append(point)
            self._count += 1
            if self._thread is None:
                self._start()
            if self._count >= self.max_points:
                self._wake.notify()

    def extend(self, run_id: str, points: list[Point]) -> None:
        with self._lock:
            self._pending.setdefault(run_id, []).extend(points)
            self._count += len(points)
            if self._thread is None:
                self._start()
            if self._count >= self.max_points:
                self._wake.notify()

    @property
    def pending(self) -> int:
        """Points not yet confirmed stored."""
        with self._lock:
            return self._count + self._inflight + sum(len(p) for _, p, _ in self._retry)

    # -- flushing ------------------------------------------------------------------

    def flush(self, run_id: str | None = None) -> int:
        """Write every waiting point (of one run, or all); return how many were written.

        Raises ``FlushError`` when any point could not be written; those points
        stay buffered for the next flush.
        """
        with self._flush_lock:
            with self._lock:
                retry = [b for b in self._retry if run_id is None or b[0] == run_id]
                self._retry = [b for b in self._retry if not (run_id is None or b[0] == run_id)]
                if run_id is None:
                    taken, self._pending = self._pending, {}
                    self._count = 0
                else:
                    pts = self._pending.pop(run_id, [])
                    taken = {run_id: pts} if pts else {}
                    self._count -= len(pts)
                self._inflight = sum(len(p) for _, p, _ in retry) + sum(
                    len(p) for p in taken.values()
                )
            batches = list(retry)
            for rid, pts in taken.items():
                for i in range(0, len(pts), self.max_batch):
                    batches.append((rid, pts[i : i + self.max_batch], uuid.uuid4().hex))
            written = 0
            failed: list[tuple[str, list[Point], str]] = []
            first_error: BaseException | None = None
            stop = False
            for b in batches:
                if stop:
                    failed.append(b)
                    continue
                try:
                    self._write(b[0], b[1], b[2])
                    written += len(b[1])
                    with self._lock:
                        self._inflight -= len(b[1])
                except BaseException as exc:
                    first_error = first_error or exc
                    failed.append(b)
                    # A problem with one run (deleted, bad data) must not hold back the
                    # other runs' points; an unreachable store stops the whole flush.
                    stop = not isinstance(exc, (InvalidArgument, NotFound, Conflict))
            if failed:
                with self._lock:
                    self._retry = failed + self._retry
                    self._inflight = 0
                n = sum(len(p) for _, p, _ in failed)
                raise FlushError(
                    f"{n} metric points could not be written and are kept for the next flush: {first_error}",
                    details={"pending_points": n},
                ) from first_error
            return written

    # -- background thread (``BackgroundFlusher``) --------------------------------------

    def _has_work(self) -> bool:
        return self._count > 0 or bool(self._retry)

    def _flush_in_background(self) -> None:
        self.flush()

    def _take_all(self) -> list[dict[str, Any]]:
        batches = list(self._retry) + [(r, p, "") for r, p in self._pending.items() if p]
        self._retry, self._pending, self._count = [], {}, 0
        return [
            {"run_id": rid, "key": k, "value": v, "step": s, "timestamp": t}
            for rid, pts, _ in batches
            for k, v, s, t in pts
        ]
