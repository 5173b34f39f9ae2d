"""Dataset types that cross the SDK and the REST API.

``DatasetVersion.profile`` holds ``{"row_count", "columns": [...]}``: per
column ``name, type, count, nulls, null_fraction``, and as they apply
``min, max, mean, std, quantiles {p5..p95}, quantiles_exact, non_finite,
distinct, distinct_exact, top [{value, count}], top_exact, text_length
{min, max, mean, std}`` (see ``opsloop.datasets._profile`` for how the
approximate ones are made). ``sample`` holds ``{"rows", "row_indices"}``.
``validation`` is the rules report (None without rules): ``passed,
rows_checked, total_violations, rules [{rule, column, name, params,
violations, examples [{row, value}], message}]``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ColumnSchema",
    "Dataset",
    "DatasetDiff",
    "DatasetVersion",
    "DatasetVersionInfo",
    "RowsPage",
    "RunInput",
    "VersionRun",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dataset(_Model):
    id: str
    name: str
    kind: str
    description: str
    created_at: int
    updated_at: int
    created_by: str
    version_count: int = 0
    latest_version: int | None = None


class ColumnSchema(_Model):
    name: str
    type: str
    nullable: bool


class DatasetVersionInfo(_Model):
    """A version without its profile and sample (what listings return)."""

    id: str
    dataset_id: str
    dataset_name: str
    kind: str
    version: int
    content_digest: str
    message: str
    format: str
    row_count: int
    size_bytes: int
    status: str
    parent_version_id: str | None = None
    derivation: str = ""
    created_at: int
    created_by: str

    @property
    def ref(self) -> str:
        """``name@version``, the way the CLI and ``Datasets.get`` name it."""
        return f"{self.dataset_name}@{self.version}"


class DatasetVersion(DatasetVersionInfo):
    """A version with its schema, profile, sample rows and validation report."""

    columns: list[ColumnSchema]
    profile: dict[str, Any]
    sample: dict[str, Any]
    validation: dict[str, Any] | None = None
    storage: dict[str, Any]

    def info(self) -> DatasetVersionInfo:
        return DatasetVersionInfo.model_validate(
            self.model_dump(include=set(DatasetVersionInfo.model_fields))
        )


class RowsPage(_Model):
    columns: list[str]
    rows: list[dict[str, Any]]
    offset: int
    limit: int
    total: int


class DatasetDiff(_Model):
    base: DatasetVersionInfo
    other: DatasetVersionInfo
    key: str | None
    schema_changes: dict[str, Any]
    compared_columns: list[str]
    rows: dict[str, int]
    examples: dict[str, list[dict[str, Any]]]


class RunInput(_Model):
    """A dataset version a run read, and in which role (``train``, ``validation``...)."""

    run_id: str
    dataset_version_id: str
    dataset_name: str
    version: int
    context: str
    created_at: int


class VersionRun(_Model):
    """A run that read a dataset version."""

    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    context: str
    created_at: int
