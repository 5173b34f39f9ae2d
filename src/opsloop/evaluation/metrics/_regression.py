"""Regression metrics, defined as scikit-learn defines them.

Inputs are 1-D, or 2-D with one column per output; ``multioutput`` is
``"uniform_average"`` (mean over outputs) or ``"raw_values"`` (a list).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import (
    as_float_array,
    choice,
    sample_weights,
)


def _inputs(
    y_true: Any, y_pred: Any, sample_weight: Any, multioutput: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = as_float_array(y_true, "y_true", ndim=(1, 2))
    p = as_float_array(y_pred, "y_pred", ndim=(1, 2))
    if t.shape != p.shape:
        raise InvalidArgument(
            f"y_true and y_pred must have the same shape, got {t.shape} and {p.shape}"
        )
    choice(multioutput, "multioutput", ("uniform_average", "raw_values"))
    w = sample_weights(sample_weight, len(t))
    return t.reshape(len(t), -1), p.reshape(len(p), -1), w


def _out(per_output: np.ndarray, multioutput: str) -> Any:
    if multioutput == "raw_values":
        return [float(v) for v in per_output]
    return float(per_output.mean())


def mse(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, multioutput: str = "uniform_average"
) -> Any:
    """Mean squared error."""
    t, p, w = _inputs(y_true, y_pred, sample_weight, multioutput)
    return _out(np.average((t - p) ** 2, axis=0, weights=w), multioutput)


def rmse(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, multioutput: str = "uniform_average"
) -> Any:
    """Root mean squared error (per output, then averaged: sklearn's ``root_mean_squared_error``)."""
    t, p, w = _inputs(y_true, y_pred, sample_weight, multioutput)
    return _out(np.sqrt(np.average((t - p) ** 2, axis=0, weights=w)), multioutput)


def mae(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, multioutput: str = "uniform_average"
) -> Any:
    """Mean absolute error."""
    t, p, w = _inputs(y_true, y_pred, sample_weight, multioutput)
    return _out(np.average(np.abs(t - p), axis=0, weights=w), multioutput)


def mape(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, multioutput: str = "uniform_average"
) -> Any:
    """Mean absolute percentage error as a fraction (0.1 is 10 %).

    ``|y - yhat| / max(|y|, eps)`` with float64's machine epsilon, so a zero
    target gives a huge (finite) error rather than infinity, as in sklearn.
    """
    t, p, w = _inputs(y_true, y_pred, sample_weight, multioutput)
    eps = np.finfo(np.float64).eps
    return _out(
        np.average(np.abs(p - t) / np.maximum(np.abs(t), eps), axis=0, weights=w), multioutput
    )


def r2(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, multioutput: str = "uniform_average"
) -> Any:
    """Coefficient of determination ``1 - SS_res / SS_tot``.

    A constant target gives 1.0 for a perfect prediction and 0.0 otherwise
    (sklearn's ``force_finite``). Needs at least two samples.
    """
    t, p, w = _inputs(y_true, y_pred, sample_weight, multioutput)
    if len(t) < 2:
        raise InvalidArgument("R2 needs at least two samples")
    ww = np.ones((len(t), 1)) if w is None else w[:, None]
    ss_res = (ww * (t - p) ** 2).sum(axis=0)
    mean = np.average(t, axis=0, weights=ww[:, 0])
    ss_tot = (ww * (t - mean) ** 2).sum(axis=0)
    out = np.ones(t.shape[1])
    ok = ss_tot != 0
    out[ok] = 1 - ss_res[ok] / ss_tot[ok]
    out[~ok & (ss_res != 0)] = 0.0
    return _out(out, multioutput)
