"""``LanceIndex``: the vector index on LanceDB, for collections that outgrow memory.

Chosen by ``Settings.index_backend = "lance"`` (``OPSLOOP_INDEX_BACKEND``) or
``VectorIndex.open(name, backend="lance")``; an existing index always opens with
the backend it was made with. Each index is one Lance table ``<name>.lance``
under ``Settings.index_uri`` (``OPSLOOP_INDEX_URI``): by default the home's
``indexes/`` folder, or ``s3://bucket/prefix`` on any S3-compatible store (the
endpoint and region are ``s3_endpoint_url`` / ``s3_region``; credentials come
from the usual ``AWS_*`` variables). Vectors stay on disk or in the bucket: a
search reads the IVF partitions it probes, not the whole table.

It keeps the contract of the FAISS index: upsert and delete by id, cosine or L2,
metadata filters (compiled to a ``where`` clause applied before the vector search,
see ``_lance_filter``), exact search below ``ann_threshold`` rows and an IVF-PQ
index (re-ranked on the full vectors) from there, trained again when the table has
grown fourfold. Every write is a Lance commit, atomic and visible to every other
process at its next read. Not here (FAISS index only): keyword and hybrid search.
"""

from __future__ import annotations

import builtins
import json
import math
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import _store as S
from opsloop.retrieval._filter import compile_filter
from opsloop.retrieval._lance_filter import row_columns, where_sql
from opsloop.retrieval._snapshots import SearchHit
from opsloop.retrieval._validate import (
    as_matrix,
    check_ids,
    check_k,
    check_nprobe,
    check_rows,
    normalise,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

_MIN_TRAIN = 256
_META = "opsloop."


def _root(home: str | os.PathLike[str] | None, uri: str | None) -> tuple[str, dict[str, str]]:
    """The LanceDB location of the indexes and its storage options."""
    from opsloop.settings import Settings  # lazy: loads pydantic_settings

    settings = Settings()
    location = uri or settings.index_uri
    if not location:
        root = S.indexes_root(home if home is not None else settings.home)
        root.mkdir(parents=True, exist_ok=True)
        return str(root), {}
    options: dict[str, str] = {}
    if location.startswith("s3://"):
        if settings.s3_endpoint_url:
            options["aws_endpoint"] = settings.s3_endpoint_url
            if settings.s3_endpoint_url.startswith("http://"):
                options["allow_http"] = "true"
        options["aws_region"] = settings.s3_region or "us-east-1"
    return location, options


def _connect(home: str | os.PathLike[str] | None, uri: str | None) -> Any:
    import lancedb  # lazy: optional extra (retrieval-lance)

    location, options = _root(home, uri)
    # A zero interval: every read sees the latest commit of any process.
    return lancedb.connect(
        location, storage_options=options or None, read_consistency_interval=timedelta(0)
    )


def lance_exists(name: str, home: str | os.PathLike[str] | None, uri: str | None = None) -> bool:
    return name in _tables(_connect(home, uri))


def _tables(db: Any) -> builtins.list[str]:
    tables = db.list_tables()
    names = getattr(tables, "tables", tables)
    return sorted(str(n) for n in names)


class LanceIndex:
    """A named vector index in a LanceDB table; open it with ``VectorIndex.open`` (the
    ``lance`` backend) or ``LanceIndex.open``. ``path`` is the table's folder for a local
    index; ``location`` is its URI either way."""

    def __init__(self, name: str, db: Any, table: Any, pending: dict[str, Any]) -> None:
        self.name = name
        self.location = f"{str(db.uri).rstrip('/')}/{name}.lance"
        self.path = Path(self.location)
        self._db = db
        self._tbl = table  # None until the first vectors fix the dimension
        self._pending = pending  # dim/metric/ann_threshold of a table not made yet
        self._fixed: tuple[int, str] | None = None  # (dim, metric), fixed once the table is
        self._vix: tuple[int, dict[str, Any] | None] | None = None  # (version, vector index)
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        name: str,
        *,
        dim: int | None = None,
        home: str | os.PathLike[str] | None = None,
        metric: str | None = None,
        ann_threshold: int | None = None,
        create: bool = True,
        backend: str | None = "lance",
        uri: str | None = None,
    ) -> LanceIndex:
        S.check_name(name)
        if backend != "lance":
            raise InvalidArgument(f"LanceIndex is the lance backend, not {backend!r}")
        db = _connect(home, uri)
        table = db.open_table(name) if name in _tables(db) else None
        if table is None and not create:
            raise NotFound(f"vector index {name!r} does not exist", details={"index": name})
        pending = {"dim": dim, "metric": metric or "cosine", "ann_threshold": ann_threshold}
        idx = cls(name, db, table, pending)
        if table is not None:
            if metric is not None and metric != idx.metric:
                raise InvalidArgument(
                    f"vector index {name!r} uses metric {idx.metric!r}, not {metric!r}"
                )
            if dim is not None and dim != idx.dim:
                raise InvalidArgument(
                    f"vector index {name!r} holds {idx.dim}-dimensional vectors, not {dim}"
                )
        elif dim is not None:
            idx._make_table(dim)
        return idx

    @staticmethod
    def list(
        home: str | os.PathLike[str] | None = None, uri: str | None = None
    ) -> builtins.list[str]:
        return _tables(_connect(home, uri))

    @staticmethod
    def drop(name: str, home: str | os.PathLike[str] | None = None, uri: str | None = None) -> None:
        S.check_name(name)
        db = _connect(home, uri)
        if name not in _tables(db):
            raise NotFound(f"vector index {name!r} does not exist", details={"index": name})
        db.drop_table(name)

    def close(self) -> None:
        self._closed = True
        self._tbl = None

    def __enter__(self) -> LanceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LanceIndex({self.name!r}, location={self.location!r})"

    def _make_table(self, dim: int) -> None:
        import pyarrow as pa  # lazy: optional extra

        meta = {
            f"{_META}metric": self._pending["metric"],
            f"{_META}ann_threshold": str(self._pending["ann_threshold"] or 10_000),
            f"{_META}created_at": str(int(time.time() * 1000)),
        }
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("vector", pa.list_(pa.float32(), dim)),
                ("text", pa.string()),
                ("metadata", pa.string()),
                ("kv", pa.list_(pa.string())),
            ],
            metadata=meta,
        )
        # exist_ok: a racing creator made it first (with the same schema, or a different
        # dimension, which the next add reports).
        self._tbl = self._db.create_table(self.name, schema=schema, exist_ok=True)

    def _table(self) -> Any:
        if self._closed:
            raise InvalidArgument(f"vector index {self.name!r} is closed")
        if self._tbl is not None and self.name not in _tables(self._db):
            raise NotFound(f"vector index {self.name!r} was dropped")
        return self._tbl

    def _meta(self, key: str) -> str | None:
        tbl = self._table()
        if tbl is None:
            return None
        raw = tbl.schema.metadata or {}
        value = raw.get(f"{_META}{key}".encode())
        return None if value is None else value.decode()

    # ------------------------------------------------------------------ properties

    def _dim_metric(self) -> tuple[int | None, str]:
        if self._fixed is not None:
            self._table()  # still there
            return self._fixed
        tbl = self._table()
        if tbl is None:
            d = self._pending["dim"]
            return (None if d is None else int(d)), str(self._pending["metric"])
        dim = int(tbl.schema.field("vector").type.list_size)
        self._fixed = (dim, self._meta("metric") or str(self._pending["metric"]))
        return self._fixed

    @property
    def dim(self) -> int | None:
        return self._dim_metric()[0]

    @property
    def metric(self) -> str:
        return self._dim_metric()[1]

    @property
    def ann_threshold(self) -> int:
        return int(self._meta("ann_threshold") or self._pending["ann_threshold"] or 10_000)

    def __len__(self) -> int:
        tbl = self._table()
        return 0 if tbl is None else int(tbl.count_rows())

    def __contains__(self, id: object) -> bool:
        tbl = self._table()
        if not isinstance(id, str) or tbl is None:
            return False
        return bool(tbl.count_rows(f"id = {_quote(id)}"))

    def _vector_index(self) -> dict[str, Any] | None:
        """The table's vector index and its row counts (read again at each new version)."""
        tbl = self._table()
        if tbl is None:
            return None
        version = int(tbl.version)
        if self._vix is not None and self._vix[0] == version:
            return self._vix[1]
        found = None
        for ix in tbl.list_indices():
            if "vector" in list(ix.columns):
                stats = tbl.index_stats(ix.name)
                found = {
                    "name": ix.name,
                    "indexed": int(stats.num_indexed_rows),
                    "unindexed": int(stats.num_unindexed_rows),
                }
                break
        self._vix = (version, found)
        return found

    def info(self) -> dict[str, Any]:
        tbl = self._table()
        vix = self._vector_index()
        count = len(self)
        return {
            "name": self.name,
            "path": self.location,
            "dim": self.dim,
            "metric": self.metric,
            "count": count,
            "rows": count,
            "deleted": 0,
            "search": "ivf_pq" if vix else "exact",
            "engine": "lance",
            "nlist": _nlist(count if vix is None else vix["indexed"]) if vix else None,
            "nprobe": None,
            "trained_on": vix["indexed"] if vix else None,
            "unindexed": vix["unindexed"] if vix else None,
            "ann_threshold": self.ann_threshold,
            "size_bytes": 0 if tbl is None else int(_stat(tbl.stats(), "total_bytes")),
            "generation": 0 if tbl is None else int(tbl.version),
            "created_at": int(self._meta("created_at") or 0),
        }

    # ------------------------------------------------------------------ writing

    def add(
        self,
        ids: Sequence[str],
        vectors: Any,
        *,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> None:
        """Add vectors, or replace the ones whose id is already there (upsert), atomically."""
        id_list, x, mds, txts = check_rows(ids, vectors, metadata, texts)
        if not id_list:
            return
        dim = self.dim
        if dim is not None and x.shape[1] != dim:
            raise InvalidArgument(
                f"vectors have {x.shape[1]} dimensions; index {self.name!r} holds {dim}",
                details={"expected": dim, "got": int(x.shape[1])},
            )
        xs = normalise(x, "vectors") if self.metric == "cosine" else x
        if self._table() is None:
            self._make_table(int(x.shape[1]))
        self._upsert(id_list, xs, mds, txts)
        self._maintain()

    def _upsert(
        self,
        ids: builtins.list[str],
        xs: npt.NDArray[np.float32],
        mds: builtins.list[tuple[str, builtins.list[tuple[str, int, Any]]]],
        txts: builtins.list[str | None],
    ) -> None:
        import pyarrow as pa  # lazy: optional extra

        tbl = self._table()
        cols = [row_columns(kv) for _, kv in mds]
        have = set(tbl.schema.names)
        new = sorted({c for _, r in cols for c in r} - have)
        if new:
            # New metadata keys: their range columns (null for the rows already there).
            types = {"n": "DOUBLE", "s": "STRING"}
            tbl.add_columns({c: f"CAST(NULL AS {types[c.rsplit('_', 1)[1][0]]})" for c in new})
        schema = tbl.schema
        data: dict[str, Any] = {
            "id": ids,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(xs.ravel()), xs.shape[1]),
            "text": txts,
            "metadata": [m for m, _ in mds],
            "kv": [toks for toks, _ in cols],
        }
        for name in schema.names:
            if name.startswith("r_"):
                data[name] = [r.get(name) for _, r in cols]
        batch = pa.table(data, schema=schema)
        (
            tbl.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(batch)
        )

    def delete(self, ids: Sequence[str]) -> int:
        """Delete items by id; returns how many existed."""
        id_list = check_ids(ids, unique=False)
        tbl = self._table()
        if not id_list or tbl is None:
            return 0
        where = f"id IN ({', '.join(_quote(i) for i in sorted(set(id_list)))})"
        n = int(tbl.count_rows(where))
        if n:
            tbl.delete(where)
        return n

    def _maintain(self) -> None:
        """Train the IVF-PQ index past ``ann_threshold`` rows (again when grown fourfold);
        fold rows added since into it once they are a quarter of it."""
        live = len(self)
        vix = self._vector_index()
        if vix is None:
            if live >= self.ann_threshold:
                self.rebuild(train=True)
        elif live >= 4 * vix["indexed"]:
            self.rebuild(train=True)
        elif vix["unindexed"] > max(1000, vix["indexed"] // 4):
            self._table().optimize()

    def rebuild(self, *, train: bool | None = None, nlist: int | None = None) -> None:
        """Compact the table and (re)train its IVF-PQ index; ``train=False`` drops it
        (exact search)."""
        if nlist is not None and (isinstance(nlist, bool) or not isinstance(nlist, int)):
            raise InvalidArgument(f"nlist must be a positive integer, got {nlist!r}")
        tbl = self._table()
        live = len(self)
        if train is None:
            train = live >= self.ann_threshold
        if train and live < _MIN_TRAIN:
            raise InvalidArgument(
                f"training the IVF quantizer needs at least {_MIN_TRAIN} vectors; "
                f"index {self.name!r} holds {live}"
            )
        if nlist is not None and not 1 <= nlist <= live:
            raise InvalidArgument(f"nlist must be between 1 and {live}, got {nlist}")
        if tbl is None:
            return
        vix = self._vector_index()
        if not train:
            if vix is not None:
                tbl.drop_index(vix["name"])
            return
        from lancedb.index import IvfPq  # lazy: optional extra

        config = IvfPq(
            distance_type="cosine" if self.metric == "cosine" else "l2",
            num_partitions=nlist or _nlist(live),
            num_sub_vectors=_subvectors(int(self.dim or 0)),
        )
        tbl.create_index("vector", config=config, replace=True)

    # ------------------------------------------------------------------ searching

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
        """``search`` for each row of ``vectors``."""
        q = as_matrix(vectors, "vectors")
        k = check_k(k)
        probes = check_nprobe(nprobe)
        if filter:
            compile_filter(filter)  # the same checks and messages as the FAISS index
        tbl = self._table()
        if tbl is None:
            return [[] for _ in range(len(q))]
        dim = self.dim
        if q.shape[1] != dim:
            raise InvalidArgument(
                f"query has {q.shape[1]} dimensions; index {self.name!r} holds {dim}",
                details={"expected": dim, "got": int(q.shape[1])},
            )
        cosine = self.metric == "cosine"
        if cosine:
            q = normalise(q, "query")
        where = where_sql(filter, tbl.schema.names) if filter else None
        vix = None if exact else self._vector_index()
        # Probe a tenth of the lists (at least 40); twice that under a filter, whose
        # matches are spread thinner over each list.
        if vix is not None and probes is None:
            probes = max(40, _nlist(vix["indexed"]) // 10) * (2 if where else 1)
        out = []
        for row in q:
            query = (
                tbl.search(row, vector_column_name="vector")
                .distance_type("cosine" if cosine else "l2")
                .select(["id", "text", "metadata", "_distance"])
                .limit(k)
            )
            if where:
                query = query.where(where, prefilter=True)
            if vix is not None:
                query = query.nprobes(probes or 40).refine_factor(10)
            else:
                query = query.bypass_vector_index()
            out.append(_hits(query.to_arrow(), cosine))
        return out

    def keyword_search(
        self, query: str, k: int = 10, *, filter: dict[str, Any] | None = None
    ) -> builtins.list[SearchHit]:
        raise _no_keywords(self.name)

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
        raise _no_keywords(self.name)


def _no_keywords(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"vector index {name!r} is on the lance backend, which has no keyword or hybrid "
        "search; use the faiss backend for them"
    )


def _hits(table: Any, cosine: bool) -> builtins.list[SearchHit]:
    rows = table.to_pylist()
    rows.sort(key=lambda r: r["_distance"])
    return [
        SearchHit(
            id=r["id"],
            score=1.0 - r["_distance"] if cosine else math.sqrt(max(r["_distance"], 0.0)),
            metadata=json.loads(r["metadata"]),
            text=r["text"],
        )
        for r in rows
    ]


def _stat(stats: Any, key: str) -> Any:
    return stats[key] if isinstance(stats, dict) else getattr(stats, key)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _nlist(n: int) -> int:
    return max(1, min(4096, math.isqrt(n)))


def _subvectors(dim: int) -> int:
    """PQ sub-vectors: about 8 dimensions each, dividing ``dim``."""
    for want in (dim // 8, dim // 4, dim // 2, dim // 16):
        if want >= 1 and dim % want == 0:
            return want
    return 1
