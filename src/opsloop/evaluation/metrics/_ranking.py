"""Score-based classification metrics: ROC and precision-recall curves and their areas.

Definitions follow scikit-learn exactly (``roc_curve``, ``roc_auc_score``,
``precision_recall_curve``, ``average_precision_score``): thresholds at every
distinct score, ties broken as one step, ROC area by the trapezoid rule, and
average precision as the step sum ``sum((R[n] - R[n-1]) * P[n])`` with no
interpolation. Undefined cases (a single class in ``y_true``) raise
``InvalidArgument`` instead of warning and answering NaN.
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
    same_length,
    sample_weights,
)


def _binary_truth(y_true: np.ndarray, pos_label: Any) -> np.ndarray:
    classes = np.unique(y_true)
    if len(classes) > 2:
        raise InvalidArgument(
            f"y_true holds {len(classes)} classes; pass 2-D y_score for a multi-class metric"
        )
    if pos_label is None:
        # sklearn's label_binarize convention: the greater label is the positive one
        if len(classes) == 2:
            return np.asarray(y_true == classes[-1], dtype=np.float64)
        # one class only: it is the positive one when it is 1, else there is none
        only_positive = classes[0].dtype.kind in "biuf" and classes[0] == 1
        return np.full(len(y_true), 1.0 if only_positive else 0.0)
    compatible_labels(np.asarray([pos_label]), y_true)
    if len(classes) == 2 and pos_label not in classes.tolist():
        raise InvalidArgument(
            f"pos_label={pos_label!r} is not a label here; it should be one of {classes.tolist()}"
        )
    return np.asarray(y_true == pos_label, dtype=np.float64)


def _clf_curve(
    truth: np.ndarray, score: np.ndarray, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative false and true positives at each distinct threshold (descending)."""
    if weight is not None:
        keep = weight != 0
        truth, score, weight = truth[keep], score[keep], weight[keep]
    order = np.argsort(score, kind="stable")[::-1]
    score, truth = score[order], truth[order]
    w = 1.0 if weight is None else weight[order]
    distinct = np.nonzero(np.diff(score))[0]
    idx = np.r_[distinct, truth.size - 1]
    tps = np.cumsum(truth * w)[idx]
    fps = np.cumsum((1 - truth) * w)[idx] if weight is not None else 1 + idx - tps
    return fps, tps, score[idx]


def _binary_inputs(
    y_true: Any, y_score: Any, sample_weight: Any, pos_label: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = as_labels(y_true, "y_true")
    s = as_float_array(y_score, "y_score", ndim=(1, 2))
    same_length(("y_true", t), ("y_score", s))
    if s.ndim == 2:
        if s.shape[1] != 2:
            raise InvalidArgument(f"binary y_score must be 1-D (or 2 columns), got shape {s.shape}")
        s = s[:, 1]
    return _binary_truth(t, pos_label), s, sample_weights(sample_weight, len(t))


def roc_curve(
    y_true: Any,
    y_score: Any,
    *,
    pos_label: Any = None,
    sample_weight: Any = None,
    drop_intermediate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` of a binary scorer; the first threshold is ``inf``."""
    truth, score, w = _binary_inputs(y_true, y_score, sample_weight, pos_label)
    return _roc(truth, score, w, drop_intermediate)


def _roc(
    truth: np.ndarray, score: np.ndarray, w: np.ndarray | None, drop: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fps, tps, thr = _clf_curve(truth, score, w)
    if drop and len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thr = np.r_[np.inf, thr]
    if fps[-1] <= 0 or tps[-1] <= 0:
        raise InvalidArgument(
            "only one class is present in y_true; ROC AUC is not defined in that case"
        )
    return fps / fps[-1], tps / tps[-1], thr


def _binary_auc(truth: np.ndarray, score: np.ndarray, w: np.ndarray | None) -> float:
    fpr, tpr, _ = _roc(truth, score, w)
    return float(np.trapezoid(tpr, fpr))


def precision_recall_curve(
    y_true: Any, y_score: Any, *, pos_label: Any = None, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)``: recall decreasing, ending at precision 1, recall 0."""
    truth, score, w = _binary_inputs(y_true, y_score, sample_weight, pos_label)
    return _pr(truth, score, w)


def _pr(
    truth: np.ndarray, score: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fps, tps, thr = _clf_curve(truth, score, w)
    if tps[-1] <= 0:
        raise InvalidArgument("no positive sample in y_true; precision-recall is not defined")
    ps = tps + fps
    prec = np.where(ps != 0, tps / np.where(ps != 0, ps, 1.0), 0.0)
    rec = tps / tps[-1]
    return np.r_[prec[::-1], 1.0], np.r_[rec[::-1], 0.0], thr[::-1]


def _binary_ap(truth: np.ndarray, score: np.ndarray, w: np.ndarray | None) -> float:
    prec, rec, _ = _pr(truth, score, w)
    return float(max(0.0, -np.sum(np.diff(rec) * prec[:-1])))


def _one_vs_rest(
    t: np.ndarray, s: np.ndarray, labels: Any, *, check_sum: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One indicator column per class, in the column order of ``y_score``."""
    if labels is None:
        classes = np.unique(t)
        if len(classes) != s.shape[1]:
            raise InvalidArgument(
                f"y_true holds {len(classes)} classes but y_score has {s.shape[1]} columns; "
                "pass labels= to name the columns"
            )
    else:
        classes = as_labels(labels, "labels")
        compatible_labels(classes, t)
        if len(np.unique(classes)) != len(classes):
            raise InvalidArgument("labels must not repeat")
        if not np.array_equal(np.sort(classes), classes):
            raise InvalidArgument("labels must be sorted, as the columns of y_score are")
        if len(classes) != s.shape[1]:
            raise InvalidArgument(f"{len(classes)} labels but y_score has {s.shape[1]} columns")
        if not np.isin(t, classes).all():
            raise InvalidArgument("y_true holds labels that are not in labels")
    if check_sum and not np.allclose(1, s.sum(axis=1)):
        raise InvalidArgument(
            "multi-class ROC AUC needs probabilities: each row of y_score must sum to 1"
        )
    return (t[:, None] == classes[None, :]).astype(np.float64), classes


def _average(
    scorer: Any,
    y: np.ndarray,
    s: np.ndarray,
    w: np.ndarray | None,
    average: str | None,
    classes: np.ndarray,
) -> Any:
    if average == "micro":
        ww = None if w is None else np.repeat(w, y.shape[1])
        return scorer(y.ravel(), s.ravel(), ww)
    for j in range(y.shape[1]):
        col = y[:, j] if w is None else y[w > 0, j]
        if col.min() == col.max():
            raise InvalidArgument(
                f"class {classes[j].item()!r} has only positive or only negative samples; "
                "its one-vs-rest score is not defined"
            )
    per_class = np.array([scorer(y[:, j], s[:, j], w) for j in range(y.shape[1])])
    if average is None:
        return {c.item(): float(v) for c, v in zip(classes, per_class, strict=True)}
    if average == "weighted":
        support = y.sum(axis=0) if w is None else (y * w[:, None]).sum(axis=0)
        return float(np.average(per_class, weights=support))
    return float(per_class.mean())


def roc_auc(
    y_true: Any,
    y_score: Any,
    *,
    average: str | None = "macro",
    labels: Any = None,
    sample_weight: Any = None,
    pos_label: Any = None,
) -> Any:
    """Area under the ROC curve, like ``sklearn.metrics.roc_auc_score``.

    Binary: ``y_score`` is 1-D (the positive class's score; the greater label
    is positive unless ``pos_label`` says otherwise) or has 2 columns.
    Multi-class: ``y_score`` has one probability column per class (sorted
    labels, or ``labels``) and the answer is one-vs-rest, averaged by
    ``average`` (``"macro"``, ``"weighted"``, ``"micro"`` or ``None`` for
    ``{label: auc}``).
    """
    t = as_labels(y_true, "y_true")
    s = as_float_array(y_score, "y_score", ndim=(1, 2))
    same_length(("y_true", t), ("y_score", s))
    w = sample_weights(sample_weight, len(t))
    if (s.ndim == 2 and s.shape[1] > 2) or len(np.unique(t)) > 2:
        choice(average, "average", ("macro", "weighted", "micro", None))
        if s.ndim != 2:
            raise InvalidArgument(
                "y_true holds more than two classes: y_score needs one column per class"
            )
        y, classes = _one_vs_rest(t, s, labels, check_sum=True)
        return _average(_binary_auc, y, s, w, average, classes)
    truth, score, w = _binary_inputs(t, s, w, pos_label)
    return _binary_auc(truth, score, w)


def average_precision(
    y_true: Any,
    y_score: Any,
    *,
    average: str | None = "macro",
    pos_label: Any = None,
    sample_weight: Any = None,
) -> Any:
    """Average precision (area under the precision-recall step curve, no interpolation).

    Like ``sklearn.metrics.average_precision_score``. Binary: ``pos_label``
    defaults to the greater label (1 for 0/1 labels). Multi-class: ``y_score``
    has one column per sorted class of ``y_true`` and per-class scores are
    averaged by ``average``.
    """
    t = as_labels(y_true, "y_true")
    s = as_float_array(y_score, "y_score", ndim=(1, 2))
    same_length(("y_true", t), ("y_score", s))
    w = sample_weights(sample_weight, len(t))
    if len(np.unique(t)) > 2 or (s.ndim == 2 and s.shape[1] > 2):
        choice(average, "average", ("macro", "weighted", "micro", None))
        if s.ndim != 2:
            raise InvalidArgument(
                "y_true holds more than two classes: y_score needs one column per class"
            )
        y, classes = _one_vs_rest(t, s, None, check_sum=False)
        return _average(_binary_ap, y, s, w, average, classes)
    truth, score, w = _binary_inputs(t, s, w, pos_label)
    return _binary_ap(truth, score, w)


def pr_auc(y_true: Any, y_score: Any, **kwargs: Any) -> Any:
    """Area under the precision-recall curve, by sklearn's step definition (= average precision)."""
    return average_precision(y_true, y_score, **kwargs)
