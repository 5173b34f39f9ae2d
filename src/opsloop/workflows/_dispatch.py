"""The dispatcher ``opsloop server`` runs: schedules and events in, workflow runs out.

Each tick: poll the rooms' event sources into the inbox, turn due schedules
into events, then take the pending events one by one. An event's run id is
recorded as soon as its run starts; an event that already has one (its
dispatcher was killed mid-run) resumes that run instead of starting another,
so each event is acted on once. The inbox and cursors live in the database,
so nothing is lost across a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable

from opsloop.core import Context
from opsloop.workflows._backend import trigger_service
from opsloop.workflows._client import Workflows
from opsloop.workflows._inbox import tick

__all__ = ["Dispatcher", "start_dispatcher"]

log = logging.getLogger("opsloop.workflows")


class Dispatcher:
    def __init__(self, ctx: Context, *, interval: float = 2.0, lease_s: float = 15.0) -> None:
        self.ctx = ctx
        self.svc = ctx.room(trigger_service)
        self.interval = interval
        self.ttl_ms = int(lease_s * 1000)
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self.recovered = 0
        self._holding = False

    def tick(self) -> int:
        """One pass; returns the number of events handled."""
        return tick(Workflows(self.ctx), self.svc, self._stop)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                # Nothing scheduled and nothing pending: no write at all (not even the lease).
                if self.svc.active():
                    state = self.svc.lease(self.owner, self.ttl_ms)
                    if state == "new":  # the last holder is gone: what it left running goes on
                        self.recovered += self.svc.recover()
                    if state != "other":
                        self._holding = True
                        self.tick()
                self._holding = False
            except Exception:
                log.exception("workflow dispatcher tick failed")
            self._stop.wait(self.interval)

    def _heartbeat(self) -> None:
        # Renew the lease while a long workflow runs in the loop's thread.
        while not self._stop.wait(self.ttl_ms / 3000):
            if not self._holding:
                continue
            try:
                self.svc.lease(self.owner, self.ttl_ms)  # recovering is the loop's, between events
            except Exception:
                log.exception("workflow dispatcher lease renewal failed")

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self._loop, name="opsloop-workflows", daemon=True)
        self._thread.start()
        self._beat = threading.Thread(target=self._heartbeat, name="opsloop-lease", daemon=True)
        self._beat.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._beat):
            if t is not None:
                t.join(30)
        with contextlib.suppress(Exception):
            self.svc.release(self.owner)


def start_dispatcher(ctx: Context) -> Callable[[], None]:
    """Start the dispatcher on the server's context; returns the function that stops it."""
    if os.environ.get("OPSLOOP_WORKFLOWS_DISPATCH", "1") == "0":
        return lambda: None
    interval = float(os.environ.get("OPSLOOP_WORKFLOWS_INTERVAL", "2"))
    lease = float(os.environ.get("OPSLOOP_WORKFLOWS_LEASE", "15"))
    d = Dispatcher(ctx, interval=interval, lease_s=lease).start()
    return d.stop
