"""The background half shared by the SDK's metric buffer and the span exporter.

Both keep records in memory, write them from a daemon thread every
``interval_s`` seconds (or sooner when a subclass says it is full), write
everything on ``flush``, stop on ``close``, and at interpreter exit flush one
last time, spilling what they cannot write to a JSONL file under the home
folder. Subclasses hold the records and say how to flush and spill them.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

_LIVE: weakref.WeakSet[BackgroundFlusher] = weakref.WeakSet()


class BackgroundFlusher:
    """Thread, close and spill logic; subclasses implement the ``_`` hooks below."""

    thread_name: ClassVar[str] = "opsloop-flush"
    spill_prefix: ClassVar[str] = "unflushed"
    what: ClassVar[str] = "records"  # for the message at exit

    def __init__(self, *, interval_s: float, spill_dir: Path | None) -> None:
        self.interval_s = interval_s
        self.spill_dir = spill_dir
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        _LIVE.add(self)

    # -- hooks (called with ``_lock`` held, except ``_flush_in_background``) ----------

    def _has_work(self) -> bool:
        raise NotImplementedError

    def _full(self) -> bool:
        """Whether to write now without waiting for the interval."""
        return False

    def _take_all(self) -> list[dict[str, Any]]:
        """Remove every unconfirmed record, as JSON-able rows for the spill file."""
        raise NotImplementedError

    def _flush_in_background(self) -> None:
        raise NotImplementedError

    def flush(self) -> int:
        raise NotImplementedError

    # -- thread ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the daemon thread (call with ``_lock`` held, on the first record)."""
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if not self._full():
                    self._wake.wait(timeout=self.interval_s)
                if self._closed:
                    return
                if not self._has_work():
                    continue
            try:
                self._flush_in_background()
            except Exception:
                # Keep the thread alive: the records stay queued (nothing is lost) and
                # the next explicit flush retries them and raises if it still fails.
                time.sleep(min(self.interval_s, 1.0))

    def close(self, *, flush: bool = True) -> None:
        """Stop the background thread, flushing first (raising if that fails)."""
        try:
            if flush:
                self.flush()
        finally:
            with self._lock:
                self._closed = True
                self._wake.notify_all()
            t = self._thread
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)
            self._thread = None

    def spill(self) -> Path | None:
        """Write unconfirmed records to a JSONL file (last resort at exit); return its path."""
        with self._lock:
            rows = self._take_all()
        if not rows or self.spill_dir is None:
            return None
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}"
        path = self.spill_dir / f"{self.spill_prefix}-{stamp}.jsonl"
        with open(path, "w") as fh:
            fh.writelines(_lines(rows))
        return path


def _lines(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    for row in rows:
        yield json.dumps(row, default=str) + "\n"


def _flush_all_at_exit() -> None:
    for f in list(_LIVE):
        try:
            f.close(flush=True)
        except Exception as exc:
            path = f.spill()
            where = f"; they were saved to {path}" if path else ""
            print(f"opsloop: could not flush {f.what} at exit: {exc}{where}", file=sys.stderr)


atexit.register(_flush_all_at_exit)
