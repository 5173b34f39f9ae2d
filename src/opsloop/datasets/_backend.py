"""The datasets room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from opsloop.datasets._service import DatasetService
from opsloop.datasets._storage import BlobFiles

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.datasets._build import BuiltVersion
    from opsloop.datasets.entities import (
        Dataset,
        DatasetDiff,
        DatasetVersion,
        DatasetVersionInfo,
        RowsPage,
        RunInput,
        VersionRun,
    )

__all__ = ["DatasetsBackend", "EmbeddedDatasets", "cache_dir", "dataset_service"]


class DatasetsBackend(Protocol):
    """What the ``Datasets`` client needs, embedded or over HTTP.

    ``files`` gives a local file for a blob: in place (a local store), or
    downloaded once into the cache (S3, or a server's store).
    """

    files: BlobFiles

    def create_dataset(
        self, name: str, *, kind: str = "tabular", description: str = "", created_by: str = ""
    ) -> Dataset: ...

    def get_dataset(self, name: str) -> Dataset: ...

    def list_datasets(self) -> list[Dataset]: ...

    def list_versions(self, name: str) -> list[DatasetVersionInfo]: ...

    def get_version(self, ref: str) -> DatasetVersion: ...

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
    ) -> tuple[DatasetVersion, bool]: ...

    def rows(
        self,
        ref: str,
        *,
        offset: int = 0,
        limit: int = 100,
        columns: list[str] | None = None,
        table: str = "data",
    ) -> RowsPage: ...

    def diff(
        self, base: str, other: str, *, key: str | None = None, max_examples: int = 10
    ) -> DatasetDiff: ...

    def split(
        self,
        ref: str,
        fractions: Mapping[str, float],
        *,
        seed: int = 0,
        stratify: str | None = None,
        names: Mapping[str, str] | None = None,
        created_by: str = "",
    ) -> dict[str, DatasetVersion]: ...

    def children(self, ref: str) -> list[DatasetVersionInfo]: ...

    def log_input(self, run_id: str, ref: str, context: str = "train") -> RunInput: ...

    def run_inputs(self, run_id: str) -> list[RunInput]: ...

    def version_runs(self, ref: str, *, include_deleted: bool = False) -> list[VersionRun]: ...


def cache_dir(ctx: Context) -> Path:
    """Where a client keeps downloaded blobs and its work folders: ``<home>/cache``."""
    return Path(ctx.settings.home) / "cache"


def dataset_service(ctx: Context) -> DatasetService:
    """The server's ``DatasetService`` over the context's database and blob store."""
    return DatasetService(ctx.database, ctx.blobs, cache_dir=cache_dir(ctx) / "server")


class EmbeddedDatasets(DatasetService):
    """The datasets backend over the context's database and blob store."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database, ctx.blobs, cache_dir=cache_dir(ctx))
