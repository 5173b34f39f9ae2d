"""Running monitors and announcing their alerts: webhooks signed with HMAC, the log, the event.

A monitor checks the window that closed last (windows end on multiples of its
``interval_s``; each window is checked once, even with several server
replicas, by claiming it in the database). A breach opens an alert; while it
stays breached the alert is updated and announced again only after
``cooldown_s`` (deduplication); the first clean window resolves it. Every
announcement goes to the log (``opsloop.monitoring.alerts``), to the
monitor's webhook, and to the rooms subscribed to ``monitoring.alert``.

Webhook requests are ``POST`` with the alert as JSON and two headers:
``X-Opsloop-Timestamp`` (seconds) and ``X-Opsloop-Signature``:
``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under the monitor's
secret (receivers recompute it and compare in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from opsloop.core import hooks
from opsloop.errors import InvalidArgument
from opsloop.monitoring._embedding import (
    embedding_drift_report,
    reference_texts,
    window_texts,
)
from opsloop.monitoring._report import drift_report
from opsloop.monitoring._service import MonitoringService
from opsloop.monitoring._text import text_drift
from opsloop.monitoring.entities import ALERT_EVENT, Alert, Monitor, MonitorRun

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["GRACE_MS", "MonitorScheduler", "run_monitor", "sign", "verify"]

log = logging.getLogger("opsloop.monitoring.alerts")
GRACE_MS = 5_000  # wait this long after a window closes for the serving apps' last batch
_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Opsloop-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``sign(secret, timestamp, body)`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _post_webhook(url: str, secret: str | None, alert: Alert) -> None:
    import httpx  # lazy: only when a webhook is set

    body = orjson.dumps({"event": ALERT_EVENT, "alert": alert.model_dump()})
    ts = str(int(time.time()))
    headers = {"content-type": "application/json", "x-opsloop-timestamp": ts}
    if secret:
        headers["x-opsloop-signature"] = sign(secret, ts, body)
    for attempt in range(3):
        try:
            r = httpx.post(url, content=body, headers=headers, timeout=5.0)
            if r.status_code < 500:
                if r.status_code >= 400:
                    log.warning("webhook %s refused alert %s: %s", url, alert.id, r.status_code)
                return
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed (try %d): %s", url, attempt + 1, exc)
        time.sleep(0.5 * (attempt + 1))


def announce(alert: Alert, monitor: Monitor, secret: str | None) -> None:
    """Log, webhook and event for one alert change."""
    level = logging.INFO if alert.change == "resolved" else logging.WARNING
    log.log(level, "alert %s %s: %s", monitor.name, alert.change, alert.message)
    if monitor.webhook_url:
        _post_webhook(monitor.webhook_url, secret, alert)
    for subscriber in hooks(ALERT_EVENT):
        try:
            subscriber(alert)
        except Exception:
            log.exception("a %s subscriber failed", ALERT_EVENT)


def _window(monitor: Monitor, now: int) -> tuple[int, int]:
    step = monitor.interval_s * 1000
    end = (now - GRACE_MS) // step * step
    return end - monitor.window_s * 1000, end


def _check(ctx: Context, svc: MonitoringService, m: Monitor, start: int, end: int) -> MonitorRun:
    if m.kind == "metric":
        summary = svc.summary(m.deployment, since=start, until=end)
        value = summary.get(m.metric or "")
        if summary["requests"] < m.min_rows and m.metric != "requests":
            return MonitorRun(
                monitor=m.name,
                window_start=start,
                window_end=end,
                value=value,
                breached=False,
                skipped=f"fewer than {m.min_rows} requests",
                details=summary,
            )
        breached = value is not None and _OPS[m.op](float(value), m.threshold)
        return MonitorRun(
            monitor=m.name,
            window_start=start,
            window_end=end,
            value=value,
            breached=breached,
            details=summary,
        )
    if m.kind == "embedding":
        return _check_embedding(ctx, svc, m, start, end)
    report = drift_report(
        ctx,
        svc.predictions,
        m.deployment,
        reference=m.reference or "",
        since=start,
        until=end,
        features=m.features,
    )
    if report["n_current"] < m.min_rows:
        return MonitorRun(
            monitor=m.name,
            window_start=start,
            window_end=end,
            value=None,
            breached=False,
            skipped=f"fewer than {m.min_rows} logged rows",
            details=report,
        )
    share = float(report["drift_share"])
    breached = _OPS[m.op](share, m.threshold) if m.threshold > 0 else bool(report["drift"])
    return MonitorRun(
        monitor=m.name,
        window_start=start,
        window_end=end,
        value=share,
        breached=breached,
        details=report,
    )


def _check_embedding(
    ctx: Context, svc: MonitoringService, m: Monitor, start: int, end: int
) -> MonitorRun:
    column = m.features[0] if m.features else None
    rows = svc.predictions(m.deployment, since=start, until=end, limit=100_000)
    current = window_texts(rows, m.text, column)
    run = MonitorRun(monitor=m.name, window_start=start, window_end=end, value=None, breached=False)
    if len(current) < max(m.min_rows, 30):
        skipped = f"fewer than {max(m.min_rows, 30)} logged texts"
        return run.model_copy(update={"skipped": skipped, "details": {"n_current": len(current)}})
    reference = reference_texts(ctx, m.reference or "", column)
    report = embedding_drift_report(reference, current)
    # the texts' length and script mix, reported next to the embedding test (which decides)
    report.update({k: v for k, v in text_drift(reference, current).items() if k != "drift"})
    effect = report["effect_size"]
    if effect is None:
        return run.model_copy(update={"skipped": report.get("reason"), "details": report})
    decided = bool(report["drift"])
    breached = _OPS[m.op](float(effect), m.threshold) if m.threshold > 0 else decided
    return run.model_copy(update={"value": effect, "breached": breached, "details": report})


def _already_checked(name: str, start: int, end: int) -> MonitorRun:
    return MonitorRun(
        monitor=name,
        window_start=start,
        window_end=end,
        value=None,
        breached=False,
        skipped="window already checked",
    )


def run_monitor(
    ctx: Context, svc: MonitoringService, name: str, *, now: int | None = None, force: bool = False
) -> MonitorRun:
    """Check ``name`` on its last closed window; record and announce what changed."""
    m = svc.get_monitor(name)
    now = int(time.time() * 1000) if now is None else now
    start, end = _window(m, now)
    if start < 0:  # refused before the window is claimed: a bad request changes nothing
        raise InvalidArgument(
            f"now={now} ms is earlier than one {m.window_s} s window after the epoch",
            details={"field": "now"},
        )
    if not force and m.last_window_end is not None and m.last_window_end >= end:
        return _already_checked(name, start, end)
    # The check reads only, so a monitor that cannot be checked (its reference dataset is
    # gone, say) raises before anything is written; the window is claimed after it.
    run = _check(ctx, svc, m, start, end)
    if not force and not svc.claim_window(name, end):
        return _already_checked(name, start, end)
    if run.skipped:
        return run
    what = f"{m.metric or 'drift share'} = {run.value} ({m.op} {m.threshold})"
    if m.kind == "drift" and m.threshold <= 0:
        what = f"drift share = {run.value:.2f} (drifted: {', '.join(run.details['drifted'])})"
    elif m.kind == "embedding":
        d = run.details
        what = (
            f"{m.text} embedding drift: MMD {d['effect_size']:.3f}, p = {d['p_value']:.3f} "
            f"({d['n_current']} texts vs {d['n_reference']} reference)"
        )
    alert = svc.record_alert(
        m,
        breached=run.breached,
        value=run.value,
        message=f"{m.deployment}: {what}",
        details={"window_start": start, "window_end": end, **_brief(run.details)},
        window_end=end,
        now=now,
    )
    if alert is not None:
        announce(alert, m, svc.monitor_secret(name))
    return run.model_copy(update={"alert": alert})


def _brief(details: dict[str, Any]) -> dict[str, Any]:
    if "features" in details:
        return {
            "drift_share": details["drift_share"],
            "drifted": details["drifted"],
            "n_current": details["n_current"],
            "features": {
                k: {f: v.get(f) for f in ("test", "p_value", "effect_size", "drift")}
                for k, v in details["features"].items()
            },
        }
    return details


class MonitorScheduler:
    """The server's thread: every ``tick_s`` it runs each enabled monitor whose window closed."""

    def __init__(self, ctx: Context, tick_s: float = 1.0) -> None:
        self.ctx = ctx
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._svc = MonitoringService(ctx.database)
        self._thread = threading.Thread(target=self._loop, name="opsloop-monitors", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("monitor tick failed")

    def tick(self, now: int | None = None) -> list[MonitorRun]:
        now = int(time.time() * 1000) if now is None else now
        runs = []
        for m in self._svc.list_monitors():
            if not m.enabled:
                continue
            _, end = _window(m, now)
            if m.last_window_end is not None and m.last_window_end >= end:
                continue
            try:
                runs.append(run_monitor(self.ctx, self._svc, m.name, now=now))
            except Exception:
                log.exception("monitor %s failed", m.name)
                # a monitor that cannot be checked is tried again on its next window, not
                # on every tick
                self._svc.claim_window(m.name, end)
        return runs

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def start_scheduler(ctx: Context) -> Callable[[], None]:
    """The room's background work on ``opsloop server``: the monitor scheduler on the
    server's context; returns the function that stops it. ``OPSLOOP_MONITORING_SCHEDULER=0``
    leaves it off (a server whose monitors another replica checks)."""
    if os.environ.get("OPSLOOP_MONITORING_SCHEDULER", "1").strip().lower() in ("0", "false", "no"):
        return lambda: None
    return MonitorScheduler(ctx).close
