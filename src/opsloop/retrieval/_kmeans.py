"""The IVF coarse quantizer: k-means over a sample, list assignment, nprobe tuning.

Vectors are scored as "higher is better" everywhere: the inner product for
cosine (vectors are stored unit length) and ``2 x.q - |x|^2`` for L2 (the
squared distance up to ``|q|^2``, which does not change a ranking).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F32 = npt.NDArray[np.float32]
    I32 = npt.NDArray[np.int32]

_BLOCK = 8192


def default_nlist(n: int) -> int:
    """About ``sqrt(n)`` lists, at least 8 and at most 4096."""
    return max(8, min(4096, round(math.sqrt(n))))


def scores(x: F32, q: F32, metric: str, x_sq: F32 | None = None) -> F32:
    """``[len(x), len(q)]`` scores of every row of ``x`` against every query row of ``q``."""
    s = x @ q.T
    if metric == "l2":
        s *= 2.0
        s -= (x_sq if x_sq is not None else (x * x).sum(axis=1))[:, None]
    return s


def assign(x: F32, centroids: F32, metric: str) -> I32:
    """The list (nearest centroid) of each row, computed in blocks to bound memory."""
    import numpy as np

    c_sq = (centroids * centroids).sum(axis=1)
    out = np.empty(len(x), dtype=np.int32)
    for s in range(0, len(x), _BLOCK):
        block = x[s : s + _BLOCK]
        sc = scores(centroids, block, metric, c_sq)  # [nlist, b]
        out[s : s + _BLOCK] = sc.argmax(axis=0)
    return out


def train(x: F32, nlist: int, metric: str, *, iters: int = 12, seed: int = 0) -> F32:
    """``nlist`` centroids from k-means (spherical for cosine) over at most 256 points a list."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(x)
    nlist = min(nlist, n)
    sample = x[np.sort(rng.choice(n, size=min(n, nlist * 256), replace=False))]
    cent = sample[rng.choice(len(sample), size=nlist, replace=False)].copy()
    for _ in range(iters):
        lists = assign(sample, cent, metric)
        counts = np.bincount(lists, minlength=nlist)
        order = np.argsort(lists, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        empty = counts == 0
        sums = np.zeros_like(cent)
        # Per-list sums in one pass over the sample sorted by list (np.add.at is unbuffered).
        sums[~empty] = np.add.reduceat(sample[order], starts[~empty], axis=0)
        cent = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        if empty.any():
            # An empty list takes a random point, so every list stays in use.
            cent[empty] = sample[rng.choice(len(sample), size=int(empty.sum()), replace=False)]
        if metric == "cosine":
            norms = np.linalg.norm(cent, axis=1, keepdims=True)
            cent /= np.maximum(norms, 1e-12)
    return np.ascontiguousarray(cent, dtype=np.float32)


def tune_nprobe(
    x: F32,
    lists: I32,
    centroids: F32,
    metric: str,
    *,
    target: float = 0.97,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 1,
) -> int:
    """The smallest nprobe whose recall@k against exact search reaches ``target``.

    The queries are stored vectors; each one's own row is left out of both
    answers, so the query stands for a new point from the same distribution.
    """
    import numpy as np

    n, nlist = len(x), len(centroids)
    rng = np.random.default_rng(seed)
    qi = rng.choice(n, size=min(n_queries, n), replace=False)
    q = x[qi]
    x_sq = (x * x).sum(axis=1) if metric == "l2" else None
    kk = min(k, n - 1)
    if kk <= 0:
        return nlist
    # Recall at nprobe p is the share of true neighbours whose list is among the query's
    # p best lists: the top-k of the probed rows holds every true neighbour probed.
    ranks = []
    for s in range(0, len(q), 64):
        qb = q[s : s + 64]
        sc = scores(x, qb, metric, x_sq).T  # [b, n]
        sc[np.arange(sc.shape[0]), qi[s : s + 64]] = -np.inf
        nn = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-scores(centroids, qb, metric).T, axis=1)  # [b, nlist]
        rank = np.empty_like(order)
        rank[np.arange(len(qb))[:, None], order] = np.arange(nlist)[None, :]
        ranks.append(np.take_along_axis(rank, lists[nn], axis=1).ravel())
    r = np.sort(np.concatenate(ranks))
    need = max(1, math.ceil(target * len(r)))
    # A floor for queries unlike the stored vectors (the sample cannot show those).
    return int(min(nlist, max(r[need - 1] + 1, min_nprobe(nlist))))


def min_nprobe(nlist: int) -> int:
    return max(4, nlist // 16)
