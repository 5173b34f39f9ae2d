"""Tracking types that cross the SDK and the REST API."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsloop.tracking._metrics import build_points

__all__ = [
    "ArtifactInfo",
    "Experiment",
    "LatestMetric",
    "MetricHistory",
    "MetricPoint",
    "Run",
    "RunComparison",
    "RunPage",
    "RunStatus",
]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Experiment(_Model):
    id: str
    name: str
    description: str = ""
    lifecycle_stage: str = "active"
    created_at: int
    updated_at: int
    tags: dict[str, str] = Field(default_factory=dict)
    run_count: int | None = None


class LatestMetric(_Model):
    """A metric key's latest value (highest step, then newest time) and its range."""

    value: float | None
    step: int
    timestamp: int
    min: float | None = None
    max: float | None = None
    count: int = 0


class Run(_Model):
    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    notes: str = ""
    user: str = ""
    lifecycle_stage: str = "active"
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, LatestMetric] = Field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


class MetricPoint(_Model):
    key: str
    value: float
    step: int = 0
    timestamp: int


class MetricHistory(BaseModel):
    """A metric's points as three parallel columns, ordered by step then time.

    ``downsampled`` is true when the server reduced the points to fit
    ``max_points`` (keeping each bucket's first, last, min and max).
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float | None]
    total_points: int
    downsampled: bool = False

    def points(self) -> list[MetricPoint]:
        """The points as ``MetricPoint`` objects (``None`` values as NaN), in column order.

        Built from the columns without validating each point again (several
        times faster than validating each one; ``benchmarks/metric_points.py``).
        """
        return build_points(MetricPoint, self.key, self.steps, self.timestamps, self.values)

    def __len__(self) -> int:
        return len(self.steps)


class ArtifactInfo(_Model):
    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None
    media_type: str | None = None


class RunPage(_Model):
    runs: list[Run]
    next_page_token: str | None = None
    total: int | None = None


class RunComparison(_Model):
    """Runs side by side: which params differ, and every run's latest metrics.

    ``goals`` gives each metric's direction, owned by the tracking service: set on
    the experiment (``Client.set_metric_goal``) or inferred from the name (loss,
    error, latency, ... minimize; else maximize; ``system/`` metrics none).
    ``best`` is the run with the best latest value for that goal (the first
    given, on a tie), None without a goal or a value.
    """

    runs: list[Run]
    param_keys: list[str]
    differing_params: list[str]
    metric_keys: list[str]
    metrics: dict[str, dict[str, float | None]]  # metric key -> run id -> latest value
    goals: dict[str, Literal["maximize", "minimize"] | None] = Field(default_factory=dict)
    best: dict[str, str | None] = Field(default_factory=dict)  # metric key -> run id
    extra: dict[str, Any] = Field(default_factory=dict)
