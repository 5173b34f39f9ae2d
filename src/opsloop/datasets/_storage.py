"""Reading stored versions: a local file for each blob, then Parquet reads over it.

A blob in a local artifact store is read in place. Any other blob (S3, or a
server's store seen from a remote client) is downloaded once into
``<cache>/blobs/``, checked against its digest, and read from there; Parquet
needs a seekable file to read only the row groups and columns asked for.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import require_pyarrow, rows_jsonable
from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.store import ArtifactStore, LocalArtifactStore, check_digest

if TYPE_CHECKING:
    import pyarrow as pa

MAX_PAGE_ROWS = 10_000
Fetch = Callable[[str], Iterable[bytes]]


class BlobFiles:
    """Local paths for blobs: in place for a local store, else a verified download cache."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        store: ArtifactStore | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.store = store
        self.fetch = fetch

    def path(self, digest: str) -> Path:
        hexpart = check_digest(digest)
        if isinstance(self.store, LocalArtifactStore):
            return self.store.local_path(digest)
        target = self.cache_dir / "blobs" / hexpart[:2] / hexpart
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        chunks: Iterable[bytes]
        if self.store is not None:
            chunks = self.store.iter_chunks(digest)
        elif self.fetch is not None:
            chunks = self.fetch(digest)
        else:  # pragma: no cover - built with one of the two
            raise OpsloopError("no way to read blobs")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for block in chunks:
                    h.update(block)
                    out.write(block)
            if "sha256:" + h.hexdigest() != digest:
                raise OpsloopError(f"blob {digest} arrived damaged (digest mismatch)")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target


def _check_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    cols = list(columns)
    missing = [c for c in cols if c not in schema.names]
    if missing:
        raise InvalidArgument(
            f"no column(s) {missing} in this version; columns are {schema.names}",
            details={"missing": missing},
        )
    return cols


def iter_parquet(
    path: Path, *, columns: Sequence[str] | None = None, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """The file's record batches in order, only ``columns`` if given."""
    import pyarrow.parquet as pq

    if batch_size < 1:
        raise InvalidArgument("batch_size must be at least 1")
    pf = pq.ParquetFile(str(path))
    try:
        cols = _check_columns(pf.schema_arrow, columns)
        yield from pf.iter_batches(batch_size=batch_size, columns=cols)
    finally:
        pf.close()


def read_table(path: Path, *, columns: Sequence[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    try:
        return pf.read(columns=_check_columns(pf.schema_arrow, columns))
    finally:
        pf.close()


def read_rows(
    path: Path, *, offset: int = 0, limit: int = 100, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    """One page of rows as JSON-safe dicts: only the row groups that hold it are read."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    if offset < 0:
        raise InvalidArgument("offset must be at least 0")
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE_ROWS}")
    pf = pq.ParquetFile(str(path))
    try:
        cols = _check_columns(pf.schema_arrow, columns)
        meta = pf.metadata
        total = meta.num_rows
        groups: list[int] = []
        skip = start = 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            end = start + n
            if end > offset and start < offset + limit:
                if not groups:
                    skip = offset - start
                groups.append(g)
            start = end
        names = cols if cols is not None else pf.schema_arrow.names
        if groups:
            table = pf.read_row_groups(groups, columns=cols).slice(skip, limit)
        else:
            table = pa.table({n: pa.array([], type=pf.schema_arrow.field(n).type) for n in names})
    finally:
        pf.close()
    return {
        "columns": names,
        "rows": rows_jsonable(table),
        "offset": offset,
        "limit": limit,
        "total": total,
    }


def take_rows(
    path: Path, indices: Sequence[int], columns: Sequence[str] | None = None
) -> dict[int, dict[str, Any]]:
    """``{row index: JSON-safe row}`` for the given indices, in one streaming pass."""
    import numpy as np

    want = np.array(sorted(set(indices)), dtype=np.int64)
    out: dict[int, dict[str, Any]] = {}
    if not len(want):
        return out
    start = 0
    for batch in iter_parquet(path, columns=columns):
        end = start + batch.num_rows
        lo, hi = np.searchsorted(want, [start, end])
        if hi > lo:
            local = want[lo:hi] - start
            rows = rows_jsonable(batch.take(local))
            for i, row in zip(want[lo:hi].tolist(), rows, strict=True):
                out[i] = row
        start = end
        if start > want[-1]:
            break
    return out
