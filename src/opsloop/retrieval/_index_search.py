"""Searching a ``VectorIndex``: query checks, metadata filters (as cached row masks) and hits."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from opsloop.errors import InvalidArgument
from opsloop.retrieval._filter import compile_filter
from opsloop.retrieval._snapshots import SearchHit, hits_for
from opsloop.retrieval._validate import as_matrix, check_k, check_nprobe, normalise

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
        return self.search_batch(q, k, filter=filter, exact=exact, nprobe=nprobe)[0]

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
        q = as_matrix(vectors, "vectors")
        k = check_k(k)
        probes = check_nprobe(nprobe)
        compiled = compile_filter(filter) if filter else None
        return self._read(
            lambda con, snap: self._search(con, snap, q, k, compiled, bool(exact), probes)
        )

    def _search(
        self,
        con: sqlite3.Connection,
        snap: Snapshot | None,
        q: npt.NDArray[np.float32],
        k: int,
        compiled: tuple[str, builtins.list[Any]] | None,
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
        mask = None
        if compiled is not None:
            mask = self._filter_mask(con, snap, compiled)
        rids, sc = snap.search(q, k, mask=mask, exact=exact, nprobe=nprobe)
        return hits_for(con, snap.metric, q, rids, sc)

    def _filter_mask(
        self, con: sqlite3.Connection, snap: Snapshot, compiled: tuple[str, builtins.list[Any]]
    ) -> Any:
        import numpy as np

        sql, params = compiled
        key = (sql, json.dumps(params))
        mask = snap.masks.get(key)
        if mask is None:
            rids = np.fromiter((r for (r,) in con.execute(sql, params)), dtype=np.int64)
            mask = snap.positions(rids)
            snap.masks[key] = mask
            while len(snap.masks) > _FILTER_CACHE:
                snap.masks.popitem(last=False)
        else:
            snap.masks.move_to_end(key)
        return mask
