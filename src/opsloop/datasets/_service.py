"""Dataset logic over a ``Database`` and an ``ArtifactStore``: datasets, versions, lineage.

Every public method is one transaction. A version's blobs are in the store
before the row that names them is committed (a crash leaves at most an
unreferenced blob). A version id is derived from its dataset and its content
digest, so storing the same content again finds the existing version instead
of making a new one; versions are never changed after they are stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import Connection

from opsloop.datasets import _lineage as L
from opsloop.datasets._build import BuiltVersion, build_version
from opsloop.datasets._diff import diff_files
from opsloop.datasets._kinds import check_kind
from opsloop.datasets._queries import (
    VERSION_SELECT,
    check_dataset_name,
    dataset_entity,
    dataset_row,
    info_fields,
    resolve,
    version_entity,
    version_id,
)
from opsloop.datasets._split import SplitSource, check_fractions, split_labels
from opsloop.datasets._storage import BlobFiles, read_rows
from opsloop.datasets._tables import dataset_versions, datasets
from opsloop.datasets.entities import (
    ColumnSchema,
    Dataset,
    DatasetDiff,
    DatasetVersion,
    DatasetVersionInfo,
    RowsPage,
    RunInput,
    VersionRun,
)
from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from opsloop.store import ArtifactStore, Database, check_digest, now_ms

_RETRIES = 8


class BlobRef(BaseModel):
    model_config = ConfigDict(extra="allow")
    digest: str
    size: int = Field(ge=0)


class VersionManifest(BaseModel):
    """What a client sends to store a version it built (its blobs uploaded first)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "tabular"
    format: str = Field(pattern="^(parquet|documents)$")
    content_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    row_count: int = Field(ge=1, lt=2**63)
    size_bytes: int = Field(ge=0, lt=2**63)
    columns: list[ColumnSchema] = Field(min_length=1, max_length=100_000)
    profile: dict[str, Any]
    sample: dict[str, Any]
    validation: dict[str, Any] | None = None
    status: str = Field(default="valid", pattern="^(valid|flagged)$")
    storage: dict[str, Any]
    message: str = Field(default="", max_length=100_000)
    parent_version_id: str | None = Field(default=None, max_length=64)
    derivation: str = Field(default="", max_length=256)

    @field_validator("storage")
    @classmethod
    def _blob_refs(cls, storage: dict[str, Any]) -> dict[str, Any]:
        """``data`` (required) and ``chunks`` are ``{digest, size}`` blobs, ``files`` a list of them."""
        files = storage.get("files") or []
        if not isinstance(files, list):
            raise ValueError("files must be a list of blobs")
        refs = [("data", storage.get("data")), *[(f"files.{i}", f) for i, f in enumerate(files)]]
        if "chunks" in storage:
            refs.append(("chunks", storage["chunks"]))
        for where, ref in refs:
            try:
                BlobRef.model_validate(ref)
            except ValidationError:
                raise ValueError(f"{where} must be a blob: {{digest, size}}") from None
        return storage

    @model_validator(mode="after")
    def _plain_json(self) -> VersionManifest:
        parts = [self.profile, self.sample, self.validation, self.storage]
        try:  # as the API answers it (server/_json.py): integers within 64 bits
            orjson.dumps(parts, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            msg = f"profile, sample, validation and storage must be plain JSON: {exc}"
            raise ValueError(msg) from None
        return self

    def blob_digests(self) -> list[str]:
        out = []
        for role in ("data", "chunks"):
            if role in self.storage:
                out.append(BlobRef.model_validate(self.storage[role]).digest)
        for f in self.storage.get("files") or []:
            out.append(BlobRef.model_validate(f).digest)
        return out


class DatasetService:
    """Datasets and their versions stored in one ``Database`` and ``ArtifactStore``."""

    def __init__(self, db: Database, store: ArtifactStore, *, cache_dir: Path) -> None:
        self.db = db
        self.store = store
        self.cache_dir = cache_dir
        self.files = BlobFiles(cache_dir, store=store)

    # ------------------------------------------------------------------ datasets

    def create_dataset(
        self, name: str, *, kind: str = "tabular", description: str = "", created_by: str = ""
    ) -> Dataset:
        check_dataset_name(name)
        check_kind(kind)
        try:
            with self.db.write() as conn:
                if dataset_row(conn, name) is not None:
                    raise AlreadyExists(f"dataset {name!r} already exists", details={"name": name})
                self._insert_dataset(conn, name, kind, description, created_by)
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(f"dataset {name!r} already exists", details={"name": name}) from exc
        return self.get_dataset(name)

    def _insert_dataset(
        self, conn: Connection, name: str, kind: str, description: str, created_by: str
    ) -> str:
        ts = now_ms()
        did = uuid.uuid4().hex
        conn.execute(
            datasets.insert().values(
                id=did,
                name=name,
                kind=kind,
                description=description,
                created_at=ts,
                updated_at=ts,
                created_by=created_by,
            )
        )
        return did

    def get_dataset(self, name: str) -> Dataset:
        check_dataset_name(name)
        with self.db.read() as conn:
            row = dataset_row(conn, name)
            if row is None:
                raise NotFound(f"dataset {name!r} does not exist", details={"name": name})
            count, latest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(dataset_versions.c.version)).where(
                    dataset_versions.c.dataset_id == row.id
                )
            ).one()
            return dataset_entity(row, count, latest)

    def list_datasets(self) -> list[Dataset]:
        with self.db.read() as conn:
            stats = {
                r.dataset_id: (r.n, r.latest)
                for r in conn.execute(
                    sa.select(
                        dataset_versions.c.dataset_id,
                        sa.func.count().label("n"),
                        sa.func.max(dataset_versions.c.version).label("latest"),
                    ).group_by(dataset_versions.c.dataset_id)
                )
            }
            rows = conn.execute(sa.select(datasets).order_by(datasets.c.name)).all()
        return [dataset_entity(r, *stats.get(r.id, (0, None))) for r in rows]

    # ------------------------------------------------------------------ versions

    def find_version(self, name: str, content_digest: str) -> DatasetVersion | None:
        """The version of ``name`` with that content, if stored."""
        check_dataset_name(name)
        with self.db.read() as conn:
            row = conn.execute(
                VERSION_SELECT.where(
                    datasets.c.name == name, dataset_versions.c.content_digest == content_digest
                )
            ).first()
        return None if row is None else version_entity(row)

    def register_version(
        self,
        name: str,
        manifest: VersionManifest,
        *,
        created_by: str = "",
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Store a version whose blobs are already in the store; ``(version, created)``.

        The same content again returns the stored version and ``False``.
        """
        check_dataset_name(name)
        check_kind(manifest.kind)
        missing = [d for d in manifest.blob_digests() if not self._blob_exists(d)]
        if missing:
            raise InvalidArgument(
                f"{len(missing)} blob(s) of this version were not uploaded: {missing[:3]}",
                details={"missing": missing[:100]},
            )
        self._check_data_blob(manifest)
        if manifest.parent_version_id is not None:
            self.get_version(manifest.parent_version_id)
        for _ in range(_RETRIES):
            try:
                return self._insert_version(name, manifest, created_by, description)
            except sa.exc.IntegrityError:
                continue  # a concurrent writer took the number (or stored this content): look again
        raise Conflict(f"could not store a version of {name!r}: too many concurrent writers")

    def _insert_version(
        self, name: str, m: VersionManifest, created_by: str, description: str
    ) -> tuple[DatasetVersion, bool]:
        with self.db.write() as conn:
            ds = dataset_row(conn, name)
            if ds is None:
                did = self._insert_dataset(conn, name, m.kind, description, created_by)
            else:
                did = ds.id
                if ds.kind != m.kind:
                    raise Conflict(
                        f"dataset {name!r} holds {ds.kind} data, not {m.kind}",
                        details={"name": name, "kind": ds.kind},
                    )
            vid = version_id(did, m.content_digest)
            existing = conn.execute(VERSION_SELECT.where(dataset_versions.c.id == vid)).first()
            if existing is not None:
                return version_entity(existing), False
            number = (
                conn.execute(
                    sa.select(sa.func.max(dataset_versions.c.version)).where(
                        dataset_versions.c.dataset_id == did
                    )
                ).scalar()
                or 0
            ) + 1
            ts = now_ms()
            conn.execute(
                dataset_versions.insert().values(
                    id=vid,
                    dataset_id=did,
                    version=number,
                    content_digest=m.content_digest,
                    message=m.message,
                    format=m.format,
                    row_count=m.row_count,
                    size_bytes=m.size_bytes,
                    schema_json=[c.model_dump() for c in m.columns],
                    profile_json=m.profile,
                    sample_json=m.sample,
                    validation_json=m.validation,
                    status=m.status,
                    storage_json=m.storage,
                    parent_version_id=m.parent_version_id,
                    derivation=m.derivation,
                    created_at=ts,
                    created_by=created_by,
                )
            )
            conn.execute(datasets.update().where(datasets.c.id == did).values(updated_at=ts))
            row = conn.execute(VERSION_SELECT.where(dataset_versions.c.id == vid)).one()
            return version_entity(row), True

    def _blob_exists(self, digest: str) -> bool:
        check_digest(digest)
        return self.store.exists(digest)

    def _check_data_blob(self, m: VersionManifest) -> None:
        """The data blob is Parquet with the manifest's rows and columns (footer only)."""
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - a server without the data extra
            return
        digest = BlobRef.model_validate(m.storage.get("data") or {}).digest
        try:
            meta = pq.read_metadata(str(self.files.path(digest)))
            names = meta.schema.to_arrow_schema().names
        except Exception as exc:
            raise InvalidArgument(f"the data blob {digest} is not a Parquet file: {exc}") from exc
        if meta.num_rows != m.row_count or names != [c.name for c in m.columns]:
            raise InvalidArgument(
                "the data blob does not match the version's row count or columns "
                f"({meta.num_rows} rows, {names})"
            )

    def store_built(
        self,
        name: str,
        built: BuiltVersion,
        *,
        message: str = "",
        parent_version_id: str | None = None,
        derivation: str = "",
        created_by: str = "",
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Put a locally built version's blobs in the store and register it."""
        existing = self.find_version(name, built.content_digest)
        if existing is not None:
            return existing, False
        for blob in built.blobs:
            if not self.store.exists(blob.digest):
                info = self.store.put_file(blob.path)
                if info.digest != blob.digest:
                    raise InvalidArgument(f"{blob.path} changed while it was being stored")
        manifest = VersionManifest.model_validate(
            built.manifest(
                message=message, parent_version_id=parent_version_id, derivation=derivation
            )
        )
        return self.register_version(name, manifest, created_by=created_by, description=description)

    def list_versions(self, name: str) -> list[DatasetVersionInfo]:
        check_dataset_name(name)
        with self.db.read() as conn:
            if dataset_row(conn, name) is None:
                raise NotFound(f"dataset {name!r} does not exist", details={"name": name})
            rows = conn.execute(
                VERSION_SELECT.where(datasets.c.name == name).order_by(dataset_versions.c.version)
            ).all()
        return [DatasetVersionInfo(**info_fields(r)) for r in rows]

    def get_version(self, ref: str) -> DatasetVersion:
        """A version by ``name@N``, ``name@latest``, ``name`` (latest) or version id."""
        with self.db.read() as conn:
            return version_entity(resolve(conn, ref))

    def children(self, ref: str) -> list[DatasetVersionInfo]:
        """Versions derived from this one (splits), across datasets."""
        return L.children(self.db, ref)

    # ------------------------------------------------------------------ lineage

    def log_input(self, run_id: str, ref: str, context: str = "train") -> RunInput:
        """Record that a run read a version (again is a no-op)."""
        return L.log_input(self.db, run_id, ref, context)

    def run_inputs(self, run_id: str) -> list[RunInput]:
        """The dataset versions a run read."""
        return L.run_inputs(self.db, run_id)

    def version_runs(self, ref: str, *, include_deleted: bool = False) -> list[VersionRun]:
        """The runs that read a version."""
        return L.version_runs(self.db, ref, include_deleted=include_deleted)

    # ------------------------------------------------------------------ reading

    def data_path(self, version: DatasetVersion, table: str = "data") -> Path:
        """A local file holding the version's ``data`` (or ``chunks``) Parquet blob."""
        entry = version.storage.get(table)
        if not entry:
            raise InvalidArgument(f"version {version.ref} has no {table!r} table")
        return self.files.path(BlobRef.model_validate(entry).digest)

    def rows(
        self,
        ref: str,
        *,
        offset: int = 0,
        limit: int = 100,
        columns: list[str] | None = None,
        table: str = "data",
    ) -> RowsPage:
        """One page of a version's rows (``table="chunks"`` for a document collection's chunks)."""
        if table not in ("data", "chunks"):
            raise InvalidArgument("table must be 'data' or 'chunks'")
        v = self.get_version(ref)
        page = read_rows(self.data_path(v, table), offset=offset, limit=limit, columns=columns)
        return RowsPage(**page)

    def diff(
        self, base: str, other: str, *, key: str | None = None, max_examples: int = 10
    ) -> DatasetDiff:
        """What changed from version ``base`` to version ``other`` (see ``_diff``)."""
        a, b = self.get_version(base), self.get_version(other)
        result = diff_files(
            self.data_path(a),
            [c.model_dump() for c in a.columns],
            self.data_path(b),
            [c.model_dump() for c in b.columns],
            key=key,
            max_examples=max_examples,
        )
        return DatasetDiff(
            base=a.info(),
            other=b.info(),
            key=result["key"],
            schema_changes=result["schema"],
            compared_columns=result["compared_columns"],
            rows=result["rows"],
            examples=result["examples"],
        )

    def split(
        self,
        ref: str,
        fractions: Mapping[str, float],
        *,
        seed: int = 0,
        stratify: str | None = None,
        names: Mapping[str, str] | None = None,
        created_by: str = "",
    ) -> dict[str, DatasetVersion]:
        """Split a version into new versions of ``<name>.<split>`` datasets (or ``names``),
        each recording its parent and how it was derived."""
        parts = check_fractions(fractions)
        v = self.get_version(ref)
        if v.kind == "documents":
            raise InvalidArgument("a document collection cannot be split; split its sources")
        if stratify is not None and stratify not in [c.name for c in v.columns]:
            raise InvalidArgument(f"no column {stratify!r} to stratify by in {v.ref}")
        targets = {p: (names or {}).get(p) or f"{v.dataset_name}.{p}" for p, _ in parts}
        for t in targets.values():
            check_dataset_name(t)
        path = self.data_path(v)
        labels = split_labels(path, v.row_count, parts, seed=seed, stratify=stratify)
        spec = ",".join(f"{p}={f:g}" for p, f in parts)
        out: dict[str, DatasetVersion] = {}
        for k, (part, _) in enumerate(parts):
            built = build_version(
                SplitSource(path, labels, k, f"split {part} of {v.ref}"),
                kind=v.kind,
                work_parent=self.cache_dir / "tmp",
            )
            try:
                derivation = f"split {part} of {v.ref} ({spec}; seed={seed}"
                derivation += f"; stratify={stratify})" if stratify else ")"
                out[part], _ = self.store_built(
                    targets[part],
                    built,
                    message=f"{part} split of {v.ref}",
                    parent_version_id=v.id,
                    derivation=derivation[:256],
                    created_by=created_by,
                    description=f"splits of {v.dataset_name}",
                )
            finally:
                built.cleanup()
        return out
