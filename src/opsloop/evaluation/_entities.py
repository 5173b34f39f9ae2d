"""Types that cross the SDK and the REST API: evaluation results, gate policies, rule outcomes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsloop.errors import InvalidArgument


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExampleResult(_Model):
    """One example: what went in, what came out, its scores, latency and usage."""

    id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    reference: Any = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None


class EvaluationResult(_Model):
    """An evaluation run: aggregates with their intervals, and every example.

    ``metrics`` holds what was logged to the run: each aggregate under its
    name with ``<name>_ci_low`` / ``<name>_ci_high``, and the ops figures
    (``latency_p50_ms``, ``latency_p99_ms``, ``tokens_total``, ``cost_usd``...).
    """

    run_id: str
    name: str
    experiment_id: str
    candidate: str
    candidate_kind: str
    dataset: str | None = None
    dataset_digest: str | None = None
    target_column: str | None = None
    metric_names: list[str]
    metrics: dict[str, float]
    confidence: float
    n_bootstrap: int
    n_examples: int
    n_errors: int = 0
    examples: list[ExampleResult] = Field(default_factory=list)

    def ci(self, metric: str) -> tuple[float, float, float]:
        """``(value, low, high)`` of one aggregate."""
        if metric not in self.metrics:
            raise InvalidArgument(
                f"no metric {metric!r} in this evaluation; it has {sorted(self.metric_names)}"
            )
        return (
            self.metrics[metric],
            self.metrics.get(f"{metric}_ci_low", float("nan")),
            self.metrics.get(f"{metric}_ci_high", float("nan")),
        )


class GateRule(_Model):
    """One promotion rule on a metric of the candidate version.

    - ``min_delta_vs="champion", tolerance=0.005``: the candidate may fall
      behind the version holding alias ``champion`` by at most ``tolerance``
      (in the direction the metric improves); ``"current"`` means the alias
      being moved.
    - ``max`` / ``min``: absolute bounds.
    """

    metric: str = Field(min_length=1, max_length=250)
    min_delta_vs: str | None = Field(default=None, max_length=128)
    tolerance: float = Field(default=0.0, ge=0.0)
    max: float | None = None
    min: float | None = None
    greater_is_better: bool | None = None  # default: the metric registry's, else True

    @model_validator(mode="after")
    def _one_kind(self) -> GateRule:
        if self.min_delta_vs is None and self.max is None and self.min is None:
            raise ValueError("a rule needs min_delta_vs, max or min")
        return self


class GatePolicy(_Model):
    """The promotion gate of one registered model."""

    model: str
    rules: list[GateRule]
    aliases: list[str] | None = None  # aliases it guards; None: every alias
    updated_at: int = 0
    updated_by: str = ""


class RuleOutcome(_Model):
    """How one rule fared: ``actual`` vs ``required``, and the ``shortfall`` when it failed."""

    rule: dict[str, Any]
    metric: str
    passed: bool
    actual: float | None
    required: float | None
    shortfall: float | None = None
    reference_version: int | None = None
    reference_value: float | None = None
    message: str
