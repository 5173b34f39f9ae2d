"""Dynamic micro-batching: concurrent small requests become one model call.

A request hands its rows to ``MicroBatcher.submit`` and awaits the answer.
One background task collects waiting requests until ``max_batch_size`` rows
are queued or ``max_wait_ms`` has passed since it started collecting, runs
the batch function once (in a worker thread, so the event loop keeps taking
requests meanwhile) and splits the outputs back, in order, to each request.

A model error on a merged batch is not blamed on every request in it: the
batcher retries each request of that batch alone, so only the requests that
fail by themselves get the error (bad input in one request never fails its
neighbours).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opsloop.errors import InvalidArgument, Unavailable

__all__ = ["BatchStats", "MicroBatcher"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class BatchStats:
    """Counters of what the batcher did; ``sizes`` maps batch size (rows) to how many batches had it."""

    requests: int = 0
    rows: int = 0
    batches: int = 0
    max_batch_rows: int = 0
    retried_batches: int = 0
    busy_s: float = 0.0
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, rows: int, seconds: float) -> None:
        self.batches += 1
        self.rows += rows
        self.busy_s += seconds
        self.max_batch_rows = max(self.max_batch_rows, rows)
        self.sizes[rows] = self.sizes.get(rows, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rows": self.rows,
            "batches": self.batches,
            "mean_batch_rows": round(self.rows / self.batches, 3) if self.batches else 0.0,
            "max_batch_rows": self.max_batch_rows,
            "retried_batches": self.retried_batches,
            "busy_s": round(self.busy_s, 3),
            "batch_rows_histogram": {str(k): v for k, v in sorted(self.sizes.items())},
        }


@dataclass
class _Pending(Generic[In, Out]):
    rows: list[In]
    future: asyncio.Future[list[Out]]


class MicroBatcher(Generic[In, Out]):
    """Merge concurrent ``submit`` calls into calls of ``fn`` on up to ``max_batch_size`` rows.

    ``fn`` takes a list of rows and must return one output per row, in order;
    it runs in a dedicated worker thread (one batch at a time: models are
    rarely safe to call concurrently, and one batch in flight while the next
    one gathers is what keeps the CPU busy). A single request larger than
    ``max_batch_size`` runs as a batch of its own.
    """

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        name: str = "batch",
    ) -> None:
        if max_batch_size < 1:
            raise InvalidArgument(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise InvalidArgument(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[In, Out] | None] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._carry: _Pending[In, Out] | None = None

    def start(self) -> None:
        """Start the collecting task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, rows: list[In]) -> list[Out]:
        """The outputs of ``fn`` for ``rows``, computed together with other waiting requests."""
        if self._closed:
            raise Unavailable("the model is shutting down")
        if not rows:
            return []
        self.start()
        fut: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        self.stats.requests += 1
        self._queue.put_nowait(_Pending(rows, fut))
        return await fut

    async def close(self) -> None:
        """Finish every request already submitted, then stop; later ``submit`` calls fail."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def _next(self, timeout: float | None) -> _Pending[In, Out] | None:
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return self._queue.get_nowait() if not self._queue.empty() else None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._next(None)
            if first is None:
                break
            batch = [first]
            rows = len(first.rows)
            # The wait counts from when this batch starts collecting, not from the oldest
            # arrival: clients answered by the previous batch usually send their next
            # request within a millisecond, and waiting for them keeps batches full
            # instead of alternating between two half-full groups.
            deadline = loop.time() + self.max_wait_s
            while rows < self.max_batch_size:
                item = await self._next(deadline - loop.time())
                if item is None:
                    if self._closed and self._queue.empty():
                        stopping = True
                    if loop.time() >= deadline or stopping:
                        break
                    continue
                if rows + len(item.rows) > self.max_batch_size:
                    self._carry = item  # starts the next batch, keeps arrival order
                    break
                batch.append(item)
                rows += len(item.rows)
            await self._execute(batch, rows)
        # A close() sentinel can overtake nothing: requests queued before it were
        # served above; anything left (only possible after close) is refused.
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(Unavailable("the model is shutting down"))

    async def _execute(self, batch: list[_Pending[In, Out]], rows: int) -> None:
        loop = asyncio.get_running_loop()
        merged: list[In] = [r for p in batch for r in p.rows]
        t0 = time.perf_counter()
        try:
            outputs = await loop.run_in_executor(self._executor, self._call, merged)
        except Exception as exc:
            self.stats.record(rows, time.perf_counter() - t0)
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            self.stats.retried_batches += 1
            for p in batch:
                try:
                    out = await loop.run_in_executor(self._executor, self._call, p.rows)
                except Exception as one_exc:
                    _fail(p, one_exc)
                else:
                    _resolve(p, out)
            return
        self.stats.record(rows, time.perf_counter() - t0)
        start = 0
        for p in batch:
            _resolve(p, outputs[start : start + len(p.rows)])
            start += len(p.rows)

    def _call(self, rows: list[In]) -> list[Out]:
        out = list(self._fn(rows))
        if len(out) != len(rows):
            raise RuntimeError(f"the model returned {len(out)} outputs for {len(rows)} inputs")
        return out


def _resolve(p: _Pending[In, Out], value: list[Out]) -> None:
    if not p.future.done():  # the caller may have gone away (cancelled)
        p.future.set_result(value)


def _fail(p: _Pending[In, Out], exc: BaseException) -> None:
    if not p.future.done():
        p.future.set_exception(exc)
