"""Tuning types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

INTERMEDIATE = "intermediate/"  # prefix of the metric ``trial.report`` logs

__all__ = ["ParetoPoint", "StudyInfo", "StudySummary", "TrialInfo"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StudyInfo(_Model):
    """A registered study: what it optimises and where it logs."""

    id: str
    name: str
    experiment_id: str
    run_id: str | None
    directions: list[str]
    objectives: list[str]
    space: dict[str, Any] = Field(default_factory=dict)
    storage: str = ""
    created_at: int
    updated_at: int
    created_by: str = ""

    @property
    def is_multi_objective(self) -> bool:
        return len(self.directions) > 1


class TrialInfo(_Model):
    """One trial as its child run records it.

    ``state`` is Optuna's (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``);
    ``values`` holds the objectives' final values (``None`` until complete).
    """

    number: int
    run_id: str | None = None
    state: str
    params: dict[str, Any] = Field(default_factory=dict)
    values: list[float | None] | None = None
    start_time: int | None = None
    end_time: int | None = None
    last_step: int | None = None  # the last intermediate step reported (pruned trials)


class ParetoPoint(_Model):
    """A non-dominated trial of a multi-objective study."""

    number: int
    run_id: str | None = None
    values: list[float]
    params: dict[str, Any] = Field(default_factory=dict)


class StudySummary(_Model):
    """A study's trials, counts by state, best trial(s) and Pareto front.

    For one objective ``best`` holds the best complete trial; for several,
    ``pareto_front`` holds the non-dominated complete trials (sorted by the
    first objective) and ``best`` is empty.
    """

    study: StudyInfo
    counts: dict[str, int]
    trials: list[TrialInfo]
    best: list[TrialInfo] = Field(default_factory=list)
    pareto_front: list[ParetoPoint] = Field(default_factory=list)
