"""Label-based classification metrics in numpy, defined as scikit-learn defines them.

Every function here agrees with its ``sklearn.metrics`` namesake on the same
inputs (the tests check that on random and edge-case vectors) without
importing scikit-learn. Where sklearn would *warn* about an undefined value
(precision with no predicted samples, and so on) we return ``zero_division``
quietly: the caller chose that value.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import (
    as_labels,
    choice,
    compatible_labels,
    same_length,
    sample_weights,
)

AVERAGES = ("binary", "micro", "macro", "weighted", None)


class PRFSupport(NamedTuple):
    """Precision, recall, F-beta and support: floats when averaged, else ``{label: value}``."""

    precision: Any
    recall: Any
    fscore: Any
    support: Any


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    same_length(("y_true", t), ("y_pred", p))
    compatible_labels(t, p)
    return t, p


def _label_array(labels: Any, like: np.ndarray) -> np.ndarray:
    arr = as_labels(labels, "labels")
    compatible_labels(arr, like)
    if len(np.unique(arr)) != len(arr):
        raise InvalidArgument("labels must not repeat")
    return arr


def _index_of(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each value in ``labels`` (any order), or -1 where it is not there."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    pos = np.searchsorted(ordered, values)
    pos_clipped = np.minimum(pos, len(labels) - 1)
    found = (pos < len(labels)) & (ordered[pos_clipped] == values)
    return np.where(found, order[pos_clipped], -1)


def _py(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def accuracy(
    y_true: Any, y_pred: Any, *, normalize: bool = True, sample_weight: Any = None
) -> float:
    """Share (or with ``normalize=False`` the weighted count) of exactly right labels."""
    t, p = _pair(y_true, y_pred)
    w = sample_weights(sample_weight, len(t))
    right = (t == p).astype(np.float64)
    if not normalize:
        return float(right.sum() if w is None else (right * w).sum())
    return float(np.average(right, weights=w))


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any = None,
    sample_weight: Any = None,
    normalize: str | None = None,
) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``labels[i]`` predicted as ``labels[j]``.

    ``labels`` fixes the order (and selects a subset: samples whose true or
    predicted label is outside it are left out); by default it is the sorted
    union of both inputs. ``normalize`` is ``"true"`` (rows sum to 1),
    ``"pred"`` (columns) or ``"all"``; an all-zero row or column stays zero.
    """
    t, p = _pair(y_true, y_pred)
    w = sample_weights(sample_weight, len(t))
    choice(normalize, "normalize", ("true", "pred", "all", None))
    if labels is None:
        lab = np.union1d(t, p)
    else:
        lab = _label_array(labels, t)
        if not np.isin(lab, t).any():
            raise InvalidArgument("at least one of labels must occur in y_true")
    n = len(lab)
    ti, pi = _index_of(t, lab), _index_of(p, lab)
    keep = (ti >= 0) & (pi >= 0)
    weights = None if w is None else w[keep]
    cm = np.bincount(ti[keep] * n + pi[keep], weights=weights, minlength=n * n).reshape(n, n)
    if w is None:
        cm = cm.astype(np.int64)
    if normalize is None:
        return cm
    cm = cm.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            cm = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            cm = cm / cm.sum(axis=0, keepdims=True)
        else:
            cm = cm / cm.sum()
    return np.asarray(np.nan_to_num(cm), dtype=np.float64)


def _zero_division_value(zero_division: Any) -> float:
    if isinstance(zero_division, bool) or not isinstance(zero_division, int | float):
        raise InvalidArgument(f"zero_division must be 0, 1 or nan, got {zero_division!r}")
    value = float(zero_division)
    if not (value in (0.0, 1.0) or math.isnan(value)):
        raise InvalidArgument(f"zero_division must be 0, 1 or nan, got {zero_division!r}")
    return value


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    zero = den == 0
    out = num / np.where(zero, 1.0, den)
    out[zero] = zero_division
    return out


def _nanaverage(values: np.ndarray, weights: np.ndarray | None) -> float:
    # sklearn's _nanaverage: NaN (zero_division=nan) entries drop out of the mean
    mask = np.isnan(values)
    if mask.all():
        return math.nan
    if weights is None:
        return float(values[~mask].mean())
    kept_w = weights[~mask]
    if kept_w.sum() == 0:  # every class without support: plain mean, as sklearn does
        return float(values[~mask].mean())
    return float(np.average(values[~mask], weights=kept_w))


def precision_recall_fscore(
    y_true: Any,
    y_pred: Any,
    *,
    beta: float = 1.0,
    average: str | None = "binary",
    labels: Any = None,
    pos_label: Any = 1,
    zero_division: float = 0.0,
    sample_weight: Any = None,
) -> PRFSupport:
    """Precision, recall, F-beta and support, like ``sklearn.metrics.precision_recall_fscore_support``.

    ``average``: ``"binary"`` scores ``pos_label`` alone (inputs must hold at
    most two classes); ``"micro"`` pools every decision; ``"macro"`` is the
    plain mean over classes; ``"weighted"`` weights classes by support;
    ``None`` answers ``{label: value}`` per class. ``labels`` picks and orders
    the classes (default: sorted union of both inputs). A ratio whose
    denominator is zero is ``zero_division`` (0, 1 or nan; nan entries are left
    out of averages). Support is ``None`` when averaged, as in sklearn.
    """
    t, p = _pair(y_true, y_pred)
    w = sample_weights(sample_weight, len(t))
    choice(average, "average", AVERAGES)
    zd = _zero_division_value(zero_division)
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta >= 0:
        raise InvalidArgument(f"beta must be a number >= 0, got {beta!r}")
    present = np.union1d(t, p)
    if average == "binary":
        if len(present) > 2:
            raise InvalidArgument(
                f"y holds {len(present)} classes but average='binary'; "
                "choose average='micro', 'macro', 'weighted' or None"
            )
        if pos_label not in present.tolist() and len(present) >= 2:
            raise InvalidArgument(
                f"pos_label={pos_label!r} is not a label here; it should be one of {present.tolist()}"
            )
        lab = np.asarray([pos_label])
        compatible_labels(lab, t)
    elif labels is None:
        lab = present
    else:
        lab = _label_array(labels, t)

    ti, pi = _index_of(t, lab), _index_of(p, lab)
    weights = np.ones(len(t)) if w is None else w
    n = len(lab)
    hit = (ti == pi) & (ti >= 0)
    tp = np.bincount(ti[hit], weights=weights[hit], minlength=n)
    pred_sum = np.bincount(pi[pi >= 0], weights=weights[pi >= 0], minlength=n)
    true_sum = np.bincount(ti[ti >= 0], weights=weights[ti >= 0], minlength=n)
    support = true_sum
    if average == "micro":
        tp, pred_sum, true_sum = (
            tp.sum(keepdims=True),
            pred_sum.sum(keepdims=True),
            true_sum.sum(keepdims=True),
        )

    precision = _divide(tp, pred_sum, zd)
    recall = _divide(tp, true_sum, zd)
    if math.isinf(beta):
        fscore = recall
    elif beta == 0:
        fscore = precision
    else:
        b2 = float(beta) ** 2
        fscore = _divide((1 + b2) * tp, b2 * true_sum + pred_sum, zd)

    if average is None:
        keys = [_py(x) for x in lab]
        sup = support if w is not None else support.astype(np.int64)
        return PRFSupport(
            dict(zip(keys, precision.tolist(), strict=True)),
            dict(zip(keys, recall.tolist(), strict=True)),
            dict(zip(keys, fscore.tolist(), strict=True)),
            dict(zip(keys, sup.tolist(), strict=True)),
        )
    avg_w = true_sum if average == "weighted" else None
    return PRFSupport(
        _nanaverage(precision, avg_w), _nanaverage(recall, avg_w), _nanaverage(fscore, avg_w), None
    )


def precision(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """Precision (``tp / (tp + fp)``); keywords as for :func:`precision_recall_fscore`."""
    return precision_recall_fscore(y_true, y_pred, **kwargs).precision


def recall(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """Recall (``tp / (tp + fn)``); keywords as for :func:`precision_recall_fscore`."""
    return precision_recall_fscore(y_true, y_pred, **kwargs).recall


def f1(y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
    """F1, the harmonic mean of precision and recall; keywords as for :func:`precision_recall_fscore`."""
    return precision_recall_fscore(y_true, y_pred, beta=1.0, **kwargs).fscore


def fbeta(y_true: Any, y_pred: Any, *, beta: float, **kwargs: Any) -> Any:
    """F-beta (recall weighted ``beta`` times as much as precision)."""
    return precision_recall_fscore(y_true, y_pred, beta=beta, **kwargs).fscore
