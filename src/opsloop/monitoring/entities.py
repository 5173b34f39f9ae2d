"""Pydantic types of the monitoring room that cross the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ALERT_EVENT", "USAGE_HOOK", "Alert", "Monitor", "MonitorRun"]

#: The event every alert change is published as: ``opsloop.core.hooks(ALERT_EVENT)``
#: finds the rooms that subscribe (a room declares ``("monitoring.alert", "mod:fn")``
#: in its ``_room.py``); each is called as ``fn(alert)`` with the ``Alert`` below.
ALERT_EVENT = "monitoring.alert"

#: The hook a room implements to add its usage rows to the live metrics (the gateway
#: room does): ``fn(context, *, since, until, bucket_s, by, route, model)`` returns
#: points ``{"t", "route"?, "model"?, "source", "requests", "errors", "input_tokens",
#: "output_tokens", "cost", "cache_hits", "cache_misses", "cache_hit_rate",
#: "guardrail_hits", "guardrail_blocks", "latency_mean"}``.
USAGE_HOOK = "monitoring.usage"


class Monitor(BaseModel):
    """A scheduled check of one deployment's metrics or drift, with a threshold."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["metric", "drift", "embedding"]
    deployment: str
    metric: str | None = (
        None  # metric monitors: requests, request_rate, error_rate, latency_p50/95/99
    )
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = 0.0
    #: drift and embedding monitors: dataset version "name@N" or version id
    reference: str | None = None
    #: drift: the features compared; embedding: ``[column]``, the reference's text column
    features: list[str] | None = None
    #: embedding monitors: embed the logged prompts (``input``) or the answers (``output``)
    text: Literal["input", "output"] = "input"
    interval_s: int = Field(default=60, ge=1, le=86_400)
    window_s: int = Field(default=300, ge=1, le=30 * 86_400)
    cooldown_s: int = Field(default=3600, ge=0, le=30 * 86_400)
    min_rows: int = Field(default=100, ge=1)
    webhook_url: str | None = None
    has_secret: bool = False
    enabled: bool = True
    last_window_end: int | None = None
    created_at: int = 0
    created_by: str = ""


class Alert(BaseModel):
    """One alert: opened when its monitor's check breaches, resolved when it no longer does."""

    id: str
    monitor: str
    deployment: str = ""
    state: Literal["firing", "resolved"]
    value: float | None
    message: str
    details: dict[str, Any]
    window_end: int
    opened_at: int
    updated_at: int
    notified_at: int | None
    resolved_at: int | None
    notifications: int
    #: What changed in this event (``opened``, ``still_firing``, ``resolved``); events only.
    change: str | None = None


class MonitorRun(BaseModel):
    """One check of one monitor over one window."""

    monitor: str
    window_start: int
    window_end: int
    value: float | None
    breached: bool
    skipped: str | None = None
    alert: Alert | None = None
    details: dict[str, Any] = Field(default_factory=dict)
