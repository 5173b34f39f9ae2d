"""``Datasets(client)``: the datasets SDK, the same embedded or against a server.

Creating a version always happens where the data is: the client reads the
input (streaming), checks, profiles and hashes it, and writes the Parquet
blobs in a private work folder. Embedded, the blobs go straight into the
store; remote, each blob the server lacks is uploaded to the content-addressed
``PUT /api/v1/blobs/{digest}`` endpoint (the server checks the digest), then
the version's metadata is posted and the server checks the blobs are there.
Reading data back downloads a blob once into ``<home>/cache/blobs``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.core import context_of
from opsloop.datasets._queries import check_dataset_name
from opsloop.datasets._service import DatasetService, VersionManifest
from opsloop.datasets._storage import BlobFiles, iter_parquet, read_table
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

    from opsloop.datasets._build import BuiltVersion, Progress
    from opsloop.sdk import Client

Ref = str | DatasetVersion | DatasetVersionInfo


def _ref(ref: Ref) -> str:
    if isinstance(ref, DatasetVersionInfo):
        return ref.id
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument(f"not a dataset version reference: {ref!r}")
    return ref


def _q(ref: str) -> str:
    return quote(ref, safe="@")





class Datasets:
    """Dataset versions: create, look at, read, validate, split, diff, and lineage.

    References (``ref``) are ``"name@3"``, ``"name@latest"``, ``"name"`` (the
    latest), a version id, or a ``DatasetVersion``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._cache_dir = Path(client.settings.home) / "cache"
        if client.is_remote:
            self._rest: Any = client.backend
            self._svc: DatasetService | None = None
            self._files = BlobFiles(self._cache_dir, fetch=self._fetch_blob)
        else:
            backend: Any = client.backend
            self._rest = None
            self._svc = DatasetService(backend.db, backend.store, cache_dir=self._cache_dir)
            self._files = self._svc.files

    # ------------------------------------------------------------------ datasets

    def create_dataset(self, name: str, *, kind: str = "tabular", description: str = "") -> Dataset:
        if self._svc is not None:
            return self._svc.create_dataset(
                name, kind=kind, description=description, created_by=context_of(self._client).user
            )
        body = {"name": name, "kind": kind, "description": description, "created_by": context_of(self._client).user}
        return Dataset.model_validate(self._rest._json("POST", "/datasets", json=body))

    def get_dataset(self, name: str) -> Dataset:
        if self._svc is not None:
            return self._svc.get_dataset(name)
        check_dataset_name(name)
        return Dataset.model_validate(self._rest._json("GET", f"/datasets/{quote(name)}"))

    def list(self) -> builtins.list[Dataset]:
        if self._svc is not None:
            return self._svc.list_datasets()
        data = self._rest._json("GET", "/datasets")
        return [Dataset.model_validate(d) for d in data["datasets"]]

    def versions(self, name: str) -> builtins.list[DatasetVersionInfo]:
        if self._svc is not None:
            return self._svc.list_versions(name)
        check_dataset_name(name)
        data = self._rest._json("GET", f"/datasets/{quote(name)}/versions")
        return [DatasetVersionInfo.model_validate(v) for v in data["versions"]]

    def get(self, ref: Ref) -> DatasetVersion:
        """A version with its schema, profile, sample rows and validation report."""
        r = _ref(ref)
        if self._svc is not None:
            return self._svc.get_version(r)
        return DatasetVersion.model_validate(self._rest._json("GET", f"/dataset-versions/{_q(r)}"))

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
        from opsloop.datasets._build import build_version, check_on_error
        from opsloop.datasets._kinds import check_kind

        check_dataset_name(name)
        check_on_error(on_error)
        kind = self._kind_for(name, kind, data)
        check_kind(kind)
        work = self._cache_dir / "tmp"
        if kind == "documents":
            from opsloop.datasets._chunking import ChunkingConfig
            from opsloop.datasets._documents import build_documents

            cfg = (
                chunking
                if isinstance(chunking, ChunkingConfig)
                else ChunkingConfig(**(chunking or {}))
            )
            built = build_documents(data, cfg, progress=progress, work_parent=work)
        else:
            if chunking is not None:
                raise InvalidArgument("chunking applies to documents datasets only")
            from opsloop.datasets._readers import open_source

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
        if self._svc is not None:
            v, _ = self._svc.store_built(
                name,
                built,
                message=message,
                parent_version_id=parent_version_id,
                derivation=derivation,
                created_by=context_of(self._client).user,
                description=description,
            )
            return v
        found = self._find_remote(name, built.content_digest)
        if found is not None:
            return found
        digests = sorted({b.digest for b in built.blobs})
        missing = set(
            self._rest._json("POST", "/blobs/missing", json={"digests": digests}, idempotent=True)[
                "missing"
            ]
        )
        for blob in built.blobs:
            if blob.digest in missing:
                self._upload(blob.digest, blob.path)
                missing.discard(blob.digest)
        manifest = VersionManifest.model_validate(
            built.manifest(
                message=message, parent_version_id=parent_version_id, derivation=derivation
            )
        )
        body = {
            "manifest": manifest.model_dump(mode="json"),
            "created_by": context_of(self._client).user,
            "description": description,
        }
        data = self._rest._json("POST", f"/datasets/{quote(name)}/versions", json=body)
        return DatasetVersion.model_validate(data["version"])

    def _find_remote(self, name: str, digest: str) -> DatasetVersion | None:
        try:
            data = self._rest._json(
                "GET", f"/datasets/{quote(name)}/versions", params={"content_digest": digest}
            )
        except NotFound:
            return None
        if not data["versions"]:
            return None
        return self.get(data["versions"][0]["id"])

    def _upload(self, digest: str, path: Path) -> None:
        with open(path, "rb") as fh:
            self._rest._json(
                "PUT",
                f"/blobs/{digest}",
                content=fh,
                headers={"Content-Type": "application/octet-stream"},
            )

    def _fetch_blob(self, digest: str) -> Iterator[bytes]:
        import httpx

        from opsloop.errors import Unavailable

        try:
            with self._rest._http.stream("GET", f"/blobs/{digest}") as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._rest._error(resp)
                yield from resp.iter_bytes(1 << 20)
        except httpx.TransportError as exc:
            raise Unavailable(f"download of blob {digest} failed: {exc}") from exc

    # ------------------------------------------------------------------ reading

    def _path(self, ref: Ref, table: str = "data") -> tuple[DatasetVersion, Path]:
        v = ref if isinstance(ref, DatasetVersion) else self.get(ref)
        entry = v.storage.get(table)
        if not entry:
            raise InvalidArgument(f"version {v.ref} has no {table!r} table")
        return v, self._files.path(entry["digest"])

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
        from opsloop.datasets._storage import take_rows

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
        r = _ref(ref)
        cols = list(columns) if columns is not None else None
        if self._svc is not None:
            return self._svc.rows(r, offset=offset, limit=limit, columns=cols, table=table)
        params: dict[str, Any] = {"offset": offset, "limit": limit, "table": table}
        if cols is not None:
            params["columns"] = cols
        return RowsPage.model_validate(
            self._rest._json("GET", f"/dataset-versions/{_q(r)}/rows", params=params)
        )

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
        a, b = _ref(base), _ref(other)
        if self._svc is not None:
            return self._svc.diff(a, b, key=key, max_examples=max_examples)
        params: dict[str, Any] = {"other": b, "max_examples": max_examples}
        if key is not None:
            params["key"] = key
        return DatasetDiff.model_validate(
            self._rest._json("GET", f"/dataset-versions/{_q(a)}/diff", params=params)
        )

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
        r = _ref(ref)
        if self._svc is not None:
            return self._svc.split(
                r, fractions, seed=seed, stratify=stratify, names=names, created_by=context_of(self._client).user
            )
        body = {
            "fractions": dict(fractions),
            "seed": seed,
            "stratify": stratify,
            "names": dict(names or {}),
            "created_by": context_of(self._client).user,
        }
        data = self._rest._json("POST", f"/dataset-versions/{_q(r)}/splits", json=body)
        return {k: DatasetVersion.model_validate(v) for k, v in data["splits"].items()}

    def children(self, ref: Ref) -> builtins.list[DatasetVersionInfo]:
        """Versions derived from this one (its splits)."""
        r = _ref(ref)
        if self._svc is not None:
            return self._svc.children(r)
        data = self._rest._json("GET", f"/dataset-versions/{_q(r)}/children")
        return [DatasetVersionInfo.model_validate(v) for v in data["versions"]]

    # ------------------------------------------------------------------ lineage

    def log_input(self, run_id: str, ref: Ref, *, context: str = "train") -> RunInput:
        """Record that run ``run_id`` read this version (``context``: train, validation, ...)."""
        r = _ref(ref)
        if self._svc is not None:
            return self._svc.log_input(run_id, r, context)
        if not isinstance(run_id, str) or not run_id:
            raise InvalidArgument(f"not a run id: {run_id!r}")
        body = {"dataset_version": r, "context": context}
        return RunInput.model_validate(
            self._rest._json(
                "POST", f"/runs/{quote(run_id, safe='')}/inputs", json=body, idempotent=True
            )
        )

    def run_inputs(self, run_id: str) -> builtins.list[RunInput]:
        """The dataset versions a run read."""
        if self._svc is not None:
            return self._svc.run_inputs(run_id)
        data = self._rest._json("GET", f"/runs/{quote(run_id, safe='')}/inputs")
        return [RunInput.model_validate(i) for i in data["inputs"]]

    def version_runs(self, ref: Ref, *, include_deleted: bool = False) -> builtins.list[VersionRun]:
        """The runs that read this version."""
        r = _ref(ref)
        if self._svc is not None:
            return self._svc.version_runs(r, include_deleted=include_deleted)
        data = self._rest._json(
            "GET", f"/dataset-versions/{_q(r)}/runs", params={"include_deleted": include_deleted}
        )
        return [VersionRun.model_validate(x) for x in data["runs"]]
