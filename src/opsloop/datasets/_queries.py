"""Row-level helpers shared by the dataset service and lineage: names, ids, lookups.

Each function works inside a caller's transaction (a ``Connection``) or turns
rows into entities; none opens a transaction of its own.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.datasets._tables import dataset_versions, datasets
from opsloop.datasets.entities import ColumnSchema, Dataset, DatasetVersion
from opsloop.errors import InvalidArgument, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")
ID_RE = re.compile(r"^[0-9a-f]{32}$")


def check_dataset_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"dataset name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-' and '.' (at most 256 characters)"
        )
    return name


def version_id(dataset_id: str, content_digest: str) -> str:
    """A version's id: the same dataset and content always give the same id."""
    return hashlib.sha256(f"{dataset_id}:{content_digest}".encode()).hexdigest()[:32]


def dataset_entity(row: Any, count: int = 0, latest: int | None = None) -> Dataset:
    return Dataset(
        id=row.id,
        name=row.name,
        kind=row.kind,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        version_count=count,
        latest_version=latest,
    )


def info_fields(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset_id": row.dataset_id,
        "dataset_name": row.dataset_name,
        "kind": row.kind,
        "version": row.version,
        "content_digest": row.content_digest,
        "message": row.message,
        "format": row.format,
        "row_count": row.row_count,
        "size_bytes": row.size_bytes,
        "status": row.status,
        "parent_version_id": row.parent_version_id,
        "derivation": row.derivation,
        "created_at": row.created_at,
        "created_by": row.created_by,
    }


def version_entity(row: Any) -> DatasetVersion:
    return DatasetVersion(
        **info_fields(row),
        columns=[ColumnSchema.model_validate(c) for c in row.schema_json],
        profile=row.profile_json,
        sample=row.sample_json,
        validation=row.validation_json,
        storage=row.storage_json,
    )


VERSION_SELECT = sa.select(
    dataset_versions, datasets.c.name.label("dataset_name"), datasets.c.kind
).join(datasets, datasets.c.id == dataset_versions.c.dataset_id)


def dataset_row(conn: Connection, name: str) -> Any:
    return conn.execute(sa.select(datasets).where(datasets.c.name == name)).first()


def resolve(conn: Connection, ref: Any) -> Any:
    """The version row for ``name@N``, ``name@latest``, ``name`` (its latest) or a version id."""
    if not isinstance(ref, str) or not ref or len(ref) > 300:
        raise InvalidArgument(f"not a dataset version reference: {ref!r}")
    name, sep, ver = ref.rpartition("@")
    if not sep:
        if ID_RE.match(ref):
            row = conn.execute(VERSION_SELECT.where(dataset_versions.c.id == ref)).first()
            if row is not None:
                return row
        name, ver = ref, "latest"
    check_dataset_name(name)
    q = VERSION_SELECT.where(datasets.c.name == name)
    if ver == "latest":
        q = q.order_by(dataset_versions.c.version.desc()).limit(1)
    elif ver.isdigit():
        q = q.where(dataset_versions.c.version == int(ver))
    else:
        raise InvalidArgument(f"version in {ref!r} must be a number or 'latest'")
    row = conn.execute(q).first()
    if row is None:
        if dataset_row(conn, name) is None:
            raise NotFound(f"dataset {name!r} does not exist", details={"name": name})
        raise NotFound(f"dataset version {ref!r} does not exist", details={"ref": ref})
    return row
