"""``Registry``: the registry SDK, the same embedded or against a server.

The client picks its backend once (``ctx.seam``): ``EmbeddedRegistry`` (the
``RegistryService`` on the context's database and blob store) or
``RemoteRegistry`` (``/api/v1/registry`` through the context's transport).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument
from opsloop.registry._backend import RegistryBackend, registry_backend
from opsloop.registry._loading import load_model, materialize
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
from opsloop.registry.flavors._base import flavor_module
from opsloop.registry.flavors._common import prepare_folder

if TYPE_CHECKING:
    from collections.abc import Callable

    from opsloop.registry.flavors._base import LoadedModel
    from opsloop.registry.flavors._signature import Signature


def _prepare_hook(flavor: str | None) -> Any:
    """The flavor module's ``prepare_source``, if it has one (None for an unknown flavor:
    registering then reports that)."""
    if flavor is None:
        return None
    try:
        mod = flavor_module(flavor)
    except InvalidArgument:
        return None
    return getattr(mod, "prepare_source", None)


def _sig(signature: Signature | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if signature is None:
        return None
    if isinstance(signature, Mapping):
        return dict(signature)
    return signature.to_dict()


class Registry:
    """Registered models, versions, aliases, cards, lineage and history.

    ``Registry(client)`` works with an embedded ``opsloop.Client`` (direct
    database access) and a remote one (HTTP) alike.
    """

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self.context = ctx
        self._owner = context
        self.actor = ctx.user
        self._backend: RegistryBackend = registry_backend(ctx)

    @property
    def is_remote(self) -> bool:
        return self.context.is_remote

    # -- registered models ----------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        kind: str = "model",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        return self._backend.create_model(name, kind=kind, description=description, tags=tags)

    def get_model(self, name: str) -> RegisteredModel:
        return self._backend.get_model(name)

    def list_models(
        self, *, kind: str | None = None, name_contains: str | None = None, max_results: int = 1000
    ) -> list[RegisteredModel]:
        return self._backend.list_models(
            kind=kind, name_contains=name_contains, max_results=max_results
        )

    def update_model(self, name: str, *, description: str | None = None) -> RegisteredModel:
        return self._backend.update_model(name, description=description)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model with its versions, aliases, tags, cards and history.

        ``NotFound`` if ``name`` is not registered, ``AlreadyExists`` if
        ``new_name`` is. ``models:/OLD...`` URIs stored elsewhere keep resolving
        (``resolve``, ``load_model``, serving, deployments) to the renamed model
        until a model takes the old name again.
        """
        return self._backend.rename_model(name, new_name)

    def delete_model(self, name: str) -> None:
        self._backend.delete_model(name)

    def set_model_tag(self, name: str, key: str, value: Any) -> None:
        self._backend.set_model_tag(name, key, value)

    def delete_model_tag(self, name: str, key: str) -> None:
        self._backend.delete_model_tag(name, key)

    # -- versions --------------------------------------------------------------------

    def register(
        self,
        name: str,
        source: str | os.PathLike[str],
        *,
        flavor: str | None = None,
        options: Mapping[str, Any] | None = None,
        signature: Signature | Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        kind: str = "model",
        run_id: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` (created if new) from ``runs:/<run_id>/<path>`` or a local path.

        A saved model folder (with ``opsloop-model.json``) needs nothing else;
        raw files (a Hugging Face folder, a ``.gguf``, a ``.skops``) need their
        ``flavor`` (and ``options``, e.g. ``base_model`` for peft). ``run_id``
        links a local-path version to the run that produced it.

        A flavor whose module defines ``prepare_source(path, folder)`` turns a
        local source into a self-contained model folder first (the pipeline
        flavor copies the corpora a YAML spec reads), so a version never
        depends on files left behind on the registering machine.
        """
        kw: dict[str, Any] = {
            "run_id": run_id,
            "flavor": flavor,
            "options": dict(options) if options else None,
            "signature": _sig(signature),
            "description": description,
            "tags": tags,
            "kind": kind,
        }
        text = os.fspath(source)
        prepare = _prepare_hook(flavor) if not text.startswith("runs:/") else None
        if prepare is None:
            return self._backend.register(name, text, **kw)
        with tempfile.TemporaryDirectory(prefix="opsloop-register-") as tmp:
            folder = prepare(Path(text).expanduser(), Path(tmp) / "model")
            return self._backend.register(name, os.fspath(folder or text), **kw)

    create_version = register

    def get_version(self, name: str, version: int | str = "latest") -> ModelVersion:
        return self._backend.get_version(name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self._backend.list_versions(name)

    def update_version(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        return self._backend.update_version(name, version, description=description)

    def delete_version(self, name: str, version: int | str) -> None:
        self._backend.delete_version(name, version)

    def set_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self._backend.set_version_tag(name, version, key, value)

    def delete_version_tag(self, name: str, version: int | str, key: str) -> None:
        self._backend.delete_version_tag(name, version, key)

    # -- aliases ----------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int | str, *, force: bool = False
    ) -> ModelAlias:
        """Point ``alias`` at ``version`` atomically (moving it if it exists).

        A model's promotion gate is checked first (``PromotionRefused`` names
        each failed rule); ``force=True`` moves it anyway and records that."""
        return self._backend.set_alias(name, alias, version, force=force)

    def delete_alias(self, name: str, alias: str) -> None:
        self._backend.delete_alias(name, alias)

    def list_aliases(self, name: str) -> list[ModelAlias]:
        return self._backend.list_aliases(name)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._backend.get_version_by_alias(name, alias)

    def resolve(self, uri: str) -> ModelVersion:
        """The version ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` names now."""
        return self._backend.resolve(uri)

    # -- cards, lineage, history ---------------------------------------------------------

    def get_card(self, name: str, version: int | str) -> ModelCard:
        return self._backend.get_card(name, version)

    def update_card(
        self,
        name: str,
        version: int | str,
        *,
        fields: CardFields | Mapping[str, Any] | None = None,
        markdown: str | None = None,
        regenerate: bool = False,
    ) -> ModelCard:
        """Edit the card (see ``RegistryService.update_card``)."""
        return self._backend.update_card(
            name, version, fields=fields, markdown=markdown, regenerate=regenerate
        )

    def lineage(self, name: str, version: int | str) -> VersionLineage:
        """Upstream lineage: version -> run -> dataset versions."""
        return self._backend.version_lineage(name, version)

    def dataset_lineage(self, dataset_version_id: str) -> DatasetLineage:
        """Downstream lineage: dataset version -> runs -> model versions."""
        return self._backend.dataset_lineage(dataset_version_id)

    def history(
        self, name: str, *, version: int | None = None, limit: int = 1000
    ) -> list[RegistryEvent]:
        """Recorded changes, newest first."""
        return self._backend.history(name, version=version, limit=limit)

    # -- files and loading -----------------------------------------------------------------

    def _fetch(self, mv: ModelVersion) -> Callable[[str, str, Path], None]:
        def fetch(rel: str, digest: str, target: Path) -> None:
            self._backend.fetch_file(mv, rel, digest, target)

        return fetch

    def materialize(self, mv: ModelVersion, cache_dir: str | os.PathLike[str]) -> Path:
        """A local folder with the version's files (cached by content; do not modify it)."""
        return materialize(mv, Path(cache_dir), self._fetch(mv))

    def download(self, name: str, version: int | str, dest: str | os.PathLike[str]) -> Path:
        """Copy a version's files into ``dest`` (created; must be empty or absent)."""
        mv = self.get_version(name, version)
        folder = prepare_folder(dest)
        for rel, entry in sorted(mv.files.items()):
            target = (folder / rel).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise InvalidArgument(f"file path {rel!r} leaves the destination folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._backend.fetch_file(mv, rel, entry.digest, target)
        return folder

    def load(
        self,
        uri: str,
        *,
        trusted_types: list[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
    ) -> LoadedModel:
        """``load_model(uri, client=<this registry's client>, ...)``."""
        return load_model(
            uri,
            client=self._owner if self._owner is not None else self.context,
            trusted_types=trusted_types,
            cache_dir=cache_dir,
            device=device,
        )
