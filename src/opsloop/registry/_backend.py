"""The registry room's seam: one typed Protocol, embedded or over HTTP.

``EmbeddedRegistry`` is the ``RegistryService`` on the context's database and
blob store; ``RemoteRegistry`` (``_remote.py``) calls ``/api/v1/registry``
through the context's ``Transport``. ``Context.seam`` picks one, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.registry._remote import RemoteRegistry
from opsloop.registry._service import RegistryService
from opsloop.registry.entities import (
    CardFields,
    DatasetLineage,
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionLineage,
)

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["EmbeddedRegistry", "RegistryBackend", "registry_backend", "registry_service"]


class RegistryBackend(Protocol):
    """Everything the ``Registry`` client needs from storage, embedded or remote."""

    def create_model(
        self,
        name: str,
        *,
        kind: str = "model",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(
        self, *, kind: str | None = None, name_contains: str | None = None, max_results: int = 1000
    ) -> list[RegisteredModel]: ...
    def update_model(self, name: str, *, description: str | None = None) -> RegisteredModel: ...
    def rename_model(self, name: str, new_name: str) -> RegisteredModel: ...
    def delete_model(self, name: str) -> None: ...
    def set_model_tag(self, name: str, key: str, value: Any) -> None: ...
    def delete_model_tag(self, name: str, key: str) -> None: ...

    def register(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int | str) -> ModelVersion: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def update_version(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion: ...
    def delete_version(self, name: str, version: int | str) -> None: ...
    def set_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None: ...
    def delete_version_tag(self, name: str, version: int | str, key: str) -> None: ...

    def set_alias(
        self, name: str, alias: str, version: int | str, *, force: bool = False
    ) -> ModelAlias: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def list_aliases(self, name: str) -> list[ModelAlias]: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
    def resolve(self, uri: str) -> ModelVersion: ...

    def get_card(self, name: str, version: int | str) -> ModelCard: ...
    def update_card(
        self,
        name: str,
        version: int | str,
        *,
        fields: CardFields | Mapping[str, Any] | None = None,
        markdown: str | None = None,
        regenerate: bool = False,
    ) -> ModelCard: ...
    def version_lineage(self, name: str, version: int | str) -> VersionLineage: ...
    def dataset_lineage(self, dataset_version_id: str) -> DatasetLineage: ...
    def history(
        self, name: str, *, version: int | None = None, limit: int = 1000
    ) -> list[RegistryEvent]: ...

    def fetch_file(self, mv: ModelVersion, path: str, digest: str, target: Path) -> None:
        """Write one file of ``mv`` (``path``, content ``digest``) to ``target``."""
        ...


def registry_service(ctx: Context) -> RegistryService:
    """The context's ``RegistryService`` (embedded: its database and blob store, its user)."""
    return RegistryService(
        ctx.database,
        ctx.blobs,
        default_actor=ctx.user,
        max_file_bytes=ctx.settings.max_artifact_bytes,
    )


class EmbeddedRegistry(RegistryService):
    """``RegistryService`` on the context's database and blob store, acting as its user."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(
            ctx.database,
            ctx.blobs,
            default_actor=ctx.user,
            max_file_bytes=ctx.settings.max_artifact_bytes,
        )

    def register(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
    ) -> ModelVersion:
        kw: dict[str, Any] = {
            "flavor": flavor,
            "options": options,
            "signature": signature,
            "description": description,
            "tags": tags,
            "kind": kind,
        }
        if source.startswith("runs:/"):
            return self.create_version_from_run(name, source, **kw)
        return self.create_version_from_path(name, source, source_run_id=run_id, **kw)

    def fetch_file(self, mv: ModelVersion, path: str, digest: str, target: Path) -> None:
        with self.store.open(digest) as src, open(target, "wb") as out:
            while block := src.read(1024 * 1024):
                out.write(block)


def _embedded(ctx: Context) -> RegistryBackend:
    return EmbeddedRegistry(ctx)


def _remote(ctx: Context) -> RegistryBackend:
    return RemoteRegistry(ctx)


def registry_backend(ctx: Context) -> RegistryBackend:
    """The context's one registry backend (embedded or remote, chosen once)."""
    return ctx.seam(_embedded, _remote)
