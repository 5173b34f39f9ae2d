"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts, search.

Importing this package is cheap; the services (and SQLAlchemy) load on first
use of their names, so submodules such as ``_validation`` stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.tracking._artifact_service import ArtifactService
    from opsloop.tracking._backend import (
        EmbeddedTracking,
        TrackingBackend,
        artifact_service,
        tracking_service,
    )
    from opsloop.tracking._client import Tracking
    from opsloop.tracking._remote import RemoteTracking
    from opsloop.tracking._service import DEFAULT_EXPERIMENT, TrackingService
    from opsloop.tracking._sysmetrics import SystemMetricsSampler
    from opsloop.tracking._tables import runs as runs_table
    from opsloop.tracking._validation import (
        MAX_TAG_VALUE,
        check_key,
        int64,
        metric_value,
        param_value,
    )
    from opsloop.tracking.entities import (
        ArtifactInfo,
        Experiment,
        LatestMetric,
        MetricHistory,
        MetricPoint,
        MetricPoints,
        Run,
        RunComparison,
        RunPage,
        RunStatus,
    )

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MAX_TAG_VALUE",
    "ArtifactInfo",
    "ArtifactService",
    "EmbeddedTracking",
    "Experiment",
    "LatestMetric",
    "MetricHistory",
    "MetricPoint",
    "MetricPoints",
    "RemoteTracking",
    "Run",
    "RunComparison",
    "RunPage",
    "RunStatus",
    "SystemMetricsSampler",
    "Tracking",
    "TrackingBackend",
    "TrackingService",
    "artifact_service",
    "check_key",
    "int64",
    "metric_value",
    "param_value",
    "runs_table",
    "tracking_service",
]

_LAZY = {name: "opsloop.tracking.entities" for name in __all__}
_LAZY.update(
    ArtifactService="opsloop.tracking._artifact_service",
    DEFAULT_EXPERIMENT="opsloop.tracking._service",
    TrackingService="opsloop.tracking._service",
    Tracking="opsloop.tracking._client",
    TrackingBackend="opsloop.tracking._backend",
    EmbeddedTracking="opsloop.tracking._backend",
    artifact_service="opsloop.tracking._backend",
    tracking_service="opsloop.tracking._backend",
    RemoteTracking="opsloop.tracking._remote",
    SystemMetricsSampler="opsloop.tracking._sysmetrics",
    runs_table="opsloop.tracking._tables",
)
# Public names that differ from the name in their module.
_RENAMED = {"runs_table": "runs"}
# Input checks shared with other rooms (light: no storage).
_LAZY.update(
    {
        n: "opsloop.tracking._validation"
        for n in ("MAX_TAG_VALUE", "check_key", "int64", "metric_value", "param_value")
    }
)


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__, _RENAMED)
