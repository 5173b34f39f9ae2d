"""``RemoteIndex``: a vector index on an opsloop server, with ``VectorIndex``'s methods.

Inputs are checked here as the embedded index checks them (so a bad vector
fails before it travels) and again by the server, which owns the index.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.retrieval._filter import compile_filter
from opsloop.retrieval._snapshots import SearchHit
from opsloop.retrieval._store import check_name
from opsloop.retrieval._validate import as_matrix, check_ids, check_k

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteIndex", "RemoteIndexes"]


def _hits(rows: Any) -> builtins.list[builtins.list[SearchHit]]:
    return [
        [
            SearchHit(id=h["id"], score=float(h["score"]), metadata=h["metadata"], text=h["text"])
            for h in row
        ]
        for row in rows
    ]


class RemoteIndex:
    """Index ``name`` on the server ``transport`` talks to."""

    def __init__(self, transport: Transport, name: str) -> None:
        self._t = transport
        self.name = check_name(name)
        self._path = f"/indexes/{quote(name, safe='')}"

    def __repr__(self) -> str:
        return f"RemoteIndex({self.name!r})"

    def __enter__(self) -> RemoteIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: the server keeps the index open."""

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = self._t.get(self._path)
        return out

    @property
    def dim(self) -> int | None:
        d = self.info()["dim"]
        return None if d is None else int(d)

    @property
    def metric(self) -> str:
        return str(self.info()["metric"])

    def __len__(self) -> int:
        return int(self.info()["count"])

    def add(
        self,
        ids: Sequence[str],
        vectors: Any,
        *,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> None:
        id_list = check_ids(ids, unique=True)
        x = as_matrix(vectors, "vectors")
        body = {
            "ids": id_list,
            "vectors": x.tolist(),
            "metadata": None if metadata is None else list(metadata),
            "texts": None if texts is None else list(texts),
        }
        # An upsert: sending it twice leaves the same index.
        self._t.post(f"{self._path}/items", body, idempotent=True)

    def delete(self, ids: Sequence[str]) -> int:
        body = {"ids": check_ids(ids, unique=False)}
        return int(self._t.post(f"{self._path}/items/delete", body, idempotent=True)["deleted"])

    def _search(self, body: dict[str, Any]) -> builtins.list[builtins.list[SearchHit]]:
        if body.get("filter"):
            compile_filter(body["filter"])  # checked here too: a bad filter never travels
        return _hits(self._t.post(f"{self._path}/search", body, idempotent=True)["results"])

    def search(
        self,
        vector: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> builtins.list[SearchHit]:
        q = as_matrix(vector, "vector")
        return self.search_batch(q[:1], k, filter=filter, exact=exact, nprobe=nprobe)[0]

    def search_batch(
        self,
        vectors: Any,
        k: int = 10,
        *,
        filter: dict[str, Any] | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> builtins.list[builtins.list[SearchHit]]:
        q = as_matrix(vectors, "vectors")
        body = {
            "vectors": q.tolist(),
            "k": check_k(k),
            "filter": filter,
            "exact": bool(exact),
            "nprobe": nprobe,
        }
        return self._search(body)

    def keyword_search(
        self, query: str, k: int = 10, *, filter: dict[str, Any] | None = None
    ) -> builtins.list[SearchHit]:
        body = {"mode": "keyword", "query": query, "k": check_k(k), "filter": filter}
        return self._search(body)[0]

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
        q = as_matrix(vector, "vector")
        body = {
            "mode": "hybrid",
            "vectors": q[:1].tolist(),
            "query": query,
            "k": check_k(k),
            "filter": filter,
            "candidates": candidates,
            "nprobe": nprobe,
        }
        return self._search(body)[0]


class RemoteIndexes:
    """The indexes backend over HTTP."""

    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def open(
        self,
        name: str,
        *,
        dim: int | None,
        metric: str | None,
        ann_threshold: int | None,
        create: bool,
    ) -> RemoteIndex:
        check_name(name)
        if create:
            body = {"name": name, "dim": dim, "metric": metric, "ann_threshold": ann_threshold}
            self._t.post("/indexes", body, idempotent=True)
        else:
            self._t.get(f"/indexes/{quote(name, safe='')}")  # NotFound when there is none
        return RemoteIndex(self._t, name)

    def list(self) -> builtins.list[str]:
        return [i["name"] for i in self._t.get("/indexes")["indexes"]]

    def info(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._t.get(f"/indexes/{quote(check_name(name), safe='')}")
        return out

    def drop(self, name: str) -> None:
        self._t.delete(f"/indexes/{quote(check_name(name), safe='')}")
