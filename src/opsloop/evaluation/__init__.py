"""Evaluation: metrics, evaluation runs, side-by-side comparison and promotion gates.

::

    from opsloop.evaluation import evaluate, compare
    res = evaluate("models:/churn/3", "churn-test@2", metrics=["f1", "accuracy"],
                   target_column="label")
    res.metrics["f1"], res.metrics["f1_ci_low"], res.run_id
    cmp = compare([res_a.run_id, res_b.run_id], metric="f1")
    cmp.candidates[1].p_value_permutation

Names load on first use, so importing this package stays cheap. The metrics
API is also re-exported here; see :mod:`opsloop.evaluation.metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.errors import JudgeError, PromotionRefused
    from opsloop.evaluation._bootstrap import BootstrapCI, bootstrap_ci
    from opsloop.evaluation._client import Evaluation
    from opsloop.evaluation._compare import (
        CandidateComparison,
        Comparison,
        ExampleDiff,
        compare,
        mcnemar_exact,
        paired_bootstrap,
        paired_permutation_test,
        sign_test,
    )
    from opsloop.evaluation._entities import (
        EvaluationResult,
        ExampleResult,
        GatePolicy,
        GateRule,
        RuleOutcome,
    )
    from opsloop.evaluation._evaluate import evaluate, metric_key
    from opsloop.evaluation.metrics import (
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

_LAZY = {
    "JudgeError": "opsloop.errors",
    "PromotionRefused": "opsloop.errors",
    "BootstrapCI": "opsloop.evaluation._bootstrap",
    "bootstrap_ci": "opsloop.evaluation._bootstrap",
    "Evaluation": "opsloop.evaluation._client",
    "evaluate": "opsloop.evaluation._evaluate",
    "metric_key": "opsloop.evaluation._evaluate",
}
_LAZY.update(
    {
        n: "opsloop.evaluation._compare"
        for n in (
            "CandidateComparison",
            "Comparison",
            "ExampleDiff",
            "compare",
            "mcnemar_exact",
            "paired_bootstrap",
            "paired_permutation_test",
            "sign_test",
        )
    }
)
_LAZY.update(
    {
        n: "opsloop.evaluation._entities"
        for n in ("EvaluationResult", "ExampleResult", "GatePolicy", "GateRule", "RuleOutcome")
    }
)
_LAZY.update(
    {
        n: "opsloop.evaluation.metrics"
        for n in (
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
        )
    }
)

__all__ = [
    "BootstrapCI",
    "CandidateComparison",
    "Comparison",
    "Evaluation",
    "EvaluationResult",
    "ExampleDiff",
    "ExampleResult",
    "GatePolicy",
    "GateRule",
    "JudgeError",
    "Metric",
    "MetricResult",
    "PromotionRefused",
    "Rubric",
    "RuleOutcome",
    "Verdict",
    "bootstrap_ci",
    "compare",
    "evaluate",
    "get_metric",
    "judge",
    "judge_metric",
    "list_metrics",
    "mcnemar_exact",
    "metric",
    "metric_key",
    "paired_bootstrap",
    "paired_permutation_test",
    "register_metric",
    "sign_test",
    "unregister_metric",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
