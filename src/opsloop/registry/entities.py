"""Registry types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CardFields",
    "DatasetLineage",
    "FileEntry",
    "LineageDataset",
    "LineageModelVersion",
    "LineageRun",
    "ModelAlias",
    "ModelCard",
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "VersionLineage",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Model):
    """One file of a model version: its content digest and size."""

    digest: str
    size: int


class ModelVersion(_Model):
    id: str
    model_id: str
    name: str
    version: int
    flavor: str
    source: str = ""
    source_run_id: str | None = None
    description: str = ""
    status: str = "READY"
    signature: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, FileEntry] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    created_at: int
    created_by: str = ""

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``: this exact version."""
        return f"models:/{self.name}/{self.version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())


class RegisteredModel(_Model):
    id: str
    name: str
    kind: str = "model"
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict)  # alias -> version number
    latest_version: int | None = None
    version_count: int = 0
    created_at: int
    updated_at: int
    created_by: str = ""


class ModelAlias(_Model):
    name: str
    alias: str
    version: int
    version_id: str
    updated_at: int
    updated_by: str = ""


class RegistryEvent(_Model):
    """One recorded change: who did what, when."""

    id: int
    model_id: str
    model_name: str
    version: int | None = None
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)
    actor: str = ""
    at: int


class CardFields(BaseModel):
    """The editable, structured part of a model card (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    summary: str | None = Field(default=None, max_length=20_000)
    intended_use: str | None = Field(default=None, max_length=20_000)
    limitations: str | None = Field(default=None, max_length=20_000)
    ethical_considerations: str | None = Field(default=None, max_length=20_000)
    evaluation_notes: str | None = Field(default=None, max_length=20_000)
    license: str | None = Field(default=None, max_length=256)
    owners: list[str] | None = Field(default=None, max_length=100)
    extra: dict[str, str] | None = Field(default=None, max_length=200)


class ModelCard(_Model):
    """A version's card: facts generated from lineage, fields people edit, and its markdown.

    ``markdown`` is the person-written text when ``custom_markdown`` is true,
    otherwise it is rendered from the generated facts and the fields.
    """

    name: str
    version: int
    generated: dict[str, Any]
    fields: dict[str, Any] = Field(default_factory=dict)
    markdown: str
    custom_markdown: bool = False
    updated_at: int
    updated_by: str = ""


class LineageDataset(_Model):
    dataset_version_id: str
    dataset_id: str | None = None
    dataset_name: str | None = None
    version: int | None = None
    context: str = ""
    row_count: int | None = None
    content_digest: str | None = None


class LineageModelVersion(_Model):
    name: str
    version: int
    version_id: str
    aliases: list[str] = Field(default_factory=list)


class LineageRun(_Model):
    run_id: str
    name: str = ""
    experiment_id: str = ""
    status: str = ""
    context: str | None = None  # how the run read the dataset (dataset lineage only)
    datasets: list[LineageDataset] = Field(default_factory=list)
    model_versions: list[LineageModelVersion] = Field(default_factory=list)


class VersionLineage(_Model):
    """Upstream of a model version: the run that produced it and the data that run read."""

    model: LineageModelVersion
    source: str = ""
    run: LineageRun | None = None
    datasets: list[LineageDataset] = Field(default_factory=list)
    base_model: LineageModelVersion | None = None  # adapters: the version they sit on


class DatasetLineage(_Model):
    """Downstream of a dataset version: the runs that read it and the versions they produced."""

    dataset: LineageDataset
    runs: list[LineageRun] = Field(default_factory=list)
    model_versions: list[LineageModelVersion] = Field(default_factory=list)
