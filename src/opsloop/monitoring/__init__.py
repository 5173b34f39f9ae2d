"""Monitoring: what served models do, and alerts when it goes wrong.

- Prediction log: every ``opsloop serve`` app logs its predict answers
  (sampled, PII-masked, written off the request path in batches);
  ``Monitoring.label`` joins ground truth by request id; ``export`` makes a
  dataset version of the log.
- Live metrics: per-minute rollups per deployment, version and route (request
  rate, errors, latency percentiles, tokens, cost); ``GET /metrics`` in
  Prometheus format on the server and on every served app.
- Drift: ``drift(...)`` against the training dataset version, calibrated to
  at most 5% false alarms at any window size (``numeric_drift``,
  ``categorical_drift``, ``dataset_drift``).
- LLM apps: ``text_drift`` (length, script mix, and MMD embedding drift with
  the same calibration, e.g. on MiniLM embeddings); ``embedding`` monitors
  (MiniLM embeddings of the logged prompts or answers against a reference);
  ``scores`` (judge and feedback trends per prompt version and model);
  ``usage`` (the LLM gateway's cost, cache and guardrail hits, through the
  ``monitoring.usage`` hook, ``USAGE_HOOK``).
- Performance with delayed labels: ``performance(...)``.
- Monitors and alerts: checks the server runs on a schedule; alerts are
  deduplicated, cooled down, resolved, sent to HMAC-signed webhooks and
  published as the ``monitoring.alert`` event (``ALERT_EVENT``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.monitoring._alerts import sign, verify
    from opsloop.monitoring._client import Monitoring
    from opsloop.monitoring._drift import categorical_drift, dataset_drift, numeric_drift
    from opsloop.monitoring._text import mmd_drift, script_of, text_drift
    from opsloop.monitoring.entities import ALERT_EVENT, USAGE_HOOK, Alert, Monitor, MonitorRun

__all__ = [
    "ALERT_EVENT",
    "USAGE_HOOK",
    "Alert",
    "Monitor",
    "MonitorRun",
    "Monitoring",
    "categorical_drift",
    "dataset_drift",
    "mmd_drift",
    "numeric_drift",
    "script_of",
    "sign",
    "text_drift",
    "verify",
]

_WHERE = {
    "Monitoring": "opsloop.monitoring._client",
    "numeric_drift": "opsloop.monitoring._drift",
    "categorical_drift": "opsloop.monitoring._drift",
    "dataset_drift": "opsloop.monitoring._drift",
    "mmd_drift": "opsloop.monitoring._text",
    "script_of": "opsloop.monitoring._text",
    "text_drift": "opsloop.monitoring._text",
    "sign": "opsloop.monitoring._alerts",
    "verify": "opsloop.monitoring._alerts",
    "ALERT_EVENT": "opsloop.monitoring.entities",
    "USAGE_HOOK": "opsloop.monitoring.entities",
    "Alert": "opsloop.monitoring.entities",
    "Monitor": "opsloop.monitoring.entities",
    "MonitorRun": "opsloop.monitoring.entities",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opsloop.monitoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
