"""Background export of finished spans, batched like the SDK's metric buffer.

``add`` appends to an in-memory list and returns: instrumented code never
waits on storage. A daemon thread writes batches every ``interval_s`` seconds
or as soon as ``max_batch`` spans wait; ``flush`` writes everything now and
returns once it is stored. A failed write keeps its spans for the next try
(re-sending is safe: spans already stored are skipped) and the next ``flush``
raises ``FlushError``. Past ``max_pending`` waiting spans new ones are dropped
and counted, and ``flush`` says so, rather than growing without bound while
the store is unreachable. At interpreter exit a last flush runs; spans it
cannot write go to a JSONL file under the home folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.core import BackgroundFlusher
from opsloop.errors import FlushError, InvalidArgument

SpanDict = dict[str, Any]
WriteFn = Callable[[list[SpanDict]], object]


class SpanExporter(BackgroundFlusher):
    thread_name = "opsloop-span-export"
    spill_prefix = "spans"
    what = "spans"

    def __init__(
        self,
        write: WriteFn,
        *,
        interval_s: float = 2.0,
        max_batch: int = 5_000,
        max_pending: int = 200_000,
        spill_dir: Path | None = None,
    ) -> None:
        super().__init__(interval_s=interval_s, spill_dir=spill_dir)
        self._write = write
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: list[SpanDict] = []
        self._retry: list[SpanDict] = []
        self._inflight = 0
        self._dropped = 0
        self.exported = 0

    def add(self, span: SpanDict) -> None:
        """Queue a finished span (never blocks on I/O)."""
        with self._lock:
            if len(self._pending) + len(self._retry) + self._inflight >= self.max_pending:
                self._dropped += 1
                return
            self._pending.append(span)
            if self._thread is None and not self._closed:
                self._start()
            if len(self._pending) >= self.max_batch:
                self._wake.notify()

    @property
    def pending(self) -> int:
        """Spans not yet confirmed stored."""
        with self._lock:
            return len(self._pending) + len(self._retry) + self._inflight

    def flush(self) -> int:
        """Write every waiting span now; return how many were written.

        Raises ``FlushError`` if some could not be written (they stay queued)
        or if spans were dropped since the last ``flush`` (too many waiting, or
        refused by the store).
        """
        return self._flush(report=True)

    def _flush(self, *, report: bool) -> int:
        # The background thread flushes with report=False: drops stay counted
        # until a caller's flush() can tell them.
        with self._flush_lock:
            with self._lock:
                batch = self._retry + self._pending
                self._retry, self._pending = [], []
                self._inflight = len(batch)
                dropped = 0
                if report:
                    dropped, self._dropped = self._dropped, 0
            written = 0
            failed: list[SpanDict] = []
            first_error: BaseException | None = None
            for i in range(0, len(batch), self.max_batch):
                part = batch[i : i + self.max_batch]
                if first_error is not None and not isinstance(first_error, InvalidArgument):
                    failed.extend(part)  # the store is unreachable: keep the rest for later
                    continue
                try:
                    self._write(part)
                    written += len(part)
                except BaseException as exc:
                    first_error = first_error or exc
                    if isinstance(exc, InvalidArgument):
                        # Spans the store refuses will never be accepted: drop, but say so.
                        if report:
                            dropped += len(part)
                        else:
                            with self._lock:
                                self._dropped += len(part)
                    else:
                        failed.extend(part)
                with self._lock:
                    self._inflight -= len(part)
            with self._lock:
                self._inflight = 0
                if failed:
                    self._retry = failed + self._retry
                self.exported += written
            if failed or dropped:
                raise FlushError(
                    f"{len(failed)} spans could not be written and are kept for the next flush; "
                    f"{dropped} were dropped: {first_error or 'too many spans were waiting'}",
                    details={"pending_spans": len(failed), "dropped_spans": dropped},
                ) from first_error
            return written

    # -- background thread (``BackgroundFlusher``) --------------------------------------

    def _has_work(self) -> bool:
        return bool(self._pending or self._retry)

    def _full(self) -> bool:
        return len(self._pending) >= self.max_batch

    def _flush_in_background(self) -> None:
        self._flush(report=False)

    def _take_all(self) -> list[dict[str, Any]]:
        spans = self._retry + self._pending
        self._retry, self._pending = [], []
        return spans
