"""Retrieval: an embedded vector index, embedders, and retrieval over document collections.

    from opsloop.retrieval import VectorIndex, Embedder, Retriever

    idx = VectorIndex.open("docs")                      # <home>/indexes/docs/
    idx.add(["a", "b"], vectors, metadata=[{"year": 2021}, {"year": 2019}], texts=[...])
    idx.search(query_vector, k=4, filter={"year": {"$gte": 2020}})
    idx.keyword_search("install pip", k=4)              # BM25 over the texts (bm25s)
    idx.hybrid_search(query_vector, "install pip", k=4) # both, reciprocal rank fusion

    emb = Embedder.bundled()                            # all-MiniLM-L6-v2, 384 dimensions
    Retriever(idx, emb, mode="hybrid").retrieve("how do I install it?", k=4)

See ``docs/retrieval.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.retrieval._bm25 import BM25, rrf
    from opsloop.retrieval._bm25 import tokenize as keyword_tokens
    from opsloop.retrieval._client import Indexes
    from opsloop.retrieval._embedder import Embedder
    from opsloop.retrieval._index import VectorIndex
    from opsloop.retrieval._remote import RemoteIndex
    from opsloop.retrieval._retriever import Retriever, index_chunks, index_collection
    from opsloop.retrieval._snapshots import SearchHit
    from opsloop.retrieval._store import check_name

_LAZY = {
    "BM25": "opsloop.retrieval._bm25",
    "rrf": "opsloop.retrieval._bm25",
    "Embedder": "opsloop.retrieval._embedder",
    "Indexes": "opsloop.retrieval._client",
    "RemoteIndex": "opsloop.retrieval._remote",
    "SearchHit": "opsloop.retrieval._snapshots",
    "VectorIndex": "opsloop.retrieval._index",
    "Retriever": "opsloop.retrieval._retriever",
    "index_chunks": "opsloop.retrieval._retriever",
    "index_collection": "opsloop.retrieval._retriever",
    "check_name": "opsloop.retrieval._store",
}

__all__ = [
    "BM25",
    "Embedder",
    "Indexes",
    "RemoteIndex",
    "Retriever",
    "SearchHit",
    "VectorIndex",
    "check_name",
    "index_chunks",
    "index_collection",
    "keyword_tokens",
    "rrf",
]


def __getattr__(name: str) -> Any:
    if name == "keyword_tokens":
        from opsloop.retrieval._bm25 import tokenize  # lazy: loads bm25s

        globals()[name] = tokenize
        return tokenize
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop.retrieval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
