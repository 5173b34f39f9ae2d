"""Retention: old traces, prediction log rows and request bodies, deleted on a schedule.

The policy is the server's settings (there are no workspaces yet, so it is
one policy per server): ``retention_traces_days``,
``retention_predictions_days`` and ``retention_bodies_days`` (unset: kept
forever). :func:`run_retention` turns each into a cut-off and calls every
room's hook for it, found by name (``governance.retention.traces``,
``.predictions``, ``.bodies``: the tracing and monitoring rooms declare
them), one bounded batch (``retention_batch`` rows, one short transaction)
at a time until a batch comes back short. A run that removed anything
appends one entry to the audit trail (actor ``retention``, route
``retention.run``, the counts as its answer).

``opsloop server`` runs it every ``retention_interval_s`` in a background
thread (the room's ``background`` work) when some policy is set;
``OPSLOOP_RETENTION_SCHEDULER=0`` leaves it off (another replica runs it).
``opsloop retention run`` and ``POST /api/v1/retention/run`` run it once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from opsloop.core import hooks
from opsloop.governance._audit import AuditService
from opsloop.governance.entities import RetentionPolicy, RetentionReport, RetentionResult
from opsloop.store import Database, now_ms

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.settings import Settings

__all__ = [
    "KINDS",
    "RetentionScheduler",
    "drain",
    "policy_of",
    "run_retention",
    "start_retention",
]

log = logging.getLogger("opsloop.server")
KINDS: tuple[Literal["traces", "predictions", "bodies"], ...] = ("traces", "predictions", "bodies")
DAY_MS = 86_400_000
MAX_BATCHES = 100_000  # per kind and run: a safety stop, far above any real backlog
MIN_PAUSE_S, MAX_PAUSE_S = 0.02, 0.5  # between two batches: writers get their turn


def policy_of(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        traces_days=settings.retention_traces_days,
        predictions_days=settings.retention_predictions_days,
        bodies_days=settings.retention_bodies_days,
        interval_s=settings.retention_interval_s,
        batch=settings.retention_batch,
    )


def _hook_name(fn: Callable[..., int]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def run_retention(
    db: Database, settings: Settings, *, now: int | None = None, actor: str = "retention"
) -> RetentionReport:
    """Apply the settings' policy once: every room's hooks, in bounded batches."""
    policy = policy_of(settings)
    now = now_ms() if now is None else now
    results: list[RetentionResult] = []
    for kind in KINDS:
        days = getattr(policy, f"{kind}_days")
        if days is None:
            continue
        before = now - int(days * DAY_MS)
        for hook in hooks(f"governance.retention.{kind}"):
            rows, txs = drain(hook, db, before, policy.batch)
            batches = len(txs)
            results.append(
                RetentionResult(
                    kind=kind, hook=_hook_name(hook), before_ms=before, rows=rows, batches=batches
                )
            )
    report = RetentionReport(at=now, policy=policy, results=results)
    if any(r.rows for r in results):
        AuditService(db).append(
            actor=actor,
            method="RETENTION",
            path="/api/v1/retention/run",
            route="retention.run",
            status=200,
            response=json.dumps(report.model_dump(mode="json"), separators=(",", ":")),
        )
    return report


def drain(
    hook: Callable[[Database, int, int], int], db: Database, before: int, batch: int
) -> tuple[int, list[float]]:
    """Call ``hook`` until a batch comes back short: the rows removed, each call's seconds.

    Between two batches it pauses as long as the last one took (at least
    ``MIN_PAUSE_S``, at most ``MAX_PAUSE_S``): on SQLite a writer waiting for
    the lock polls with a growing sleep, and back-to-back batches would starve
    it (measured in benchmarks/retention.py); the pause lets it in.
    """
    rows, txs = 0, list[float]()
    while len(txs) < MAX_BATCHES:
        t = time.perf_counter()
        n = int(hook(db, before, batch))
        txs.append(time.perf_counter() - t)
        rows += n
        if n < batch:
            break
        time.sleep(min(MAX_PAUSE_S, max(MIN_PAUSE_S, txs[-1])))
    return rows, txs


class RetentionScheduler:
    """The server's thread: a retention run every ``retention_interval_s`` (the first at once)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.last: RetentionReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="opsloop-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = self.ctx.settings.retention_interval_s
        while True:
            t0 = time.monotonic()
            try:
                self.last = run_retention(self.ctx.database, self.ctx.settings)
                removed = {f"{r.kind} ({r.hook})": r.rows for r in self.last.results if r.rows}
                if removed:
                    log.info("retention removed %s", removed)
            except Exception:
                log.exception("retention run failed")
            if self._stop.wait(max(0.0, interval - (time.monotonic() - t0))):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def start_retention(ctx: Context) -> Callable[[], None]:
    """The room's background work on ``opsloop server``: retention runs on a schedule when a
    policy is set; returns the function that stops them. ``OPSLOOP_RETENTION_SCHEDULER=0``
    leaves them off."""
    if os.environ.get("OPSLOOP_RETENTION_SCHEDULER", "1").strip().lower() in ("0", "false", "no"):
        return lambda: None
    if all(getattr(policy_of(ctx.settings), f"{k}_days") is None for k in KINDS):
        return lambda: None
    return RetentionScheduler(ctx).close
