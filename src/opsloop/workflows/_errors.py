"""The workflows room's errors, each with its own stable code."""

from __future__ import annotations

from typing import Any

from opsloop.errors import InvalidArgument, OpsloopError

__all__ = ["StepFailed", "StepTimeout", "WorkflowDefinitionError"]


class WorkflowDefinitionError(InvalidArgument):
    """A workflow or step is declared wrongly (a cycle, an unknown step, bad YAML, a bad cron)."""

    code = "WORKFLOW_DEFINITION"
    http_status = 400


class StepFailed(OpsloopError):
    """A step failed on its last attempt; ``details`` names the workflow run, the step and its run."""

    code = "WORKFLOW_STEP_FAILED"
    http_status = 500
    result: Any = None  # the WorkflowResult, where the run happened in this process

    def with_result(self, result: Any) -> StepFailed:
        self.result = result
        return self


class StepTimeout(OpsloopError):
    """One attempt of a step ran past its timeout (the attempt is stopped and may be retried)."""

    code = "WORKFLOW_STEP_TIMEOUT"
    http_status = 504
