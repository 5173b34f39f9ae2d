"""The in-memory side of an index: a FAISS inverted-file index over the live rows of one generation.

A ``Snapshot`` holds the live rows of one generation in a ``faiss.IndexIVFFlat``
whose ids are the rows' ids (``rid``, their position in the vector file). An
index that is not trained yet is an IVF with a single list, which every row
is in, so its search is exact; a trained one uses the centroids k-means found
(see ``_kmeans``) and each row's list from the lists file, so loading never
assigns again. Exact search on a trained index probes every list.

Rows added are appended to their lists; rows deleted (or replaced by an upsert)
are removed from FAISS at once, so searches never see them. A metadata filter
becomes an ``IDSelectorBitmap`` over rids that FAISS checks while it scans the
lists: the filter is applied inside the search, not after it, and a selective
filter probes more lists (every list, for the most selective) so recall holds.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from opsloop.retrieval._bm25 import BM25
    from opsloop.retrieval._columns import MetaColumns

    F32 = npt.NDArray[np.float32]
    I64 = npt.NDArray[np.int64]
    B = npt.NDArray[np.bool_]


def faiss_module() -> Any:
    """``faiss``, or a clear error naming the extra that installs it."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - the retrieval extra installs it
        raise InvalidArgument(
            "the vector index searches with FAISS: pip install 'opsloop[retrieval]'"
        ) from None
    return faiss


def flat_index(dim: int, metric: str) -> Any:
    """An exact FAISS index for ``metric`` (inner product on unit vectors for cosine)."""
    faiss = faiss_module()
    return faiss.IndexFlatIP(dim) if metric == "cosine" else faiss.IndexFlatL2(dim)


def to_scores(d: Any, metric: str) -> Any:
    """FAISS's distances as opsloop's scores: the cosine, or the (not squared) L2 distance."""
    import numpy as np

    if metric == "cosine":
        return d
    return np.sqrt(np.maximum(d, 0.0))


class Snapshot:
    """The vectors of one generation of an index, in FAISS, ready to search."""

    def __init__(
        self,
        *,
        generation: int,
        dim: int,
        metric: str,
        files: tuple[str | None, ...],
        n_rows: int,
        vectors: F32,
        rids: I64,
        lists: npt.NDArray[np.int32] | None,
        centroids: F32 | None,
        nprobe: int,
    ) -> None:
        import numpy as np

        faiss = faiss_module()
        self.generation = generation
        self.dim = dim
        self.metric = metric
        self.files = files
        self.n_rows = n_rows
        self.centroids = centroids
        self.nprobe = nprobe
        self.quantizer = flat_index(dim, metric)
        cents = centroids if centroids is not None else np.zeros((1, dim), dtype=np.float32)
        self.quantizer.add(np.ascontiguousarray(cents, dtype=np.float32))
        fmetric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        # Trained at construction: the quantizer already holds its nlist centroids.
        self.index = faiss.IndexIVFFlat(self.quantizer, dim, len(cents), fmetric)
        self.nlist = len(cents)
        self.alive = np.zeros(n_rows, dtype=bool)
        self.live_count = 0
        # Filter selectors (mask, packed bits), valid until the snapshot changes.
        self.masks: OrderedDict[str, tuple[B, Any]] = OrderedDict()
        self.columns: MetaColumns | None = None
        # The BM25 index of the live rows' texts, and their rids (built when first needed).
        self.keyword: tuple[BM25, I64] | None = None
        self.append(rids, vectors, lists)

    # ---------------------------------------------------------------- changes

    def append(self, rids: I64, x: F32, lists: npt.NDArray[np.int32] | None) -> None:
        """Rows just added to the index (new rids, at or past the old ``n_rows``)."""
        import numpy as np

        faiss = faiss_module()
        m = len(x)
        if m == 0:
            return
        ids = np.ascontiguousarray(rids, dtype=np.int64)
        xs = np.ascontiguousarray(x, dtype=np.float32)
        if lists is None or self.centroids is None:
            assigned = np.zeros(m, dtype=np.int64)
        else:
            assigned = np.ascontiguousarray(lists, dtype=np.int64)
        # The rows' lists are known (the lists file): FAISS stores them without assigning.
        self.index.add_core(m, faiss.swig_ptr(xs), faiss.swig_ptr(ids), faiss.swig_ptr(assigned))
        top = int(ids.max()) + 1
        if top > len(self.alive):
            grown = np.zeros(max(top, int(len(self.alive) * 1.5)), dtype=bool)
            grown[: len(self.alive)] = self.alive
            self.alive = grown
        self.alive[ids] = True
        self.n_rows = max(self.n_rows, top)
        self.live_count = int(self.alive.sum())
        self.masks.clear()
        self.keyword = None

    def remove(self, rids: I64) -> None:
        """Rows deleted (or replaced by an upsert) from the index."""
        import numpy as np

        r = np.asarray(rids, dtype=np.int64)
        r = r[(r >= 0) & (r < len(self.alive))]
        r = r[self.alive[r]]
        if len(r) == 0:
            return
        self.index.remove_ids(np.ascontiguousarray(r))
        self.alive[r] = False
        self.live_count = int(self.alive.sum())
        self.masks.clear()
        self.keyword = None

    def set_alive(self, live_rids: I64) -> None:
        """Make the live rows exactly ``live_rids`` (rows another process deleted go)."""
        import numpy as np

        now = np.zeros(len(self.alive), dtype=bool)
        r = np.asarray(live_rids, dtype=np.int64)
        now[r[(r >= 0) & (r < len(now))]] = True
        gone = np.flatnonzero(self.alive & ~now)
        if len(gone):
            self.remove(gone.astype(np.int64))

    # ---------------------------------------------------------------- search

    def selector(self, mask: B) -> Any:
        """A FAISS id selector for the rows of ``mask`` (a bool per rid)."""
        import numpy as np

        faiss = faiss_module()
        bits = np.packbits(mask, bitorder="little")
        return faiss.IDSelectorBitmap(bits)

    def search(
        self,
        q: F32,
        k: int,
        *,
        mask: B | None,
        exact: bool,
        nprobe: int | None,
        sel: Any = None,
    ) -> tuple[I64, F32]:
        """``(rids [m, k], distances [m, k])`` best first; missing slots have rid -1.

        ``mask`` (a bool per rid, live rows only) restricts the search to the rows
        a metadata filter matched, ``sel`` is its FAISS selector. Distances are
        FAISS's: the inner product for cosine, the squared distance for L2.
        """
        import numpy as np

        faiss = faiss_module()
        m = len(q)
        n_valid = self.live_count if mask is None else int(mask.sum())
        if n_valid == 0:
            return np.full((m, 0), -1, dtype=np.int64), np.empty((m, 0), dtype=np.float32)
        k = min(k, n_valid)
        probes = self.nlist if exact else (nprobe or self.nprobe)
        if n_valid < self.live_count:
            # A filter leaves fewer matches per list, and its nearest matches lie farther
            # out: probe 2 x nprobe / selectivity lists to keep recall.
            probes = math.ceil(2 * probes * self.live_count / n_valid)
        probes = max(1, min(self.nlist, probes))
        if mask is not None and sel is None:
            sel = self.selector(mask)
        params = faiss.SearchParametersIVF(nprobe=probes)
        if sel is not None:
            params.sel = sel
        d, ids = self.index.search(q, k, params=params)
        if probes < self.nlist and (ids < 0).any():
            # Too few matches in the probed lists: answer those queries from every list.
            short = np.flatnonzero((ids < 0).any(axis=1))
            params.nprobe = self.nlist
            d2, ids2 = self.index.search(q[short], k, params=params)
            d[short], ids[short] = d2, ids2
        return ids, d
