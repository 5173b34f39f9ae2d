"""Drift for LLM apps: text length, language (script) mix, and embedding drift.

Embedding drift is a kernel two-sample test (maximum mean discrepancy with an
RBF kernel, its bandwidth the median distance in the reference) decided like
``_drift``: a permutation p-value under ``alpha`` AND an effect size (the
unbiased MMD, square-rooted) at least ``MMD_THRESHOLD``. The permutation test
is exact at any size, and windows larger than ``MAX_ROWS`` are subsampled
(a subsample of a window from the reference distribution is one too), so the
false alarms stay under 5% from 100 rows to millions, as for tabular drift.

Detected shift: a window in which 30% of the texts come from a topic the
reference does not have. With MiniLM embeddings of short support questions
(``benchmarks/monitoring_embeddings.py``) its effect is 0.19 (p < 0.005) at
1,000 rows, while 10% of a new topic is 0.05 (significant, but under the
threshold: no alarm) and a window from the reference is 0.0.
``tests/test_monitoring_text.py`` checks the calibration and the detection
on synthetic unit vectors (embedding real texts is too slow for the suite).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from opsloop.monitoring._drift import ALPHA, categorical_drift, numeric_drift

__all__ = ["MAX_ROWS", "MMD_THRESHOLD", "mmd_drift", "script_of", "text_drift"]

MMD_THRESHOLD = 0.1
MAX_ROWS = 500
PERMUTATIONS = 100


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aa = np.einsum("ij,ij->i", a, a)[:, None]
    bb = np.einsum("ij,ij->i", b, b)[None, :]
    out: np.ndarray = np.maximum(aa + bb - 2 * a @ b.T, 0.0)
    return out


def mmd_drift(
    reference: Any,
    current: Any,
    *,
    alpha: float = ALPHA,
    threshold: float = MMD_THRESHOLD,
    permutations: int = PERMUTATIONS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """MMD two-sample test on embedding rows: p-value (permutations), effect size, decision."""
    rng = np.random.default_rng(seed)
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    n_ref, n_cur = len(x), len(y)
    if n_ref < 30 or n_cur < 30:
        return {
            "test": "mmd",
            "n_reference": n_ref,
            "n_current": n_cur,
            "p_value": None,
            "effect_size": None,
            "drift": False,
            "reason": "fewer than 30 rows",
        }
    if n_ref > max_rows:
        x = x[rng.choice(n_ref, max_rows, replace=False)]
    if n_cur > max_rows:
        y = y[rng.choice(n_cur, max_rows, replace=False)]
    n, m = len(x), len(y)
    z = np.vstack([x, y])
    d2 = _sq_dists(z, z)
    ref_d2 = d2[:n, :n][np.triu_indices(n, 1)]
    bandwidth = float(np.median(ref_d2)) or 1.0
    k = np.exp(-d2 / bandwidth)
    # the biased MMD^2 of a labelling a (1/n on one side, -1/m on the other) is a^T K a:
    # every permutation at once is one matrix product
    base = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    perms = np.stack([base] + [rng.permutation(base) for _ in range(permutations)], axis=1)
    stats = np.einsum("ip,ip->p", perms, k @ perms)
    p = float((1 + np.sum(stats[1:] >= stats[0] - 1e-12)) / (1 + permutations))
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    unbiased = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    effect = float(np.sqrt(max(unbiased, 0.0)))
    return {
        "test": "mmd",
        "n_reference": n_ref,
        "n_current": n_cur,
        "rows_compared": [n, m],
        "statistic": float(stats[0]),
        "p_value": p,
        "effect_size": effect,
        "effect_measure": "mmd_rbf",
        "threshold": threshold,
        "drift": bool(p < alpha and effect >= threshold),
    }


_SCRIPTS = (
    "LATIN",
    "CYRILLIC",
    "GREEK",
    "ARABIC",
    "HEBREW",
    "CJK",
    "HIRAGANA",
    "KATAKANA",
    "HANGUL",
    "DEVANAGARI",
    "THAI",
)


def script_of(text: str) -> str:
    """The writing system of most of the letters in ``text`` (a cheap language-mix proxy)."""
    counts: Counter[str] = Counter()
    for ch in text[:2000]:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            counts[next((s for s in _SCRIPTS if name.startswith(s)), "OTHER")] += 1
    return counts.most_common(1)[0][0].lower() if counts else "none"


def text_drift(
    reference: Sequence[str],
    current: Sequence[str],
    *,
    embed: Callable[[Sequence[str]], Any] | None = None,
) -> dict[str, Any]:
    """Length (characters), script mix, and, given ``embed`` (e.g. MiniLM's), embedding drift."""
    out: dict[str, Any] = {
        "length": numeric_drift([len(t) for t in reference], [len(t) for t in current]),
        "language": categorical_drift(
            [script_of(t) for t in reference], [script_of(t) for t in current]
        ),
    }
    if embed is not None:
        rng = np.random.default_rng(0)
        ref = list(reference)
        cur = list(current)
        if len(ref) > MAX_ROWS:  # embed only what the test compares
            ref = [ref[i] for i in rng.choice(len(ref), MAX_ROWS, replace=False)]
        if len(cur) > MAX_ROWS:
            cur = [cur[i] for i in rng.choice(len(cur), MAX_ROWS, replace=False)]
        res = mmd_drift(embed(ref), embed(cur))
        res["n_reference"], res["n_current"] = len(reference), len(current)
        out["embedding"] = res
    out["drift"] = any(v["drift"] for v in out.values() if isinstance(v, dict))
    return out
