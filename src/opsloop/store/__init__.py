"""Storage: SQL metadata (SQLite or PostgreSQL, Alembic-migrated) and content-addressed blobs."""

from opsloop.store._artifacts import (
    ArtifactStore,
    BlobInfo,
    LocalArtifactStore,
    open_artifact_store,
)
from opsloop.store._engine import SCHEMA_HEAD, Database

__all__ = [
    "SCHEMA_HEAD",
    "ArtifactStore",
    "BlobInfo",
    "Database",
    "LocalArtifactStore",
    "open_artifact_store",
]
