"""The metrics every registry starts with, wrapped to the ``(predictions, references, **inputs)`` convention.

Classification and regression metrics take ``predictions`` (labels, or
scores/probabilities for the ranking and probabilistic ones) and
``references`` (true labels or values). Retrieval metrics take the ranked
retrieval as ``predictions`` and the relevant ids, or a reference answer, as
``references``. Ops metrics read the ``latency``, ``cost`` or ``tokens`` input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opsloop.evaluation.metrics import (
    _classification as cls,
)
from opsloop.evaluation.metrics import (
    _embedding as emb,
)
from opsloop.evaluation.metrics import (
    _ir as ir,
)
from opsloop.evaluation.metrics import (
    _ops as ops,
)
from opsloop.evaluation.metrics import (
    _probabilistic as prob,
)
from opsloop.evaluation.metrics import (
    _rag as rag,
)
from opsloop.evaluation.metrics import (
    _ranking as rank,
)
from opsloop.evaluation.metrics import (
    _regression as reg,
)
from opsloop.evaluation.metrics import (
    _text as text,
)
from opsloop.evaluation.metrics._registry import Metric

UNIT = (0.0, 1.0)


def _swap(fn: Callable[..., Any], **fixed: Any) -> Callable[..., Any]:
    """sklearn order is (y_true, y_pred); registry order is (predictions, references)."""

    def run(predictions: Any, references: Any, **kw: Any) -> Any:
        return fn(references, predictions, **fixed, **kw)

    run.__doc__ = fn.__doc__
    return run


def _whole(
    name: str,
    fn: Callable[..., Any],
    kind: Any,
    desc: str,
    *,
    better: bool = True,
    rng: tuple[float | None, float | None] = UNIT,
    inputs: tuple[str, ...] = ("predictions", "references"),
) -> Metric:
    return Metric(name, fn, better, None, kind, rng, inputs, desc)


def _each(
    name: str,
    fn: Callable[..., Any],
    kind: Any,
    desc: str,
    *,
    better: bool = True,
    rng: tuple[float | None, float | None] = UNIT,
    inputs: tuple[str, ...] = ("predictions", "references"),
) -> Metric:
    return Metric(name, fn, better, "mean", kind, rng, inputs, desc)


def _classification() -> list[Metric]:
    out = [
        _whole("accuracy", _swap(cls.accuracy), "classification", "Share of exactly right labels."),
        _whole(
            "roc_auc",
            _swap(rank.roc_auc),
            "classification",
            "ROC AUC; predictions are scores (1-D binary, or one probability column per class: one-vs-rest macro).",
        ),
        _whole(
            "average_precision",
            _swap(rank.average_precision),
            "classification",
            "Average precision (step area under the precision-recall curve); predictions are scores.",
        ),
        _whole("pr_auc", _swap(rank.pr_auc), "classification", "Same as average_precision."),
        _whole(
            "log_loss",
            _swap(prob.log_loss),
            "classification",
            "Cross-entropy; predictions are probabilities.",
            better=False,
            rng=(0.0, None),
        ),
        _whole(
            "brier_score",
            _swap(prob.brier_score),
            "classification",
            "Mean squared probability error; predictions are probabilities.",
            better=False,
        ),
        _whole(
            "expected_calibration_error",
            _swap(prob.expected_calibration_error),
            "classification",
            "Support-weighted gap between predicted probability and observed frequency (10 uniform bins).",
            better=False,
        ),
    ]
    for base, fn in (("precision", cls.precision), ("recall", cls.recall), ("f1", cls.f1)):
        out.append(
            _whole(
                base, _swap(fn, average="binary"), "classification", f"Binary {base} of label 1."
            )
        )
        for avg in ("micro", "macro", "weighted"):
            out.append(
                _whole(
                    f"{base}_{avg}",
                    _swap(fn, average=avg),
                    "classification",
                    f"{avg.title()}-averaged {base}.",
                )
            )
    return out


def _regression() -> list[Metric]:
    return [
        _whole(
            "mse",
            _swap(reg.mse),
            "regression",
            "Mean squared error.",
            better=False,
            rng=(0.0, None),
        ),
        _whole(
            "rmse",
            _swap(reg.rmse),
            "regression",
            "Root mean squared error.",
            better=False,
            rng=(0.0, None),
        ),
        _whole(
            "mae",
            _swap(reg.mae),
            "regression",
            "Mean absolute error.",
            better=False,
            rng=(0.0, None),
        ),
        _whole(
            "mape",
            _swap(reg.mape),
            "regression",
            "Mean absolute percentage error, as a fraction.",
            better=False,
            rng=(0.0, None),
        ),
        _whole("r2", _swap(reg.r2), "regression", "Coefficient of determination.", rng=(None, 1.0)),
    ]


def _rouge(kind: str) -> Callable[..., float]:
    def run(prediction: str, reference: Any, *, use_stemmer: bool = False) -> float:
        row = text.rouge_per_example(
            [prediction], [reference], types=(kind,), use_stemmer=use_stemmer
        )
        return row[0][kind]["fmeasure"]

    return run


def _text() -> list[Metric]:
    return [
        _whole("bleu", text.bleu, "text", "Corpus BLEU (sacrebleu, 0-100).", rng=(0.0, 100.0)),
        _whole("chrf", text.chrf, "text", "Corpus chrF (sacrebleu, 0-100).", rng=(0.0, 100.0)),
        _whole(
            "chrf++",
            lambda p, r, **kw: text.chrf(p, r, word_order=2, **kw),
            "text",
            "Corpus chrF++ (word bigrams too; sacrebleu, 0-100).",
            rng=(0.0, 100.0),
        ),
        _each("rouge1", _rouge("rouge1"), "text", "ROUGE-1 F-measure (rouge-score)."),
        _each("rouge2", _rouge("rouge2"), "text", "ROUGE-2 F-measure (rouge-score)."),
        _each("rougeL", _rouge("rougeL"), "text", "ROUGE-L F-measure (rouge-score)."),
        _each(
            "exact_match",
            lambda p, r: text.exact_match_per_example([p], [r])[0],
            "text",
            "Match after SQuAD normalisation.",
        ),
        _each(
            "contains",
            lambda p, r: text.contains_per_example([p], [r])[0],
            "text",
            "A reference answer appears in the prediction (SQuAD-normalised, whole words).",
        ),
        _each(
            "token_f1",
            lambda p, r: text.token_f1_per_example([p], [r])[0],
            "text",
            "SQuAD token F1.",
        ),
        _each(
            "json_valid",
            lambda p, r: text.json_valid(p),
            "text",
            "The prediction is JSON (structured outputs).",
            inputs=("predictions",),
        ),
        _each(
            "schema_valid",
            lambda p, r, *, schema: text.schema_valid(p, schema),
            "text",
            "The prediction is JSON valid against the row's JSON schema (input `schema`).",
            inputs=("predictions", "schema"),
        ),
        _whole(
            "embedding_similarity",
            emb.embedding_similarity,
            "text",
            "Mean cosine similarity of prediction and reference embeddings (MiniLM by default).",
            rng=(-1.0, 1.0),
        ),
    ]


def _retrieval() -> list[Metric]:
    def faith(prediction: str, reference: Any, *, contexts: Any, **kw: Any) -> float:
        return rag.faithfulness(prediction, contexts, **kw)

    def relevancy(prediction: str, reference: Any, *, question: str, **kw: Any) -> float:
        return rag.answer_relevancy(question, prediction, **kw)

    def ctx(fn: Callable[..., float]) -> Callable[..., float]:
        def run(prediction: Any, reference: Any, **kw: Any) -> float:
            if isinstance(reference, str):
                return fn(prediction, reference=reference, **kw)
            return fn(prediction, relevant_ids=reference, **kw)

        return run

    def ranked(fn: Callable[..., float]) -> Callable[..., float]:
        def run(prediction: Any, reference: Any, *, k: int = 10) -> float:
            return fn(prediction, reference, k)

        return run

    return [
        _each(
            "faithfulness",
            faith,
            "retrieval",
            "Share of answer claims the contexts support.",
            inputs=("predictions", "contexts"),
        ),
        _each(
            "answer_relevancy",
            relevancy,
            "retrieval",
            "How well the answer addresses the question.",
            inputs=("predictions", "question"),
        ),
        _each(
            "context_precision",
            ctx(rag.context_precision),
            "retrieval",
            "Ranking-aware precision of retrieved contexts (references: relevant ids or a reference answer).",
        ),
        _each(
            "context_recall",
            ctx(rag.context_recall),
            "retrieval",
            "Share of the needed ids or reference sentences that retrieval covered.",
        ),
        _each(
            "precision@k",
            ranked(ir.precision_at_k),
            "retrieval",
            "Relevant ids in the top k, over k (k=10).",
        ),
        _each(
            "recall@k",
            ranked(ir.recall_at_k),
            "retrieval",
            "Share of relevant ids in the top k (k=10).",
        ),
        _each(
            "hit_rate@k",
            ranked(ir.hit_rate_at_k),
            "retrieval",
            "Any relevant id in the top k (k=10).",
        ),
        _each(
            "ndcg@k",
            ranked(ir.ndcg_at_k),
            "retrieval",
            "Normalised discounted cumulative gain at k (k=10).",
        ),
        _each(
            "mrr",
            lambda p, r: ir.reciprocal_rank(p, r),
            "retrieval",
            "Mean reciprocal rank of the first relevant id.",
        ),
    ]


def _ops() -> list[Metric]:
    def lat(key: str) -> Callable[..., float]:
        return lambda predictions, references, *, latency: ops.latency_stats(latency)[key]

    def cost(key: str) -> Callable[..., float]:
        return lambda predictions, references, *, cost: ops.cost_stats(cost)[key]

    out = [
        _whole(
            f"latency_{key}",
            lat(key),
            "ops",
            f"Request latency, {key} (caller's unit).",
            better=False,
            rng=(0.0, None),
            inputs=("latency",),
        )
        for key in ("mean", "p50", "p90", "p95", "p99", "max")
    ]
    out += [
        _whole(
            f"cost_{key}",
            cost(key),
            "ops",
            f"Cost {key.replace('_', ' ')} (caller's currency).",
            better=False,
            rng=(0.0, None),
            inputs=("cost",),
        )
        for key in ("total", "per_request", "per_1k_requests")
    ]
    out.append(
        _whole(
            "tokens_per_request",
            lambda predictions, references, *, tokens: ops.token_stats(tokens)["per_request"],
            "ops",
            "Mean tokens per request.",
            better=False,
            rng=(0.0, None),
            inputs=("tokens",),
        )
    )
    return out


def builtin_metrics() -> list[Metric]:
    """Every built-in metric, fresh."""
    return _classification() + _regression() + _text() + _retrieval() + _ops()
