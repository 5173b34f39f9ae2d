"""Workflows: step pipelines whose cache is never stale, with retries, resume and triggers.

::

    from opsloop.workflows import step, workflow, Workflows

    @step
    def load(rows: int) -> list[dict]: ...

    @step(retries=2, timeout=600)
    def train(data: list[dict], alpha: float = 1.0) -> dict: ...

    @workflow
    def pipeline(rows: int = 100, alpha: float = 1.0):
        return train(load(rows), alpha=alpha)

    result = Workflows(client).run(pipeline, {"alpha": 0.5})   # a run, a child run per step

A step's cache key covers its code and the project code it reaches
(transitively), the versions of the packages that code uses, its parameters
and the content hashes of its inputs. ``opsloop server`` runs the schedules
and event triggers (``Workflows.schedule``, ``Workflows.on``).
Importing this package does not import SQLAlchemy; running a workflow does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.workflows._client import DEFAULT_EXPERIMENT, Workflows
    from opsloop.workflows._cron import Cron, parse_cron
    from opsloop.workflows._errors import StepFailed, StepTimeout, WorkflowDefinitionError
    from opsloop.workflows._executors import EXECUTORS
    from opsloop.workflows._fingerprint import Fingerprint, code_fingerprint, value_digest
    from opsloop.workflows._load import load_workflow
    from opsloop.workflows._run import TAGS
    from opsloop.workflows._step import Output, Step, Workflow, step, workflow
    from opsloop.workflows._triggers import EVENTS
    from opsloop.workflows._yaml import YamlWorkflow, load_yaml_workflow
    from opsloop.workflows.entities import (
        CacheEntry,
        EventRecord,
        StepResult,
        TriggerInfo,
        WorkflowResult,
    )

_LAZY = {
    "DEFAULT_EXPERIMENT": "opsloop.workflows._client",
    "Workflows": "opsloop.workflows._client",
    "load_workflow": "opsloop.workflows._load",
    "Cron": "opsloop.workflows._cron",
    "parse_cron": "opsloop.workflows._cron",
    "StepFailed": "opsloop.workflows._errors",
    "StepTimeout": "opsloop.workflows._errors",
    "WorkflowDefinitionError": "opsloop.workflows._errors",
    "EXECUTORS": "opsloop.workflows._executors",
    "Fingerprint": "opsloop.workflows._fingerprint",
    "code_fingerprint": "opsloop.workflows._fingerprint",
    "value_digest": "opsloop.workflows._fingerprint",
    "TAGS": "opsloop.workflows._run",
    "Output": "opsloop.workflows._step",
    "Step": "opsloop.workflows._step",
    "Workflow": "opsloop.workflows._step",
    "step": "opsloop.workflows._step",
    "workflow": "opsloop.workflows._step",
    "EVENTS": "opsloop.workflows._triggers",
    "YamlWorkflow": "opsloop.workflows._yaml",
    "load_yaml_workflow": "opsloop.workflows._yaml",
    "CacheEntry": "opsloop.workflows.entities",
    "EventRecord": "opsloop.workflows.entities",
    "StepResult": "opsloop.workflows.entities",
    "TriggerInfo": "opsloop.workflows.entities",
    "WorkflowResult": "opsloop.workflows.entities",
}

__all__ = [
    "DEFAULT_EXPERIMENT",
    "EVENTS",
    "EXECUTORS",
    "TAGS",
    "CacheEntry",
    "Cron",
    "EventRecord",
    "Fingerprint",
    "Output",
    "Step",
    "StepFailed",
    "StepResult",
    "StepTimeout",
    "TriggerInfo",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowResult",
    "Workflows",
    "YamlWorkflow",
    "code_fingerprint",
    "load_workflow",
    "load_yaml_workflow",
    "parse_cron",
    "step",
    "value_digest",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop.workflows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
