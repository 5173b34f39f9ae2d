"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts, search."""

from opsloop.tracking._artifact_service import ArtifactService
from opsloop.tracking._service import DEFAULT_EXPERIMENT, TrackingService
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LatestMetric,
    MetricHistory,
    MetricPoint,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "ArtifactInfo",
    "ArtifactService",
    "Experiment",
    "LatestMetric",
    "MetricHistory",
    "MetricPoint",
    "Run",
    "RunComparison",
    "RunPage",
    "RunStatus",
    "TrackingService",
]
