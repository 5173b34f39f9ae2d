"""``Datasets(context)``: the datasets SDK, the same embedded or against a server.

Creating a version always happens where the data is: the client reads the
input (streaming), checks, profiles and hashes it, and writes the Parquet
blobs in a private work folder; the backend then stores them (embedded: into
the blob store; remote: uploads what the server lacks, see ``_remote``).
Reading data back goes through a local file per blob (``backend.files``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets._backend import DatasetsBackend, EmbeddedDatasets, cache_dir
from opsloop.datasets._build import BuiltVersion, Progress, build_version, check_on_error
from opsloop.datasets._chunking import ChunkingConfig
from opsloop.datasets._documents import build_documents
from opsloop.datasets._kinds import check_kind
from opsloop.datasets._queries import check_dataset_name
from opsloop.datasets._readers import open_source
from opsloop.datasets._remote import RemoteDatasets
from opsloop.datasets._storage import iter_parquet, read_table, take_rows
from opsloop.datasets.entities import (
    Dataset,
    DatasetDiff,
    DatasetVersion,
    DatasetVersionInfo,
    RowsPage,
    RunInput,
    VersionRun,
)
from opsloop.errors import Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Datasets", "Ref"]

Ref = str | DatasetVersion | DatasetVersionInfo


def _ref(ref: Ref) -> str:
    if isinstance(ref, DatasetVersionInfo):
        return ref.id
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument(f"not a dataset version reference: {ref!r}")
    return ref


def _embedded(ctx: Context) -> DatasetsBackend:
    return EmbeddedDatasets(ctx)


def _remote(ctx: Context) -> DatasetsBackend:
    return RemoteDatasets(ctx)


class Datasets:
    """Dataset versions: create, look at, read, validate, split, diff, and lineage.

    References (``ref``) are ``"name@3"``, ``"name@latest"``, ``"name"`` (the
    latest), a version id, or a ``DatasetVersion``.
    """

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._cache_dir = cache_dir(ctx)
        self._backend: DatasetsBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    # ------------------------------------------------------------------ datasets

    def create_dataset(self, name: str, *, kind: str = "tabular", description: str = "") -> Dataset:
        return self._backend.create_dataset(
            name, kind=kind, description=description, created_by=self._context.user
        )

    def get_dataset(self, name: str) -> Dataset:
        return self._backend.get_dataset(name)

    def list(self) -> builtins.list[Dataset]:
        return self._backend.list_datasets()

    def versions(self, name: str) -> builtins.list[DatasetVersionInfo]:
        return self._backend.list_versions(name)

    def get(self, ref: Ref) -> DatasetVersion:
        """A version with its schema, profile, sample rows and validation report."""
        return self._backend.get_version(_ref(ref))

    # ------------------------------------------------------------------ creating

    def create(
        self,
        name: str,
        data: Any,
        *,
        message: str = "",
        kind: str | None = None,
        rules: Any = None,
        on_error: str = "reject",
        format: str | None = None,
        column_types: Mapping[str, str] | None = None,
        chunking: Any = None,
        description: str = "",
        progress: Progress | None = None,
    ) -> DatasetVersion:
        """Make a version of dataset ``name`` from ``data`` (created if new); return it.

        ``data``: a CSV/TSV/JSONL/JSON/Parquet file path, a list of dicts, a
        dict of columns, a pandas DataFrame, an Arrow table, an iterator of
        dicts; for ``kind="documents"`` a folder or a list of text/Markdown
        files (``chunking``: a ``ChunkingConfig`` or its fields as a dict).
        The same content as a stored version returns that version. ``rules``
        (list of ``Rule``, mapping, or YAML/JSON path) are checked on every
        row: ``on_error="reject"`` raises ``ValidationFailed`` and stores
        nothing, ``"flag"`` stores the version with status ``flagged`` and the
        report. ``column_types`` forces types (``{"zip": "string"}``).
        """
        check_dataset_name(name)
        check_on_error(on_error)
        kind = self._kind_for(name, kind, data)
        check_kind(kind)
        work = self._cache_dir / "tmp"
        if kind == "documents":
            cfg = (
                chunking
                if isinstance(chunking, ChunkingConfig)
                else ChunkingConfig(**(chunking or {}))
            )
            built = build_documents(data, cfg, progress=progress, work_parent=work)
        else:
            if chunking is not None:
                raise InvalidArgument("chunking applies to documents datasets only")
            source = open_source(data, fmt=format, column_types=column_types)
            built = build_version(
                source,
                kind=kind,
                rules=rules,
                on_error=on_error,
                column_types=column_types,
                progress=progress,
                work_parent=work,
            )
        try:
            return self._store(name, built, message=message, description=description)
        finally:
            built.cleanup()

    def _kind_for(self, name: str, kind: str | None, data: Any) -> str:
        try:
            existing = self.get_dataset(name).kind
        except NotFound:
            existing = None
        if kind is not None and existing is not None and kind != existing:
            raise Conflict(f"dataset {name!r} holds {existing} data, not {kind}")
        if kind is not None:
            return kind
        if existing is not None:
            return existing
        if isinstance(data, str | os.PathLike) and Path(data).is_dir():
            return "documents"
        if (
            isinstance(data, builtins.list | tuple)
            and data
            and all(isinstance(x, str | os.PathLike) for x in data)
        ):
            return "documents"  # a list of files (records would be dicts)
        return "tabular"

    def _store(
        self,
        name: str,
        built: BuiltVersion,
        *,
        message: str,
        description: str = "",
        parent_version_id: str | None = None,
        derivation: str = "",
    ) -> DatasetVersion:
        v, _ = self._backend.store_built(
            name,
            built,
            message=message,
            parent_version_id=parent_version_id,
            derivation=derivation,
            created_by=self._context.user,
            description=description,
        )
        return v

    # ------------------------------------------------------------------ reading

    def _path(self, ref: Ref, table: str = "data") -> tuple[DatasetVersion, Path]:
        v = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        entry = v.storage.get(table)
        if not entry:
            raise InvalidArgument(f"version {v.ref} has no {table!r} table")
        return v, self._backend.files.path(entry["digest"])

    def iter_batches(
        self, ref: Ref, *, columns: Sequence[str] | None = None, batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The version's rows as Arrow record batches, streaming."""
        _, path = self._path(ref)
        yield from iter_parquet(path, columns=columns, batch_size=batch_size)

    def iter_rows(
        self, ref: Ref, *, columns: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The version's rows as dicts, streaming."""
        for batch in self.iter_batches(ref, columns=columns, batch_size=8192):
            yield from batch.to_pylist()

    def to_arrow(self, ref: Ref, *, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole version (or some columns) as one Arrow table, in memory."""
        _, path = self._path(ref)
        return read_table(path, columns=columns)

    def to_pandas(self, ref: Ref, *, columns: Sequence[str] | None = None) -> Any:
        """The version as a pandas DataFrame (needs pandas)."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise ImportError("to_pandas needs pandas: pip install pandas") from exc
        return self.to_arrow(ref, columns=columns).to_pandas()

    def head(
        self, ref: Ref, n: int = 10, *, columns: Sequence[str] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The first ``n`` rows as dicts."""
        out: list[dict[str, Any]] = []
        for batch in self.iter_batches(ref, columns=columns, batch_size=max(1, min(n, 65_536))):
            out.extend(batch.to_pylist()[: n - len(out)])
            if len(out) >= n:
                break
        return out

    def sample(
        self, ref: Ref, n: int = 10, *, seed: int = 0, columns: Sequence[str] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """``n`` rows drawn uniformly without replacement (seeded), in row order."""
        import numpy as np

        v, path = self._path(ref)
        if n < 0:
            raise InvalidArgument("n must be at least 0")
        n = min(n, v.row_count)
        picked = np.sort(np.random.default_rng(seed).choice(v.row_count, size=n, replace=False))
        rows = take_rows(path, picked.tolist(), columns)
        return [rows[i] for i in picked.tolist()]

    def rows(
        self,
        ref: Ref,
        *,
        offset: int = 0,
        limit: int = 100,
        columns: Sequence[str] | None = None,
        table: str = "data",
    ) -> RowsPage:
        """One page of rows as JSON-safe dicts (what the UI shows)."""
        cols = builtins.list(columns) if columns is not None else None
        return self._backend.rows(_ref(ref), offset=offset, limit=limit, columns=cols, table=table)

    def chunks(self, ref: Ref, *, columns: Sequence[str] | None = None) -> pa.Table:
        """A document collection's chunks (``chunk_id, source, start, end, heading_path,
        text, ...``) as an Arrow table."""
        _, path = self._path(ref, "chunks")
        return read_table(path, columns=columns)

    # ------------------------------------------------------------------ derived

    def diff(
        self, base: Ref, other: Ref, *, key: str | None = None, max_examples: int = 10
    ) -> DatasetDiff:
        """Rows added, removed and changed, and schema changes, from ``base`` to ``other``."""
        return self._backend.diff(_ref(base), _ref(other), key=key, max_examples=max_examples)

    def split(
        self,
        ref: Ref,
        fractions: Mapping[str, float],
        *,
        seed: int = 0,
        stratify: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> dict[str, DatasetVersion]:
        """Deterministic split into new versions of ``<name>.<split>`` (or ``names``)."""
        return self._backend.split(
            _ref(ref),
            fractions,
            seed=seed,
            stratify=stratify,
            names=names,
            created_by=self._context.user,
        )

    def children(self, ref: Ref) -> builtins.list[DatasetVersionInfo]:
        """Versions derived from this one (its splits)."""
        return self._backend.children(_ref(ref))

    # ------------------------------------------------------------------ lineage

    def log_input(self, run_id: str, ref: Ref, *, context: str = "train") -> RunInput:
        """Record that run ``run_id`` read this version (``context``: train, validation, ...)."""
        return self._backend.log_input(run_id, _ref(ref), context)

    def run_inputs(self, run_id: str) -> builtins.list[RunInput]:
        """The dataset versions a run read."""
        return self._backend.run_inputs(run_id)

    def version_runs(self, ref: Ref, *, include_deleted: bool = False) -> builtins.list[VersionRun]:
        """The runs that read this version."""
        return self._backend.version_runs(_ref(ref), include_deleted=include_deleted)
