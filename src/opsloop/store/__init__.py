"""Storage: SQL metadata (SQLite or PostgreSQL, Alembic-migrated) and content-addressed blobs."""

from opsloop.store._artifacts import (
    ArtifactStore,
    BlobInfo,
    LocalArtifactStore,
    check_digest,
)
from opsloop.store._engine import SCHEMA_HEAD, Database, now_ms
from opsloop.store._metadata import metadata
from opsloop.store._open import open_artifact_store
from opsloop.store._upsert import upsert

__all__ = [
    "SCHEMA_HEAD",
    "ArtifactStore",
    "BlobInfo",
    "Database",
    "LocalArtifactStore",
    "check_digest",
    "metadata",
    "now_ms",
    "open_artifact_store",
    "upsert",
]
