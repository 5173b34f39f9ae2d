"""The @metric decorator, the registry of metrics by name, and the cost/latency aggregates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from opsloop.errors import AlreadyExists, InvalidArgument, NotFound
from opsloop.evaluation import metrics as M


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for n in names:
        with contextlib.suppress(NotFound):
            M.unregister_metric(n)


def test_per_example_metric_with_inputs(cleanup: list[str]) -> None:
    @M.metric(name="length_ratio", greater_is_better=False, range=(0.0, None))
    def length_ratio(prediction: str, reference: str, *, budget: int) -> float:
        """Prediction length over reference length, capped by a per-example budget."""
        return min(len(prediction), budget) / len(reference)

    cleanup.append("length_ratio")
    assert isinstance(length_ratio, M.Metric)
    assert length_ratio.inputs == ("predictions", "references", "budget")
    assert length_ratio.per_example and not length_ratio.greater_is_better
    res = length_ratio.compute(["abcd", "ab"], ["ab", "ab"], budget=[3, 10])
    assert res.per_example == [1.5, 1.0] and res.value == 1.25
    assert M.get_metric("length_ratio") is length_ratio
    meta = length_ratio.describe()
    assert meta["kind"] == "custom" and meta["range"] == [0.0, None] and meta["aggregate"] == "mean"
    assert meta["description"].startswith("Prediction length")
    with pytest.raises(InvalidArgument, match="needs the input 'budget'"):
        length_ratio(["a"], ["a"])
    with pytest.raises(InvalidArgument, match="same length"):
        length_ratio(["a", "b"], ["a"], budget=[1, 1])
    with pytest.raises(InvalidArgument, match="one value per example"):
        length_ratio(["a"], ["a"], budget=3)


def test_whole_array_metric_and_aggregates(cleanup: list[str]) -> None:
    @M.metric(aggregate=None, name="max_abs_error", greater_is_better=False, kind="regression")
    def max_abs_error(predictions: Any, references: Any) -> float:
        return float(np.max(np.abs(np.asarray(predictions) - np.asarray(references))))

    cleanup.append("max_abs_error")
    res = max_abs_error.compute([1.0, 5.0], [1.5, 2.0])
    assert res.value == 3.0 and res.per_example is None
    assert M.get_metric("max_abs_error") in M.list_metrics(kind="regression")

    @M.metric(aggregate="median", register=False)
    def diff(prediction: float, reference: float) -> float:
        return prediction - reference

    assert diff([1, 2, 10], [0, 0, 0]) == 2.0
    with pytest.raises(NotFound):
        M.get_metric("diff")  # register=False keeps it out of the registry
    custom = M.metric(
        lambda p, r: p * r, name="prod", aggregate=lambda xs: sum(xs) ** 2, register=False
    )
    assert custom([1, 2], [3, 4]) == 121.0
    assert custom.describe()["aggregate"] == "custom"


def test_bare_decorator_and_numpy_inputs(cleanup: list[str]) -> None:
    @M.metric
    def is_upper(prediction: str, reference: Any = None) -> bool:
        return prediction.isupper()

    cleanup.append("is_upper")
    assert is_upper.name == "is_upper" and is_upper.inputs == ("predictions",)
    assert (
        is_upper(np.array(["A", "b", "C", "D"])) == 0.75
    )  # bool counts as 0/1; references optional


def test_registry_names_and_errors(cleanup: list[str]) -> None:
    with pytest.raises(AlreadyExists):
        M.metric(lambda p, r: 1.0, name="accuracy")
    replaced = M.metric(lambda p, r: 1.0, name="tmp_metric")
    cleanup.append("tmp_metric")
    with pytest.raises(AlreadyExists):
        M.metric(lambda p, r: 2.0, name="tmp_metric")
    again = M.metric(lambda p, r: 2.0, name="tmp_metric", replace=True)
    assert M.get_metric("tmp_metric") is again is not replaced
    with pytest.raises(NotFound, match=r"known metrics: .*f1_macro"):
        M.get_metric("f2_macro")
    with pytest.raises(InvalidArgument, match="metric name"):
        M.metric(lambda p, r: 1.0, name="1bad name")
    with pytest.raises(InvalidArgument, match="aggregate"):
        M.metric(lambda p, r: 1.0, name="x1", aggregate="mode")
    with pytest.raises(InvalidArgument, match="kind"):
        M.metric(lambda p, r: 1.0, name="x2", kind="vibes")
    with pytest.raises(InvalidArgument, match="returned str"):
        M.metric(lambda p, r: "high", name="x3", register=False)([1], [1])
    with pytest.raises(InvalidArgument, match="no examples"):
        M.metric(lambda p, r: 1.0, name="x4", register=False)([], [])
    with pytest.raises(NotFound):
        M.unregister_metric("never_registered")


def test_builtin_metrics_by_name() -> None:
    names = {m.name for m in M.list_metrics()}
    for expected in (
        "accuracy",
        "f1",
        "f1_micro",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_weighted",
        "roc_auc",
        "average_precision",
        "pr_auc",
        "log_loss",
        "brier_score",
        "expected_calibration_error",
        "rmse",
        "mae",
        "r2",
        "mape",
        "mse",
        "bleu",
        "chrf",
        "rouge1",
        "rouge2",
        "rougeL",
        "exact_match",
        "token_f1",
        "embedding_similarity",
        "faithfulness",
        "answer_relevancy",
        "context_precision",
        "context_recall",
        "precision@k",
        "recall@k",
        "ndcg@k",
        "hit_rate@k",
        "mrr",
        "latency_p95",
        "latency_p99",
        "cost_per_request",
        "cost_per_1k_requests",
        "tokens_per_request",
    ):
        assert expected in names, expected
    y_true, y_pred = [0, 1, 2, 2, 1], [0, 2, 2, 2, 1]
    # registry order is (predictions, references); the plain functions take sklearn's (y_true, y_pred)
    assert M.get_metric("f1_macro")(y_pred, y_true) == M.f1(y_true, y_pred, average="macro")
    assert M.get_metric("recall_macro")(y_pred, y_true) != M.get_metric("recall_macro")(
        y_true, y_pred
    )
    assert M.get_metric("r2")([1.0, 2.0, 2.5], [1.0, 2.0, 3.0]) == M.r2(
        [1.0, 2.0, 3.0], [1.0, 2.0, 2.5]
    )
    kinds = {m.kind for m in M.list_metrics()}
    assert kinds == {"classification", "regression", "text", "retrieval", "ops"}
    assert not M.get_metric("log_loss").greater_is_better and M.get_metric("accuracy").range == (
        0.0,
        1.0,
    )
    assert M.get_metric("ndcg@5").params == {"k": 5} and M.get_metric("ndcg@5").name == "ndcg@5"
    assert all(m.kind == "text" for m in M.list_metrics(kind="text"))
    with pytest.raises(InvalidArgument, match="kind"):
        M.list_metrics(kind="nope")


def test_latency_cost_and_tokens() -> None:
    lat = list(range(1, 101))  # 1..100 ms
    stats = M.latency_stats(lat)
    assert (
        stats["count"] == 100
        and stats["mean"] == 50.5
        and stats["min"] == 1
        and stats["max"] == 100
    )
    assert stats["p50"] == pytest.approx(50.5) and stats["p90"] == pytest.approx(90.1)
    assert stats["p95"] == pytest.approx(95.05) and stats["p99"] == pytest.approx(99.01)
    assert M.percentile([10, 20], 50) == 15.0
    costs = M.token_cost([1000, 2000], [500, 0], input_per_million=3.0, output_per_million=15.0)
    assert costs == pytest.approx([0.0105, 0.006])
    cs = M.cost_stats(costs)
    assert cs["total"] == pytest.approx(0.0165) and cs["per_1k_requests"] == pytest.approx(8.25)
    ts = M.token_stats([1000, 2000], [500, 0])
    assert ts["total"] == 3500 and ts["per_request"] == 1750 and ts["completion_per_request"] == 250
    assert M.get_metric("latency_p95")(latency=lat) == pytest.approx(95.05)
    assert M.get_metric("cost_per_1k_requests")(cost=costs) == pytest.approx(8.25)
    assert M.get_metric("tokens_per_request")(tokens=[10, 30]) == 20
    with pytest.raises(InvalidArgument, match="negative"):
        M.latency_stats([1.0, -2.0])
    with pytest.raises(InvalidArgument, match="empty"):
        M.cost_stats([])
    with pytest.raises(InvalidArgument, match="q must"):
        M.percentile([1.0], 101)
    with pytest.raises(InvalidArgument, match="output_per_million"):
        M.token_cost([1], [1], input_per_million=1.0, output_per_million=-1.0)


def test_public_surface() -> None:
    import opsloop.evaluation as ev

    # opsloop.evaluation re-exports the metrics registry API (the same objects), next to
    # evaluation runs, comparison and gates.
    registry_api = {
        "JudgeError", "Metric", "MetricResult", "Rubric", "Verdict", "get_metric", "judge",
        "judge_metric", "list_metrics", "metric", "register_metric", "unregister_metric",
    }  # fmt: skip
    assert registry_api <= set(ev.__all__) and registry_api <= set(M.__all__)
    for name in registry_api:
        assert getattr(ev, name) is getattr(M, name)
    for name in M.__all__:
        assert getattr(M, name) is not None
        assert not name.startswith("_")
    assert "get_metric" in ev.__all__ and "metric" in ev.__all__
