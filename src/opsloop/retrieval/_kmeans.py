"""The IVF coarse quantizer: FAISS k-means over a sample, list assignment, nprobe tuning.

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
    """The list (nearest centroid) of each row, found by FAISS's exact search."""
    import numpy as np

    from opsloop.retrieval._search import flat_index  # lazy: loads faiss

    q = flat_index(centroids.shape[1], metric)
    q.add(np.ascontiguousarray(centroids, dtype=np.float32))
    out = np.empty(len(x), dtype=np.int32)
    for s in range(0, len(x), _BLOCK * 8):
        _, idx = q.search(np.ascontiguousarray(x[s : s + _BLOCK * 8], dtype=np.float32), 1)
        out[s : s + _BLOCK * 8] = idx[:, 0]
    return out


def train(x: F32, nlist: int, metric: str, *, iters: int = 20, seed: int = 0) -> F32:
    """``nlist`` centroids from FAISS's k-means (spherical for cosine), at most 256 points
    a list."""
    import numpy as np

    from opsloop.retrieval._search import faiss_module  # lazy: loads faiss

    faiss = faiss_module()
    nlist = min(nlist, len(x))
    km = faiss.Kmeans(
        x.shape[1],
        nlist,
        niter=iters,
        seed=seed + 1234,
        spherical=metric == "cosine",
        max_points_per_centroid=256,
        min_points_per_centroid=1,  # small indexes train too, without FAISS's warning
        verbose=False,
    )
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


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
