"""Evaluation: metrics (and, as they land, evaluation runs, comparison and benchmarks).

The metrics API is re-exported here; see :mod:`opsloop.evaluation.metrics`.
"""

from opsloop.evaluation.metrics import (
    JudgeError,
    Metric,
    MetricResult,
    Rubric,
    Verdict,
    get_metric,
    judge,
    judge_metric,
    list_metrics,
    metric,
    register_metric,
    unregister_metric,
)

__all__ = [
    "JudgeError",
    "Metric",
    "MetricResult",
    "Rubric",
    "Verdict",
    "get_metric",
    "judge",
    "judge_metric",
    "list_metrics",
    "metric",
    "register_metric",
    "unregister_metric",
]
