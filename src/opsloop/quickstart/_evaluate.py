"""Scores and report files for one trained model (scikit-learn's own metrics)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

# Logged every epoch; `val_f1` is what the sweep ranks by.
EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_roc_auc",
)
RANK_METRIC = "val_f1"


def epoch_scores(y_train: Any, p_train: Any, y_val: Any, p_val: Any) -> dict[str, float]:
    """Loss, accuracy, precision, recall, F1 and ROC AUC from class-1 probabilities.

    Computed with numpy: the same definitions as scikit-learn's metrics (a
    test checks they agree), without their per-call input validation, which
    would cost more than the training itself at one call per metric per epoch.
    """
    import numpy as np

    y_val = np.asarray(y_val)
    pred_val = p_val >= 0.5
    tp = float(np.sum(pred_val & (y_val == 1)))
    fp = float(np.sum(pred_val & (y_val == 0)))
    fn = float(np.sum(~pred_val & (y_val == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "train_loss": _log_loss(y_train, p_train),
        "val_loss": _log_loss(y_val, p_val),
        "train_accuracy": float(np.mean((p_train >= 0.5) == (np.asarray(y_train) == 1))),
        "val_accuracy": float(np.mean(pred_val == (y_val == 1))),
        "val_precision": precision,
        "val_recall": recall,
        "val_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "val_roc_auc": _roc_auc(y_val, p_val),
    }


def _log_loss(y: Any, p: Any) -> float:
    import numpy as np

    # Clipped so a saturated model gives a large finite loss, as scikit-learn does.
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    y = np.asarray(y)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))


def _roc_auc(y: Any, score: Any) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half)."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(y)
    n_pos = int(np.sum(y == 1))
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((np.sum(ranks[y == 1]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion_matrix_csv(y_true: Any, p_val: Any, class_names: Sequence[str]) -> str:
    """The validation confusion matrix: one row per true class, one column per predicted."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, (p_val >= 0.5).astype(int), labels=[0, 1])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *class_names])
    for name, row in zip(class_names, cm.tolist(), strict=True):
        w.writerow([name, *row])
    return buf.getvalue()


def classification_report_text(y_true: Any, p_val: Any, class_names: Sequence[str]) -> str:
    from sklearn.metrics import classification_report

    report: str = classification_report(
        y_true, (p_val >= 0.5).astype(int), labels=[0, 1], target_names=list(class_names), digits=4
    )
    return report


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Dict rows as CSV, columns in first-seen order."""
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
