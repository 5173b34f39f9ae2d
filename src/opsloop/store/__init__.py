"""Storage: SQL metadata (SQLite or PostgreSQL, Alembic-migrated) and content-addressed blobs."""

from opsloop.store._artifacts import (
    ArtifactStore,
    BlobInfo,
    BlobStat,
    LocalArtifactStore,
    TempFile,
    check_digest,
)
from opsloop.store._batches import delete_batch, update_batch
from opsloop.store._engine import SCHEMA_HEAD, Database, now_ms
from opsloop.store._gc import GcReport, blob_ref_columns, collect_garbage
from opsloop.store._metadata import metadata
from opsloop.store._open import open_artifact_store
from opsloop.store._upsert import upsert

__all__ = [
    "SCHEMA_HEAD",
    "ArtifactStore",
    "BlobInfo",
    "BlobStat",
    "Database",
    "GcReport",
    "LocalArtifactStore",
    "TempFile",
    "blob_ref_columns",
    "check_digest",
    "collect_garbage",
    "delete_batch",
    "metadata",
    "now_ms",
    "open_artifact_store",
    "update_batch",
    "upsert",
]
