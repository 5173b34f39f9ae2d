"""One dispatcher pass: poll the rooms' events, fire due schedules, act on pending events.

An event's run id is recorded as soon as its run starts; an event that
already has one (its dispatcher was killed mid-run) resumes that run
instead of starting another, so each event is acted on once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opsloop.tracking import RunStatus
from opsloop.workflows._load import load_workflow
from opsloop.workflows._run import TAGS
from opsloop.workflows._sources import poll_sources
from opsloop.workflows._triggers import TriggerService
from opsloop.workflows.entities import EventRecord, TriggerInfo

__all__ = ["handle", "tick"]

log = logging.getLogger("opsloop.workflows")


def _accepts_event(wf: Any) -> bool:
    sig = getattr(wf, "signature", None)
    if sig is not None:
        return "event" in sig.parameters
    return "event" in getattr(wf, "defaults", {})


def tick(wf_api: Any, svc: TriggerService, stop: threading.Event | None = None) -> int:
    """One pass with ``wf_api`` (a ``Workflows``); returns the number of events handled."""
    if not svc.active():
        return 0
    poll_sources(svc)
    svc.fire_schedules()
    handled = 0
    while stop is None or not stop.is_set():
        batch = svc.claim(10)
        if not batch:
            break
        for ev, trigger in batch:
            handle(wf_api, svc, ev, trigger)
            handled += 1
    return handled


def handle(wf_api: Any, svc: TriggerService, ev: EventRecord, trigger: TriggerInfo | None) -> None:
    if trigger is None:
        svc.finish(ev.id, "failed", "its trigger was deleted")
        return
    try:
        if ev.run_id:
            run = wf_api.tracking.get_run(ev.run_id)
            if run.status != RunStatus.FINISHED:
                wf_api.resume(ev.run_id, executor=trigger.executor, force=True)
        else:
            wf = load_workflow(trigger.workflow)
            params = dict(trigger.params)
            if _accepts_event(wf):
                params["event"] = {"name": ev.event, "key": ev.key, **ev.payload}
            wf_api.run(
                wf,
                params,
                executor=trigger.executor,
                tags={TAGS.TRIGGER: f"{trigger.name}:{ev.id}"},
                on_start=lambda rid: svc.started(ev.id, rid),
            )
    except Exception as e:
        log.warning("workflow trigger %s failed: %s", trigger.name, e)
        svc.finish(ev.id, "failed", f"{type(e).__name__}: {e}")
        return
    svc.finish(ev.id, "done")
