"""Retrieval over an index: embed a question, search, and fill an index from chunks.

``index_collection`` embeds the chunks of a document collection (a dataset
version of kind ``documents``) into an index: chunk ids become item ids, the
chunk text the item text, and the metadata carries ``source`` (the file's
path), ``title``, ``doc_id``, ``chunk_index``, ``start``/``end`` (character
offsets into the document) and ``heading_path``, so hits can cite where they
came from and be filtered by file.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets.entities import DatasetVersion
from opsloop.errors import InvalidArgument
from opsloop.retrieval._index import VectorIndex

if TYPE_CHECKING:
    from opsloop.datasets import Datasets
    from opsloop.retrieval._embedder import Embedder
    from opsloop.retrieval._index import AnyIndex
    from opsloop.retrieval._snapshots import SearchHit
    from opsloop.tracking import Tracking

Progress = Callable[[int, int | None], None]  # (items done, total or None)


MODES = ("dense", "keyword", "hybrid")


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


class Retriever:
    """``retrieve(query)``: the ``k`` chunks of ``index`` nearest to a question.

    ``mode``: ``"dense"`` (the embedder's vectors, the default), ``"keyword"``
    (BM25 over the chunks' texts) or ``"hybrid"`` (both, fused by reciprocal rank).
    """

    def __init__(self, index: AnyIndex, embedder: Embedder, *, mode: str = "dense") -> None:
        self.index = index
        self.embedder = embedder
        self.mode = check_mode(mode)

    def retrieve(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None
    ) -> builtins.list[SearchHit]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("the query must be a non-empty string")
        if self.mode == "keyword":
            return self.index.keyword_search(query, k, filter=filter)
        vector = self.embedder.embed([query])[0]
        if self.mode == "hybrid":
            return self.index.hybrid_search(vector, query, k, filter=filter)
        return self.index.search(vector, k, filter=filter)

    def retrieve_batch(
        self, queries: builtins.list[str], k: int = 4, filter: dict[str, Any] | None = None
    ) -> builtins.list[builtins.list[SearchHit]]:
        if not queries:
            return []
        if self.mode != "dense":
            return [self.retrieve(q, k, filter) for q in queries]
        return self.index.search_batch(self.embedder.embed(queries), k, filter=filter)


def index_chunks(
    index: AnyIndex,
    embedder: Embedder,
    chunks: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Embed and add (upsert) chunks ``{"id", "text", "metadata"?}`` in batches; returns
    how many were added. ``progress(done, total)`` is called after each batch."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size must be a positive integer, got {batch_size!r}")
    done = 0
    batch: builtins.list[Mapping[str, Any]] = []

    def flush() -> None:
        nonlocal done
        texts = [c["text"] for c in batch]
        vectors = embedder.embed(texts)
        index.add(
            [c["id"] for c in batch],
            vectors,
            metadata=[c.get("metadata") or None for c in batch],
            texts=texts,
        )
        done += len(batch)
        batch.clear()
        if progress is not None:
            progress(done, total)

    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, Mapping):
            raise InvalidArgument(f"chunk {i} must be an object with id and text")
        if not isinstance(chunk.get("id"), str) or not isinstance(chunk.get("text"), str):
            raise InvalidArgument(f"chunk {i} needs a string 'id' and a string 'text'")
        md = chunk.get("metadata")
        if md is not None and not isinstance(md, Mapping):
            raise InvalidArgument(
                f"chunk {i} ({chunk['id']!r}): metadata must be an object (a dict), "
                f"got {type(md).__name__}",
                details={"chunk": i, "id": chunk["id"]},
            )
        batch.append(chunk)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return done


def _datasets(ctx: Context) -> Datasets:
    from opsloop.datasets import Datasets  # lazy: loads sqlalchemy

    return ctx.room(Datasets)


def check_collection(
    client: Tracking | Context | HasContext | None, collection: str | DatasetVersion
) -> DatasetVersion:
    """The document collection ``collection`` names (``NotFound``/``InvalidArgument`` otherwise),
    looked up without reading its data: commands check it before loading an embedder."""
    version = (
        collection
        if isinstance(collection, DatasetVersion)
        else _datasets(context_of(client)).get(collection)
    )
    if version.kind != "documents" or not version.storage.get("chunks"):
        raise InvalidArgument(
            f"dataset version {version.ref} is not a document collection (kind {version.kind!r})"
        )
    return version


def collection_chunks(
    client: Tracking | Context | HasContext | None, version: DatasetVersion
) -> builtins.list[dict[str, Any]]:
    """The chunks of a document collection as ``{"id", "text", "metadata"}``."""
    ds = _datasets(context_of(client))
    check_collection(client, version)
    titles = {r["doc_id"]: r["title"] for r in ds.iter_rows(version, columns=["doc_id", "title"])}
    out = []
    for row in ds.chunks(version).to_pylist():
        out.append(
            {
                "id": row["chunk_id"],
                "text": row["text"],
                "metadata": {
                    "source": row["source"],
                    "title": titles.get(row["doc_id"]),
                    "doc_id": row["doc_id"],
                    "chunk_index": row["chunk_index"],
                    "start": row["start"],
                    "end": row["end"],
                    "heading_path": list(row["heading_path"] or []),
                    "dataset": version.ref,
                },
            }
        )
    return out


def index_collection(
    client: Tracking | Context | HasContext | None,
    collection: str | DatasetVersion,
    index_name: str,
    embedder: Embedder,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    home: Any = None,
) -> AnyIndex:
    """Embed a document collection's chunks (``"name@version"`` or a ``DatasetVersion``)
    into index ``index_name`` (created with the embedder's dimension, cosine) and return it.

    Chunks already in the index (same chunk id) are replaced; the index lives
    under ``home`` (default: the client's home).
    """
    ctx = context_of(client)
    version = (
        collection if isinstance(collection, DatasetVersion) else _datasets(ctx).get(collection)
    )
    chunks = collection_chunks(ctx, version)
    index = VectorIndex.open(
        index_name, dim=embedder.dim, home=home or ctx.settings.home, metric="cosine"
    )
    try:
        index_chunks(
            index, embedder, chunks, batch_size=batch_size, progress=progress, total=len(chunks)
        )
    except BaseException:
        index.close()
        raise
    return index
