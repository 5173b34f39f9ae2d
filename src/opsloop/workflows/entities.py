"""Types that cross the workflows room's API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CacheEntry", "EventRecord", "StepResult", "TriggerInfo", "WorkflowResult"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class CacheEntry(_Model):
    """One cached step result: the key, the step, the run whose artifact holds the outputs."""

    key: str
    step: str
    run_id: str
    outputs: dict[str, Any]
    created_at: int
    hits: int = 0


class StepResult(_Model):
    """How one step of a workflow run went."""

    name: str
    step: str
    run_id: str | None = None
    status: str  # ran | cached | resumed | failed | skipped
    key: str = ""
    digest: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""


class WorkflowResult(_Model):
    """A workflow run: its run id, status, each step's result, and the returned value's outputs."""

    run_id: str
    workflow: str
    status: str  # FINISHED | FAILED
    steps: list[StepResult] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict, exclude=True)  # in-process values only

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def cache_hits(self) -> int:
        return sum(s.status == "cached" for s in self.steps)


class TriggerInfo(_Model):
    """A schedule (``kind="cron"``) or an event subscription (``kind="event"``)."""

    id: str
    name: str
    workflow: str
    kind: str
    spec: dict[str, Any]
    params: dict[str, Any]
    executor: str = "inline"
    enabled: bool = True
    next_at: int | None = None
    pending: int = 0
    created_at: int
    created_by: str = ""


class EventRecord(_Model):
    """An event in the inbox: its idempotency key, what it is, and the run it started."""

    id: int
    key: str
    event: str
    trigger_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    status: str
    run_id: str | None = None
    error: str = ""
    attempts: int = 0
    created_at: int
    updated_at: int
