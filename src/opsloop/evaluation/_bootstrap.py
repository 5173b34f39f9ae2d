"""Percentile bootstrap confidence intervals, resampled with numpy in blocks.

Every interval resamples *examples* (rows) with replacement. Three paths, the
fastest that is exact for the metric:

- per-example metrics (a score per row, then mean/median/...): the scores are
  gathered through an index matrix and reduced along an axis;
- metrics that are a function of summed per-row counts (accuracy,
  precision/recall/F1 in every averaging, corpus BLEU and chrF): each row's
  counts are computed once, every resample is one multinomial count vector,
  and ``counts @ stats`` gives all resampled totals at once;
- anything else: the metric is recomputed on each resample.

The count path is used only when it reproduces the metric's own value on the
full data, so a metric whose semantics it does not model falls back to
recomputing instead of answering something different.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument, OpsloopError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from opsloop.evaluation.metrics import Metric

    Array = npt.NDArray[np.float64]

_BLOCK_CELLS = 4_000_000  # resamples x rows per block: bounds memory at ~32 MB of int64


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic and its percentile bootstrap interval."""

    value: float
    low: float
    high: float
    confidence: float
    n_bootstrap: int
    method: str  # "per_example" | "counts" | "recompute"


def check_params(n_bootstrap: int, confidence: float) -> None:
    if not isinstance(n_bootstrap, int) or not 0 <= n_bootstrap <= 100_000:
        raise InvalidArgument("n_bootstrap must be an integer in 0..100000")
    if not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise InvalidArgument("confidence must be a number strictly between 0 and 1")


def _interval(reps: Array, confidence: float) -> tuple[float, float]:
    import numpy as np

    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _index_blocks(n: int, n_bootstrap: int, seed: int) -> Iterator[Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    per_block = max(1, _BLOCK_CELLS // max(n, 1))
    done = 0
    while done < n_bootstrap:
        b = min(per_block, n_bootstrap - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _count_blocks(n: int, n_bootstrap: int, seed: int) -> Iterator[Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    per_block = max(1, _BLOCK_CELLS // max(n, 1))
    pvals = np.full(n, 1.0 / n)
    done = 0
    while done < n_bootstrap:
        b = min(per_block, n_bootstrap - done)
        yield rng.multinomial(n, pvals, size=b)
        done += b


_REDUCERS = ("mean", "median", "sum", "min", "max")


def bootstrap_ci(
    values: Sequence[float] | Any,
    *,
    statistic: str = "mean",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile interval of ``statistic`` (mean, median, sum, min, max) of per-example values."""
    import numpy as np

    check_params(n_bootstrap, confidence)
    if statistic not in _REDUCERS:
        raise InvalidArgument(f"statistic must be one of {list(_REDUCERS)}, got {statistic!r}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise InvalidArgument("bootstrap_ci needs a non-empty list of numbers")
    reduce: Callable[..., Any] = getattr(np, statistic)
    value = float(reduce(x))
    if n_bootstrap == 0:
        return BootstrapCI(value, math.nan, math.nan, confidence, 0, "per_example")
    reps = np.concatenate(
        [reduce(x[idx], axis=1) for idx in _index_blocks(x.size, n_bootstrap, seed)]
    )
    lo, hi = _interval(reps, confidence)
    return BootstrapCI(value, lo, hi, confidence, n_bootstrap, "per_example")


def bootstrap_counts(
    stats: Array,
    combine: Callable[[Array], Array],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> BootstrapCI:
    """Interval of ``combine(summed stats)`` where each row contributes one stats vector."""
    import numpy as np

    value = float(combine(stats.sum(axis=0, keepdims=True))[0])
    reps = np.concatenate(
        [combine(c @ stats) for c in _count_blocks(stats.shape[0], n_bootstrap, seed)]
    )
    lo, hi = _interval(reps, confidence)
    return BootstrapCI(value, lo, hi, confidence, n_bootstrap, "counts")


# ---------------------------------------------------------------------------- metrics


def _take(col: Any, idx: Any) -> Any:
    if col is None:
        return None
    return [col[i] for i in idx]


def metric_ci(
    m: Metric,
    predictions: list[Any],
    references: list[Any] | None,
    inputs: dict[str, list[Any]],
    *,
    value: float,
    per_example: list[float] | None,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> BootstrapCI:
    """The bootstrap interval of metric ``m`` whose full-data value is ``value``."""
    import numpy as np

    if n_bootstrap == 0:
        return BootstrapCI(value, math.nan, math.nan, confidence, 0, "none")
    if per_example is not None and (m.aggregate in _REDUCERS):
        ci = bootstrap_ci(
            per_example,
            statistic=str(m.aggregate),
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
        return BootstrapCI(value, ci.low, ci.high, confidence, n_bootstrap, "per_example")
    if per_example is None:
        fast = _count_form(m, predictions, references, inputs)
        if fast is not None:
            stats, combine = fast
            ident = float(combine(stats.sum(axis=0, keepdims=True))[0])
            if math.isclose(ident, value, rel_tol=1e-9, abs_tol=1e-12):
                return bootstrap_counts(
                    stats, combine, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
                )
    n = len(predictions)
    reps = np.full(n_bootstrap, np.nan)
    k = 0
    for block in _index_blocks(n, n_bootstrap, seed):
        for idx in block:
            # a resample the metric is undefined on (one class for ROC AUC) drops out
            with contextlib.suppress(OpsloopError):
                reps[k] = m.compute(
                    _take(predictions, idx),
                    _take(references, idx),
                    **{key: _take(col, idx) for key, col in inputs.items()},
                ).value
            k += 1
    lo, hi = _interval(reps, confidence)
    return BootstrapCI(value, lo, hi, confidence, n_bootstrap, "recompute")


def _count_form(
    m: Metric, predictions: list[Any], references: list[Any] | None, inputs: dict[str, Any]
) -> tuple[Array, Callable[[Array], Array]] | None:
    """Per-row count vectors and the function of their sums that gives the metric, if known."""
    try:
        if m.name == "accuracy" and not m.params and references is not None:
            return _accuracy_form(predictions, references)
        base, _, avg = m.name.partition("_")
        if (
            base in ("precision", "recall", "f1")
            and avg in ("", "micro", "macro", "weighted")
            and not m.params
            and references is not None
        ):
            return _prf_form(base, avg or "binary", predictions, references)
        if m.name in ("bleu", "chrf", "chrf++") and references is not None:
            return _sacrebleu_form(m.name, predictions, references, dict(m.params))
    except Exception:  # the exact path is optional; recomputation is always right
        return None
    return None


def _labels(predictions: list[Any], references: list[Any]) -> tuple[Any, Any, Any]:
    import numpy as np

    y_true = np.asarray(references)
    y_pred = np.asarray(predictions)
    if y_true.ndim != 1 or y_pred.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError("labels must be 1-D of one length")
    classes, inv = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    n = y_true.size
    return classes, inv[:n], inv[n:]


def _accuracy_form(
    predictions: list[Any], references: list[Any]
) -> tuple[Array, Callable[[Array], Array]]:
    import numpy as np

    _, t, p = _labels(predictions, references)
    stats = np.stack([(t == p).astype(np.float64), np.ones(t.size)], axis=1)
    return stats, lambda s: s[:, 0] / s[:, 1]


def _prf_form(
    base: str, average: str, predictions: list[Any], references: list[Any]
) -> tuple[Array, Callable[[Array], Array]]:
    import numpy as np

    classes, t, p = _labels(predictions, references)
    c = classes.size
    onehot_t = np.eye(c)[t]
    onehot_p = np.eye(c)[p]
    tp = onehot_t * onehot_p
    # per row and class: tp, fp, fn, then the sum gives per-class totals
    stats = np.concatenate([tp, onehot_p - tp, onehot_t - tp], axis=1)
    if average == "binary":
        pos = [i for i, v in enumerate(classes.tolist()) if v == 1 and not isinstance(v, bool)]
        pos += [i for i, v in enumerate(classes.tolist()) if v is True]
        if not pos or not set(classes.tolist()) <= {0, 1}:
            raise ValueError("binary averaging needs 0/1 labels")
        keep = pos[0]
        stats = stats[:, [keep, c + keep, 2 * c + keep]]
        c = 1

    def score(tp_: Array, fp: Array, fn: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            if base == "precision":
                num, den = tp_, tp_ + fp
            elif base == "recall":
                num, den = tp_, tp_ + fn
            else:
                num, den = 2 * tp_, 2 * tp_ + fp + fn
            return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)

    def combine(s: Array) -> Array:
        tp_, fp, fn = s[:, :c], s[:, c : 2 * c], s[:, 2 * c :]
        if average in ("binary",):
            return score(tp_, fp, fn)[:, 0]
        if average == "micro":
            return score(
                tp_.sum(1, keepdims=True), fp.sum(1, keepdims=True), fn.sum(1, keepdims=True)
            )[:, 0]
        vals = score(tp_, fp, fn)
        present = (tp_ + fp + fn) > 0  # labels seen in this resample's truth or predictions
        if average == "macro":
            return np.asarray(
                np.where(present, vals, 0).sum(1) / np.maximum(present.sum(1), 1), dtype=np.float64
            )
        support = tp_ + fn
        tot = support.sum(1)
        return np.asarray(
            np.where(tot > 0, (vals * support).sum(1) / np.where(tot > 0, tot, 1), 0.0),
            dtype=np.float64,
        )

    return stats, combine


def _sacrebleu_form(
    name: str, predictions: list[Any], references: list[Any], params: dict[str, Any]
) -> tuple[Array, Callable[[Array], Array]]:
    import numpy as np
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    if not all(isinstance(x, str) for x in predictions):
        raise ValueError("text predictions only")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(r) for r in refs)
    # sacrebleu wants one stream per reference position; None pads shorter lists
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
    scorer: Any
    if name == "bleu":
        scorer = BLEU(**params)
    else:
        scorer = CHRF(word_order=2 if name == "chrf++" else 0, **params)
    rows = scorer._extract_corpus_statistics(list(predictions), streams)
    stats = np.asarray(rows, dtype=np.float64)

    def combine(s: Array) -> Array:
        return np.asarray(
            [scorer._compute_score_from_stats([round(v) for v in row]).score for row in s],
            dtype=np.float64,
        )

    return stats, combine
