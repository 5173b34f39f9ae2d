"""Drift tests that do not cry wolf: a p-value AND an effect size decide together.

A p-value alone fires on everything once windows are large (at a million rows
any difference is "significant"); an effect size alone fires on noise when
windows are small. So a feature drifts when both hold:

- the test rejects "same distribution" at ``alpha`` (5%), which bounds the
  false alarms on windows drawn from the reference distribution at 5% at any
  size, and
- the effect size is at least a practical threshold (normalised Wasserstein
  0.1 for numbers, Jensen-Shannon distance 0.1 for categories), which keeps
  large windows from alarming on differences nobody would act on.

The test is chosen by type and size: a numeric column with more than
``CATEGORICAL_MAX_DISTINCT`` distinct reference values gets the two-sample
Kolmogorov-Smirnov test (the asymptotic distribution with Stephens' small-sample
correction, exact under ties too since D is computed on the right-continuous
ECDFs at every data point; conservative for small windows); other columns get
the chi-squared test on the 2 x k table of counts, pooling the categories whose
expected count is under 5 (how many are pooled depends on the sizes), so the
chi-squared approximation holds from 100 rows up. Windows or references under
``MIN_ROWS`` rows get no decision. Every result also reports the KS statistic,
Wasserstein distance, PSI and Jensen-Shannon distance that apply.

Detected shift (checked by ``tests/test_monitoring_drift.py``): a mean shift
of 0.5 reference standard deviations of a normal feature, and 20% of a
categorical feature's mass moved from one category to another, are flagged
in at least 95% of 1,000-row windows against a 5,000-row reference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "CATEGORICAL_MAX_DISTINCT",
    "JS_THRESHOLD",
    "MIN_ROWS",
    "WASSERSTEIN_THRESHOLD",
    "FeatureDrift",
    "categorical_drift",
    "dataset_drift",
    "ks_pvalue",
    "numeric_drift",
]

ALPHA = 0.05
WASSERSTEIN_THRESHOLD = 0.1  # Wasserstein-1 / reference standard deviation
JS_THRESHOLD = 0.1  # Jensen-Shannon distance, base 2 (0..1)
CATEGORICAL_MAX_DISTINCT = 20
MIN_ROWS = 30
DRIFT_SHARE = 0.5

FeatureDrift = dict[str, Any]


def _kolmogorov_sf(x: np.ndarray) -> np.ndarray:
    """P(K > x) for the Kolmogorov distribution (the limit of sqrt(n) D)."""
    from scipy.special import kolmogorov  # lazy: scipy is heavy

    return np.asarray(kolmogorov(x), dtype=float)


def ks_pvalue(d: Any, n: int, m: int) -> Any:
    """Two-sample KS p-value: asymptotic, with Stephens' correction for small samples."""
    en = math.sqrt(n * m / (n + m))
    return _kolmogorov_sf((en + 0.12 + 0.11 / en) * np.asarray(d, dtype=float))


def ks_statistic(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """sup |F_ref - F_cur| over every data point (right-continuous ECDFs: exact under ties)."""
    cur_sorted = np.sort(cur)
    m, n = ref_sorted.size, cur_sorted.size
    fr_at_cur = np.searchsorted(ref_sorted, cur_sorted, "right") / m
    fc_at_cur = np.searchsorted(cur_sorted, cur_sorted, "right") / n
    fr_at_ref = np.searchsorted(ref_sorted, ref_sorted, "right") / m
    fc_at_ref = np.searchsorted(cur_sorted, ref_sorted, "right") / n
    return float(max(np.abs(fr_at_cur - fc_at_cur).max(), np.abs(fr_at_ref - fc_at_ref).max()))


def _wasserstein(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """Wasserstein-1 between the two empirical distributions (area between the ECDFs)."""
    cur_sorted = np.sort(cur)
    allv = np.concatenate([ref_sorted, cur_sorted])
    allv.sort(kind="mergesort")
    deltas = np.diff(allv)
    fr = np.searchsorted(ref_sorted, allv[:-1], "right") / ref_sorted.size
    fc = np.searchsorted(cur_sorted, allv[:-1], "right") / cur_sorted.size
    return float(np.sum(np.abs(fr - fc) * deltas))


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    eps = 1e-4
    p = np.maximum(ref_counts / max(ref_counts.sum(), 1), eps)
    q = np.maximum(cur_counts / max(cur_counts.sum(), 1), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def _js_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    p = p_counts / max(p_counts.sum(), 1)
    q = q_counts / max(q_counts.sum(), 1)
    mid = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / mid[mask])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def _no_decision(test: str, n_ref: int, n_cur: int) -> FeatureDrift:
    return {
        "type": "numeric" if test == "ks" else "categorical",
        "test": test,
        "n_reference": n_ref,
        "n_current": n_cur,
        "p_value": None,
        "effect_size": None,
        "drift": False,
        "reason": f"fewer than {MIN_ROWS} rows",
    }


def numeric_drift(
    reference: Any, current: Any, *, alpha: float = ALPHA, threshold: float = WASSERSTEIN_THRESHOLD
) -> FeatureDrift:
    """KS test with the normalised Wasserstein distance as the effect size, plus PSI."""
    ref = np.sort(np.asarray(reference, dtype=float))
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size < MIN_ROWS or cur.size < MIN_ROWS:
        return _no_decision("ks", int(ref.size), int(cur.size))
    d = ks_statistic(ref, cur)
    p = float(ks_pvalue(d, int(cur.size), int(ref.size)))
    scale = float(ref.std()) or 1.0
    w = _wasserstein(ref, cur) / scale
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    psi = _psi(
        np.bincount(np.searchsorted(edges, ref, "right"), minlength=edges.size + 1),
        np.bincount(np.searchsorted(edges, cur, "right"), minlength=edges.size + 1),
    )
    return {
        "type": "numeric",
        "test": "ks",
        "n_reference": int(ref.size),
        "n_current": int(cur.size),
        "statistic": d,
        "p_value": p,
        "effect_size": w,
        "effect_measure": "wasserstein_normed",
        "threshold": threshold,
        "wasserstein": w * scale,
        "psi": psi,
        "drift": bool(p < alpha and w >= threshold),
    }


def _counts(values: Iterable[Any]) -> Counter[str]:
    return Counter("" if v is None else str(v) for v in values)


def categorical_drift(
    reference: Iterable[Any] | Mapping[str, int],
    current: Iterable[Any] | Mapping[str, int],
    *,
    alpha: float = ALPHA,
    threshold: float = JS_THRESHOLD,
) -> FeatureDrift:
    """Chi-squared on the 2 x k counts (rare categories pooled), Jensen-Shannon effect, PSI."""
    from scipy.stats import chi2  # lazy: scipy is heavy

    rc = Counter(reference) if isinstance(reference, Mapping) else _counts(reference)
    cc = Counter(current) if isinstance(current, Mapping) else _counts(current)
    n_ref, n_cur = sum(rc.values()), sum(cc.values())
    if n_ref < MIN_ROWS or n_cur < MIN_ROWS:
        return _no_decision("chi2", n_ref, n_cur)
    cats = sorted(set(rc) | set(cc))
    r = np.array([rc.get(c, 0) for c in cats], dtype=float)
    c = np.array([cc.get(c, 0) for c in cats], dtype=float)
    js = _js_distance(r, c)
    psi = _psi(r, c)
    # Pool categories whose smaller expected count is under 5 into one bin.
    total = r + c
    small = np.minimum(total * n_ref, total * n_cur) / (n_ref + n_cur) < 5
    if small.any():
        r = np.append(r[~small], r[small].sum())
        c = np.append(c[~small], c[small].sum())
        keep = (r + c) > 0
        r, c = r[keep], c[keep]
    k = r.size
    if k < 2:
        stat, p = 0.0, 1.0
    else:
        obs = np.vstack([r, c])
        exp = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
        stat = float(np.sum((obs - exp) ** 2 / exp))
        p = float(chi2.sf(stat, k - 1))
    return {
        "type": "categorical",
        "test": "chi2",
        "n_reference": n_ref,
        "n_current": n_cur,
        "statistic": stat,
        "p_value": p,
        "effect_size": js,
        "effect_measure": "jensen_shannon",
        "threshold": threshold,
        "psi": psi,
        "categories_pooled": int(small.sum()),
        "drift": bool(p < alpha and js >= threshold),
    }


def _is_numeric(values: Sequence[Any]) -> bool:
    sample = [v for v in values[:1000] if v is not None]
    return bool(sample) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in sample
    )


def column_drift(reference: Sequence[Any], current: Sequence[Any], **kw: Any) -> FeatureDrift:
    """The test the column's type and size call for (see the module docstring)."""
    if _is_numeric(reference) and _is_numeric(current):
        ref = np.asarray([v for v in reference if v is not None], dtype=float)
        if np.unique(ref).size > CATEGORICAL_MAX_DISTINCT:
            return numeric_drift(ref, [v for v in current if v is not None], **kw)
    return categorical_drift(reference, current, **kw)


def dataset_drift(
    reference: Mapping[str, Sequence[Any]],
    current: Mapping[str, Sequence[Any]],
    *,
    share: float = DRIFT_SHARE,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Per-column drift of the columns both sides have, the drifted share and the decision."""
    features = {
        name: column_drift(reference[name], current[name], alpha=alpha)
        for name in reference
        if name in current
    }
    decided = [f for f in features.values() if f["p_value"] is not None]
    drifted = [n for n, f in features.items() if f["drift"]]
    drift_share = len(drifted) / len(decided) if decided else 0.0
    return {
        "features": features,
        "drifted": drifted,
        "drift_share": drift_share,
        "share_threshold": share,
        "drift": bool(decided) and drift_share >= share,
    }
