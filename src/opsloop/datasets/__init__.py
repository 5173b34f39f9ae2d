"""Datasets: versioned, content-addressed data with schemas, profiles, validation, splits and lineage.

``import opsloop.datasets`` is cheap: pyarrow (the ``data`` extra) and the
rest load on first use of a name below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.datasets._chunking import (
        MARKDOWN_SUFFIXES,
        Chunk,
        ChunkingConfig,
        chunk_id,
        chunk_text,
        markdown_sections,
    )
    from opsloop.datasets._client import Datasets
    from opsloop.datasets._fluent import create, get, load, log_input
    from opsloop.datasets._rules import Rule, ValidationFailed, load_rules
    from opsloop.datasets._service import DatasetService
    from opsloop.datasets._tables import dataset_versions as dataset_versions_table
    from opsloop.datasets._tables import datasets as datasets_table
    from opsloop.datasets._tables import run_inputs as run_inputs_table
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

__all__ = [
    "MARKDOWN_SUFFIXES",
    "Chunk",
    "ChunkingConfig",
    "ColumnSchema",
    "Dataset",
    "DatasetDiff",
    "DatasetService",
    "DatasetVersion",
    "DatasetVersionInfo",
    "Datasets",
    "RowsPage",
    "Rule",
    "RunInput",
    "ValidationFailed",
    "VersionRun",
    "chunk_id",
    "chunk_text",
    "create",
    "dataset_versions_table",
    "datasets_table",
    "get",
    "load",
    "load_rules",
    "log_input",
    "markdown_sections",
    "run_inputs_table",
]

_LAZY = {
    "MARKDOWN_SUFFIXES": "opsloop.datasets._chunking",
    "Chunk": "opsloop.datasets._chunking",
    "ChunkingConfig": "opsloop.datasets._chunking",
    "chunk_id": "opsloop.datasets._chunking",
    "chunk_text": "opsloop.datasets._chunking",
    "markdown_sections": "opsloop.datasets._chunking",
    "Datasets": "opsloop.datasets._client",
    "create": "opsloop.datasets._fluent",
    "get": "opsloop.datasets._fluent",
    "load": "opsloop.datasets._fluent",
    "log_input": "opsloop.datasets._fluent",
    "Rule": "opsloop.datasets._rules",
    "ValidationFailed": "opsloop.datasets._rules",
    "load_rules": "opsloop.datasets._rules",
    "DatasetService": "opsloop.datasets._service",
    # The tables, for rooms that join on them (the registry's model cards).
    "datasets_table": "opsloop.datasets._tables",
    "dataset_versions_table": "opsloop.datasets._tables",
    "run_inputs_table": "opsloop.datasets._tables",
}
# Public names that differ from the name in their module.
_RENAMED = {
    "datasets_table": "datasets",
    "dataset_versions_table": "dataset_versions",
    "run_inputs_table": "run_inputs",
}
_LAZY.update(
    {
        n: "opsloop.datasets.entities"
        for n in (
            "ColumnSchema",
            "Dataset",
            "DatasetDiff",
            "DatasetVersion",
            "DatasetVersionInfo",
            "RowsPage",
            "RunInput",
            "VersionRun",
        )
    }
)


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__, _RENAMED)
