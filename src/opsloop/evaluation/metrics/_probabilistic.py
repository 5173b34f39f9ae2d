"""Metrics on predicted probabilities: log loss, Brier score, calibration.

``log_loss``, ``brier_score`` and ``calibration_curve`` match scikit-learn's
``log_loss``, ``brier_score_loss`` and ``sklearn.calibration.calibration_curve``.
``expected_calibration_error`` is the support-weighted mean gap between
observed frequency and mean predicted probability over the same bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import (
    as_float_array,
    as_labels,
    choice,
    compatible_labels,
    positive_int,
    probabilities,
    same_length,
    sample_weights,
)


def _one_hot(t: np.ndarray, labels: Any, n_cols: int) -> np.ndarray:
    if labels is None:
        classes = np.unique(t)
        if len(classes) < 2:
            raise InvalidArgument(
                f"y_true holds only one label ({classes[0].item()!r}); "
                "pass labels= with every class"
            )
    else:
        classes = as_labels(labels, "labels")
        compatible_labels(classes, t)
        if len(np.unique(classes)) != len(classes):
            raise InvalidArgument("labels must not repeat")
        if len(classes) < 2:
            raise InvalidArgument("labels must name at least two classes")
        if not np.isin(t, classes).all():
            raise InvalidArgument("y_true holds labels that are not in labels")
    if len(classes) != n_cols:
        raise InvalidArgument(
            f"{len(classes)} classes but y_prob has {n_cols} columns; pass labels= to name them"
        )
    return np.asarray(t[:, None] == classes[None, :], dtype=np.float64)


def _prob_matrix(y_prob: Any) -> np.ndarray:
    p = as_float_array(y_prob, "y_prob", ndim=(1, 2))
    probabilities(p, "y_prob")
    if p.ndim == 1:
        p = p[:, None]
    if p.shape[1] == 1:
        p = np.hstack([1 - p, p])
    return p


def log_loss(
    y_true: Any,
    y_prob: Any,
    *,
    labels: Any = None,
    normalize: bool = True,
    sample_weight: Any = None,
) -> float:
    """Cross-entropy of true labels under predicted probabilities (natural log).

    ``y_prob`` is 1-D (probability of the greater of two labels) or has one
    column per class, in the order of ``labels`` (default: sorted labels of
    ``y_true``). Probabilities are clipped to ``[eps, 1 - eps]`` with float64's
    machine epsilon, as sklearn does; rows must sum to 1.
    """
    t = as_labels(y_true, "y_true")
    p = _prob_matrix(y_prob)
    same_length(("y_true", t), ("y_prob", p))
    w = sample_weights(sample_weight, len(t))
    if not np.allclose(p.sum(axis=1), 1.0, rtol=np.sqrt(np.finfo(np.float64).eps), atol=0):
        raise InvalidArgument("each row of y_prob must sum to 1 (pass probabilities)")
    y = _one_hot(t, labels, p.shape[1])
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    loss = -(y * np.log(p)).sum(axis=1)
    if not normalize:
        return float(loss.sum() if w is None else (loss * w).sum())
    return float(np.average(loss, weights=w))


def _binary_truth(t: np.ndarray, pos_label: Any) -> np.ndarray:
    classes = np.unique(t)
    if len(classes) > 2:
        raise InvalidArgument(f"only binary labels are supported here, got {len(classes)} classes")
    if pos_label is None:
        if len(classes) == 2:
            return np.asarray(t == classes[-1], dtype=np.float64)
        return np.full(len(t), 1.0 if classes[0].dtype.kind in "biuf" and classes[0] == 1 else 0.0)
    compatible_labels(np.asarray([pos_label]), t)
    return np.asarray(t == pos_label, dtype=np.float64)


def brier_score(
    y_true: Any,
    y_prob: Any,
    *,
    pos_label: Any = None,
    labels: Any = None,
    sample_weight: Any = None,
) -> float:
    """Mean squared gap between predicted probability and outcome (lower is better).

    1-D ``y_prob``: probability of ``pos_label`` (default the greater label),
    ``mean((y - p)**2)``. 2-D: one column per class (``labels`` order), the
    sum over classes of squared gaps, halved for two columns, as sklearn's
    ``brier_score_loss`` does.
    """
    t = as_labels(y_true, "y_true")
    raw = as_float_array(y_prob, "y_prob", ndim=(1, 2))
    probabilities(raw, "y_prob")
    same_length(("y_true", t), ("y_prob", raw))
    w = sample_weights(sample_weight, len(t))
    if raw.ndim == 1 or raw.shape[1] == 1:
        y = _binary_truth(t, pos_label)
        return float(np.average((y - raw.reshape(-1)) ** 2, weights=w))
    y = _one_hot(t, labels, raw.shape[1])
    score = float(np.average(((y - raw) ** 2).sum(axis=1), weights=w))
    return score / 2 if raw.shape[1] == 2 else score


def _bins(
    y_true: Any, y_prob: Any, pos_label: Any, n_bins: int, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = as_labels(y_true, "y_true")
    p = as_float_array(y_prob, "y_prob")
    same_length(("y_true", t), ("y_prob", p))
    probabilities(p, "y_prob")
    positive_int(n_bins, "n_bins")
    choice(strategy, "strategy", ("uniform", "quantile"))
    y = _binary_truth(t, pos_label)
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    sums = np.bincount(ids, weights=p, minlength=n_bins)
    trues = np.bincount(ids, weights=y, minlength=n_bins)
    totals = np.bincount(ids, minlength=n_bins)
    return sums, trues, totals


def calibration_curve(
    y_true: Any,
    y_prob: Any,
    *,
    pos_label: Any = None,
    n_bins: int = 5,
    strategy: str = "uniform",
) -> tuple[np.ndarray, np.ndarray]:
    """Reliability curve ``(prob_true, prob_pred)`` over non-empty bins.

    ``prob_true`` is the share of positives and ``prob_pred`` the mean
    predicted probability in each bin; bins are ``n_bins`` equal widths of
    [0, 1] (``"uniform"``) or equal-count quantiles of ``y_prob``
    (``"quantile"``), as in ``sklearn.calibration.calibration_curve``.
    """
    sums, trues, totals = _bins(y_true, y_prob, pos_label, n_bins, strategy)
    nz = totals != 0
    return trues[nz] / totals[nz], sums[nz] / totals[nz]


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    pos_label: Any = None,
    n_bins: int = 10,
    strategy: str = "uniform",
) -> float:
    """Expected calibration error: ``sum_b n_b / n * |prob_true_b - prob_pred_b|``.

    Binary, over the bins of :func:`calibration_curve`. For a multi-class
    model pass ``y_true = (argmax == label)`` and ``y_prob = max probability``
    to get the usual top-label ECE (see :func:`top_label_calibration_inputs`).
    """
    sums, trues, totals = _bins(y_true, y_prob, pos_label, n_bins, strategy)
    nz = totals != 0
    gaps = np.abs(trues[nz] / totals[nz] - sums[nz] / totals[nz])
    return float((totals[nz] / totals.sum() * gaps).sum())


def top_label_calibration_inputs(
    y_true: Any, y_prob: Any, *, labels: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(correct, confidence)`` of a multi-class model, ready for the binary calibration metrics."""
    t = as_labels(y_true, "y_true")
    p = as_float_array(y_prob, "y_prob", ndim=(2,))
    probabilities(p, "y_prob")
    same_length(("y_true", t), ("y_prob", p))
    classes = np.unique(t) if labels is None else as_labels(labels, "labels")
    compatible_labels(classes, t)
    if len(classes) != p.shape[1]:
        raise InvalidArgument(
            f"{len(classes)} classes but y_prob has {p.shape[1]} columns; pass labels= to name them"
        )
    correct = (classes[p.argmax(axis=1)] == t).astype(np.int64)
    return correct, p.max(axis=1)
