"""Evaluation metrics: classification, regression, text, LLM judge, retrieval, cost and latency.

Plain functions for direct use (``f1(y_true, y_pred, average="macro")``) and
a registry of named :class:`Metric` objects for evaluation runs
(``get_metric("f1_macro")(predictions, references)``). Classification and
regression metrics are numpy implementations that agree with scikit-learn;
BLEU/chrF and ROUGE call sacrebleu and rouge-score (extra ``eval``);
embedding similarity uses sentence-transformers (extra ``eval-embeddings``).
"""

from opsloop.evaluation.metrics._builtin import builtin_metrics
from opsloop.evaluation.metrics._classification import (
    PRFSupport,
    accuracy,
    confusion_matrix,
    f1,
    fbeta,
    precision,
    precision_recall_fscore,
    recall,
)
from opsloop.evaluation.metrics._embedding import (
    SentenceTransformerEmbedder,
    default_embedder,
    embedding_similarity,
    embedding_similarity_per_example,
    minilm_path,
)
from opsloop.evaluation.metrics._ir import (
    hit_rate_at_k,
    mean_reciprocal_rank,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)
from opsloop.evaluation.metrics._judge import (
    ChatModel,
    JudgeError,
    JudgeModel,
    Rubric,
    Verdict,
    ask_structured,
    extract_json,
    judge,
    judge_metric,
)
from opsloop.evaluation.metrics._ops import (
    cost_stats,
    latency_stats,
    percentile,
    token_cost,
    token_stats,
)
from opsloop.evaluation.metrics._probabilistic import (
    brier_score,
    calibration_curve,
    expected_calibration_error,
    log_loss,
    top_label_calibration_inputs,
)
from opsloop.evaluation.metrics._rag import (
    Support,
    answer_relevancy,
    claim_support,
    context_precision,
    context_recall,
    faithfulness,
    split_claims,
)
from opsloop.evaluation.metrics._ranking import (
    average_precision,
    pr_auc,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)
from opsloop.evaluation.metrics._registry import (
    Metric,
    MetricResult,
    get_metric,
    list_metrics,
    metric,
    register_metric,
    set_builtin_source,
    unregister_metric,
)
from opsloop.evaluation.metrics._regression import mae, mape, mse, r2, rmse
from opsloop.evaluation.metrics._text import (
    bleu,
    chrf,
    exact_match,
    exact_match_per_example,
    normalize_answer,
    rouge,
    rouge_per_example,
    sentence_bleu,
    sentence_chrf,
    token_f1,
    token_f1_per_example,
)

# The built-in metrics join the registry on its first use.
set_builtin_source(builtin_metrics)

__all__ = [
    "ChatModel",
    "JudgeError",
    "JudgeModel",
    "Metric",
    "MetricResult",
    "PRFSupport",
    "Rubric",
    "SentenceTransformerEmbedder",
    "Support",
    "Verdict",
    "accuracy",
    "answer_relevancy",
    "ask_structured",
    "average_precision",
    "bleu",
    "brier_score",
    "calibration_curve",
    "chrf",
    "claim_support",
    "confusion_matrix",
    "context_precision",
    "context_recall",
    "cost_stats",
    "default_embedder",
    "embedding_similarity",
    "embedding_similarity_per_example",
    "exact_match",
    "exact_match_per_example",
    "expected_calibration_error",
    "extract_json",
    "f1",
    "faithfulness",
    "fbeta",
    "get_metric",
    "hit_rate_at_k",
    "judge",
    "judge_metric",
    "latency_stats",
    "list_metrics",
    "log_loss",
    "mae",
    "mape",
    "mean_reciprocal_rank",
    "metric",
    "minilm_path",
    "mse",
    "ndcg_at_k",
    "normalize_answer",
    "percentile",
    "pr_auc",
    "precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_recall_fscore",
    "r2",
    "recall",
    "recall_at_k",
    "reciprocal_rank",
    "register_metric",
    "rmse",
    "roc_auc",
    "roc_curve",
    "rouge",
    "rouge_per_example",
    "sentence_bleu",
    "sentence_chrf",
    "split_claims",
    "token_cost",
    "token_f1",
    "token_f1_per_example",
    "token_stats",
    "top_label_calibration_inputs",
    "unregister_metric",
]
