"""``IndexService``: the vector indexes under one home, with open handles kept between calls.

The server answers the index routes with it (``api.py``): opening an index
loads its vectors into FAISS once, so handles stay open while the server
runs and every request reuses them. An index dropped or recreated by another
process answers ``NotFound`` on its stale handle; the handle is then closed
and the next call opens the index again.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval._index import VectorIndex
from opsloop.retrieval._store import check_name

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.retrieval._index import AnyIndex
    from opsloop.retrieval._snapshots import SearchHit

T = TypeVar("T")
MODES = ("dense", "keyword", "hybrid")


def hit_json(h: SearchHit) -> dict[str, Any]:
    return {"id": h.id, "score": h.score, "metadata": h.metadata, "text": h.text}


class IndexService:
    """Create, list, describe, drop, fill and search the indexes under ``home``."""

    def __init__(self, home: str | Path) -> None:
        self.home = Path(home)
        self._lock = threading.Lock()
        self._open: dict[str, AnyIndex] = {}

    def _handle(self, name: str) -> AnyIndex:
        check_name(name)
        with self._lock:
            idx = self._open.get(name)
            if idx is None:
                idx = VectorIndex.open(name, home=self.home, create=False)
                self._open[name] = idx
            return idx

    def _evict(self, name: str) -> None:
        with self._lock:
            idx = self._open.pop(name, None)
        if idx is not None:
            idx.close()

    def _with(self, name: str, fn: Callable[[AnyIndex], T]) -> T:
        idx = self._handle(name)
        try:
            return fn(idx)
        except NotFound:
            self._evict(name)  # dropped elsewhere: reopen (or answer NotFound) next time
            raise

    # ---------------------------------------------------------------- indexes

    def create(
        self,
        name: str,
        *,
        dim: int | None = None,
        metric: str | None = None,
        ann_threshold: int | None = None,
    ) -> dict[str, Any]:
        """Create index ``name`` (or check an existing one has this ``dim`` and ``metric``)."""
        check_name(name)
        with self._lock:
            idx = self._open.pop(name, None)
        if idx is not None:
            idx.close()
        idx = VectorIndex.open(
            name, home=self.home, dim=dim, metric=metric, ann_threshold=ann_threshold
        )
        with self._lock:
            old = self._open.pop(name, None)
            self._open[name] = idx
        if old is not None:
            old.close()
        return idx.info()

    def list(self) -> builtins.list[dict[str, Any]]:
        out = []
        for name in VectorIndex.list(self.home):
            try:
                out.append(self.info(name))
            except NotFound:  # dropped meanwhile
                continue
        return out

    def info(self, name: str) -> dict[str, Any]:
        return self._with(name, lambda idx: idx.info())

    def drop(self, name: str) -> None:
        check_name(name)
        self._evict(name)
        VectorIndex.drop(name, home=self.home)

    # ---------------------------------------------------------------- items

    def add(
        self,
        name: str,
        ids: Sequence[str],
        vectors: Any,
        *,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> dict[str, Any]:
        def run(idx: AnyIndex) -> dict[str, Any]:
            idx.add(ids, vectors, metadata=metadata, texts=texts)
            return {"added": len(ids), "count": len(idx)}

        return self._with(name, run)

    def delete(self, name: str, ids: Sequence[str]) -> dict[str, Any]:
        return self._with(name, lambda idx: {"deleted": idx.delete(ids)})

    def search(
        self,
        name: str,
        *,
        vectors: Any = None,
        query: str | None = None,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        mode: str = "dense",
        candidates: int = 50,
    ) -> builtins.list[builtins.list[dict[str, Any]]]:
        """Per query, its hits as JSON objects ``{id, score, metadata, text}``."""
        if mode not in MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "keyword" and vectors is None:
            raise InvalidArgument(f"a {mode} search needs vectors")
        if mode != "dense" and query is None:
            raise InvalidArgument(f"a {mode} search needs the query text")
        if mode == "hybrid" and len(vectors) != 1:
            raise InvalidArgument("a hybrid search takes one vector")

        def run(idx: AnyIndex) -> builtins.list[builtins.list[SearchHit]]:
            if mode == "keyword":
                assert query is not None
                return [idx.keyword_search(query, k, filter=filter)]
            if mode == "hybrid":
                assert query is not None
                return [
                    idx.hybrid_search(
                        vectors[0], query, k, filter=filter, candidates=candidates, nprobe=nprobe
                    )
                ]
            return idx.search_batch(vectors, k, filter=filter, exact=exact, nprobe=nprobe)

        return [[hit_json(h) for h in row] for row in self._with(name, run)]

    def close(self) -> None:
        with self._lock:
            handles, self._open = list(self._open.values()), {}
        for idx in handles:
            idx.close()


def index_service(ctx: Context) -> IndexService:
    """The server's service, on the context's home (``service(index_service)`` in ``api.py``)."""
    return IndexService(ctx.settings.home)
