"""Searching a ``VectorIndex``: query checks, metadata filters (in-memory masks, FAISS selectors)
and hits."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from opsloop.errors import InvalidArgument
from opsloop.retrieval._bm25 import BM25, rrf
from opsloop.retrieval._columns import MetaColumns
from opsloop.retrieval._filter import compile_filter
from opsloop.retrieval._search import to_scores
from opsloop.retrieval._snapshots import SearchHit, hits_for
from opsloop.retrieval._validate import (
    as_matrix,
    check_k,
    check_nprobe,
    check_query,
    normalise,
)

if TYPE_CHECKING:
    import sqlite3

    import numpy as np
    import numpy.typing as npt

    from opsloop.retrieval._search import Snapshot

T = TypeVar("T")
_FILTER_CACHE = 16


class SearchMixin:
    """The search methods of ``VectorIndex`` (kept apart for size)."""

    name: str

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[sqlite3.Connection, Snapshot | None], T]) -> T: ...

    def search(
        self,
        vector: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> builtins.list[SearchHit]:
        """The ``k`` nearest items to ``vector`` (that match ``filter``), best first."""
        q = as_matrix(vector, "vector")
        if len(q) != 1:
            raise InvalidArgument("search takes one vector; use search_batch for several")
        return self._checked(q, k, filter, exact, nprobe)[0]

    def search_batch(
        self,
        vectors: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> builtins.list[builtins.list[SearchHit]]:
        """``search`` for each row of ``vectors``, in one pass over the index."""
        return self._checked(as_matrix(vectors, "vectors"), k, filter, exact, nprobe)

    def _checked(
        self,
        q: npt.NDArray[np.float32],
        k: int,
        filter: dict[str, Any] | None,
        exact: bool,
        nprobe: int | None,
    ) -> builtins.list[builtins.list[SearchHit]]:
        k = check_k(k)
        probes = check_nprobe(nprobe)
        if filter:
            compile_filter(filter)  # checks it (the same checks as the SQL it could run)
        flt = filter or None
        return self._read(lambda con, snap: self._search(con, snap, q, k, flt, bool(exact), probes))

    def keyword_search(
        self, query: str, k: int = 10, *, filter: dict[str, Any] | None = None
    ) -> builtins.list[SearchHit]:
        """The ``k`` items whose texts best match ``query`` by BM25 (bm25s), best first.

        ``score`` is the BM25 score; items with no query word are never returned.
        The keyword index is built from the texts when first needed (and again
        after the index changes)."""
        text = check_query(query)
        k = check_k(k)
        if filter:
            compile_filter(filter)
        flt = filter or None
        return self._read(lambda con, snap: self._keyword(con, snap, text, k, flt))

    def hybrid_search(
        self,
        vector: Any,
        query: str,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        candidates: int = 50,
        nprobe: int | None = None,
    ) -> builtins.list[SearchHit]:
        """Dense and keyword search fused by reciprocal rank: the ``k`` best of the top
        ``candidates`` of each (``vector`` is the query's embedding, ``query`` its text).

        ``score`` is the fused score, ``sum 1 / (60 + rank)`` over both rankings."""
        q = as_matrix(vector, "vector")
        if len(q) != 1:
            raise InvalidArgument("hybrid_search takes one vector")
        text = check_query(query)
        k = check_k(k)
        n = max(check_k(candidates), k)
        probes = check_nprobe(nprobe)
        if filter:
            compile_filter(filter)
        flt = filter or None

        def run(con: sqlite3.Connection, snap: Snapshot | None) -> builtins.list[SearchHit]:
            dense = self._search(con, snap, q, n, flt, False, probes)[0]
            words = self._keyword(con, snap, text, n, flt)
            by_id = {h.id: h for h in words}
            by_id.update({h.id: h for h in dense})
            fused = rrf([[h.id for h in dense], [h.id for h in words]], k)
            return [replace(by_id[i], score=s) for i, s in fused]

        return self._read(run)

    def _keyword(
        self,
        con: sqlite3.Connection,
        snap: Snapshot | None,
        query: str,
        k: int,
        flt: dict[str, Any] | None,
    ) -> builtins.list[SearchHit]:
        import numpy as np

        if snap is None:
            return []
        if snap.keyword is None:
            rows = con.execute("SELECT rid, COALESCE(text, '') FROM items ORDER BY rid").fetchall()
            snap.keyword = (
                BM25([t for _, t in rows]),
                np.array([r for r, _ in rows], dtype=np.int64),
            )
        bm25, rids = snap.keyword
        mask = None
        if flt is not None:
            mask = self._filter_mask(con, snap, flt)[0][rids]
        top = bm25.top(query, k, mask)
        found = np.array([[rids[i] for i, _ in top]], dtype=np.int64).reshape(1, len(top))
        sc = np.array([[s for _, s in top]], dtype=np.float32).reshape(1, len(top))
        return hits_for(con, sc, found)[0]

    def _search(
        self,
        con: sqlite3.Connection,
        snap: Snapshot | None,
        q: npt.NDArray[np.float32],
        k: int,
        flt: dict[str, Any] | None,
        exact: bool,
        nprobe: int | None,
    ) -> builtins.list[builtins.list[SearchHit]]:
        if snap is None:  # an index that never held a vector
            return [[] for _ in range(len(q))]
        if q.shape[1] != snap.dim:
            raise InvalidArgument(
                f"query has {q.shape[1]} dimensions; index {self.name!r} holds {snap.dim}",
                details={"expected": snap.dim, "got": int(q.shape[1])},
            )
        if snap.metric == "cosine":
            q = normalise(q, "query")
        mask = sel = None
        if flt is not None:
            mask, sel = self._filter_mask(con, snap, flt)
        rids, dist = snap.search(q, k, mask=mask, exact=exact, nprobe=nprobe, sel=sel)
        return hits_for(con, to_scores(dist, snap.metric), rids)

    def _filter_mask(
        self, con: sqlite3.Connection, snap: Snapshot, flt: dict[str, Any]
    ) -> tuple[Any, Any]:
        """The live rows ``flt`` matches (a bool per rid) and their FAISS selector."""
        key = json.dumps(flt, sort_keys=True)
        cached = snap.masks.get(key)
        if cached is not None:
            snap.masks.move_to_end(key)
            return cached
        if snap.columns is None:
            snap.columns = MetaColumns()
        snap.columns.sync(con, snap.n_rows)
        mask = snap.columns.evaluate(flt, snap.alive)
        cached = (mask, snap.selector(mask))
        snap.masks[key] = cached
        while len(snap.masks) > _FILTER_CACHE:
            snap.masks.popitem(last=False)
        return cached
