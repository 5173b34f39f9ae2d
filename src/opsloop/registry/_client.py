"""``Registry``: the registry SDK, the same embedded or against a server.

Embedded, it calls ``RegistryService`` on the client's database and store.
Remote, it calls ``/api/v1/registry``; local model files travel as blobs
(hashed here, only the ones the server lacks are uploaded), then the version
is created from their digests in one request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.errors import InvalidArgument
from opsloop.registry import _names as N
from opsloop.registry.entities import (
    CardFields,
    DatasetLineage,
    FileEntry,
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionLineage,
)

if TYPE_CHECKING:
    from opsloop.registry._service import RegistryService
    from opsloop.registry.flavors._base import LoadedModel
    from opsloop.registry.flavors._signature import Signature
    from opsloop.sdk import Client

USER_HEADER = "X-Opsloop-User"


def _sig(signature: Signature | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if signature is None:
        return None
    if hasattr(signature, "to_dict"):
        return signature.to_dict()
    return dict(signature)


def _v(version: int | str) -> str:
    n = N.version_ref(version)
    return "latest" if n is None else str(n)


class Registry:
    """Registered models, versions, aliases, cards, lineage and history.

    ``Registry(client)`` works with an embedded ``opsloop.Client`` (direct
    database access) and a remote one (HTTP) alike.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self.actor = N.current_user(client.settings)
        backend = client.backend
        self._svc: RegistryService | None = None
        self._rest: Any = None
        if hasattr(backend, "db") and hasattr(backend, "store"):
            from opsloop.registry._service import RegistryService

            self._svc = RegistryService(
                backend.db,
                backend.store,
                default_actor=self.actor,
                max_file_bytes=client.settings.max_artifact_bytes,
            )
        else:
            self._rest = backend

    @property
    def is_remote(self) -> bool:
        return self._svc is None

    # -- transport ----------------------------------------------------------------

    def _call(self, method: str, url: str, **kw: Any) -> Any:
        kw.setdefault("headers", {})[USER_HEADER] = self.actor
        return self._rest._json(method, f"/registry{url}", **kw)

    @staticmethod
    def _m(name: str) -> str:
        return quote(N.check_model_name(name), safe="")

    # -- registered models ----------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        kind: str = "model",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        if self._svc:
            return self._svc.create_model(name, kind=kind, description=description, tags=tags)
        body = {
            "name": N.check_model_name(name),
            "kind": kind,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        return RegisteredModel.model_validate(
            self._call("POST", "/models", json=body, idempotent=False)
        )

    def get_model(self, name: str) -> RegisteredModel:
        if self._svc:
            return self._svc.get_model(name)
        return RegisteredModel.model_validate(self._call("GET", f"/models/{self._m(name)}"))

    def list_models(
        self, *, kind: str | None = None, name_contains: str | None = None, max_results: int = 1000
    ) -> list[RegisteredModel]:
        if self._svc:
            return self._svc.list_models(
                kind=kind, name_contains=name_contains, max_results=max_results
            )
        params: dict[str, Any] = {"max_results": max_results}
        if kind:
            params["kind"] = kind
        if name_contains:
            params["name_contains"] = name_contains
        data = self._call("GET", "/models", params=params)
        return [RegisteredModel.model_validate(m) for m in data["models"]]

    def update_model(self, name: str, *, description: str | None = None) -> RegisteredModel:
        if self._svc:
            return self._svc.update_model(name, description=description)
        return RegisteredModel.model_validate(
            self._call(
                "PATCH",
                f"/models/{self._m(name)}",
                json={"description": description},
                idempotent=True,
            )
        )

    def delete_model(self, name: str) -> None:
        if self._svc:
            return self._svc.delete_model(name)
        self._call("DELETE", f"/models/{self._m(name)}")

    def set_model_tag(self, name: str, key: str, value: Any) -> None:
        if self._svc:
            return self._svc.set_model_tag(name, key, value)
        self._call(
            "PUT", f"/models/{self._m(name)}/tags/{quote(key, safe='')}", json={"value": str(value)}
        )

    def delete_model_tag(self, name: str, key: str) -> None:
        if self._svc:
            return self._svc.delete_model_tag(name, key)
        self._call("DELETE", f"/models/{self._m(name)}/tags/{quote(key, safe='')}")

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
        """
        kw: dict[str, Any] = {
            "flavor": flavor,
            "options": dict(options) if options else None,
            "signature": _sig(signature),
            "description": description,
            "tags": tags,
            "kind": kind,
        }
        src = os.fspath(source)
        if src.startswith("runs:/"):
            if self._svc:
                return self._svc.create_version_from_run(name, src, **kw)
            return self._create_remote(name, {"source": src, **kw})
        if self._svc:
            return self._svc.create_version_from_path(name, src, source_run_id=run_id, **kw)
        files = self._upload(src)
        body = {
            "files": {p: e.model_dump() for p, e in files.items()},
            "source": str(Path(src).resolve()),
            "run_id": run_id,
            **kw,
        }
        return self._create_remote(name, body)

    create_version = register

    def _create_remote(self, name: str, body: dict[str, Any]) -> ModelVersion:
        body["tags"] = {k: str(v) for k, v in (body.get("tags") or {}).items()}
        data = self._call("POST", f"/models/{self._m(name)}/versions", json=body, idempotent=False)
        return ModelVersion.model_validate(data)

    def _upload(self, src: str) -> dict[str, FileEntry]:
        from opsloop.registry._version_service import local_files
        from opsloop.registry.flavors._common import file_digest

        files = {rel: (f, file_digest(f), f.stat().st_size) for rel, f in local_files(src)}
        missing = set(
            self._call(
                "POST",
                "/blobs/missing",
                json={"digests": sorted({d for _, d, _ in files.values()})},
                idempotent=True,
            )["missing"]
        )
        for _rel, (f, digest, _size) in files.items():
            if digest in missing:
                with open(f, "rb") as fh:
                    self._call(
                        "PUT",
                        f"/blobs/{digest}",
                        content=fh,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                missing.discard(digest)
        return {rel: FileEntry(digest=d, size=s) for rel, (_, d, s) in files.items()}

    def get_version(self, name: str, version: int | str = "latest") -> ModelVersion:
        if self._svc:
            return self._svc.get_version(name, version)
        return ModelVersion.model_validate(
            self._call("GET", f"/models/{self._m(name)}/versions/{_v(version)}")
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        if self._svc:
            return self._svc.list_versions(name)
        data = self._call("GET", f"/models/{self._m(name)}/versions")
        return [ModelVersion.model_validate(v) for v in data["versions"]]

    def update_version(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        if self._svc:
            return self._svc.update_version(name, version, description=description)
        return ModelVersion.model_validate(
            self._call(
                "PATCH",
                f"/models/{self._m(name)}/versions/{_v(version)}",
                json={"description": description},
                idempotent=True,
            )
        )

    def delete_version(self, name: str, version: int | str) -> None:
        if self._svc:
            return self._svc.delete_version(name, version)
        self._call("DELETE", f"/models/{self._m(name)}/versions/{_v(version)}")

    def set_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        if self._svc:
            return self._svc.set_version_tag(name, version, key, value)
        self._call(
            "PUT",
            f"/models/{self._m(name)}/versions/{_v(version)}/tags/{quote(key, safe='')}",
            json={"value": str(value)},
        )

    def delete_version_tag(self, name: str, version: int | str, key: str) -> None:
        if self._svc:
            return self._svc.delete_version_tag(name, version, key)
        self._call(
            "DELETE", f"/models/{self._m(name)}/versions/{_v(version)}/tags/{quote(key, safe='')}"
        )

    # -- aliases ----------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int | str, *, force: bool = False
    ) -> ModelAlias:
        """Point ``alias`` at ``version`` atomically (moving it if it exists).

        A model's promotion gate is checked first (``PromotionRefused`` names
        each failed rule); ``force=True`` moves it anyway and records that."""
        if self._svc:
            return self._svc.set_alias(name, alias, version, force=force)
        N.check_alias(alias)
        body: dict[str, Any] = {"version": N.version_ref(version)}
        if force:
            body["force"] = True
        return ModelAlias.model_validate(
            self._call("PUT", f"/models/{self._m(name)}/aliases/{alias}", json=body)
        )

    def delete_alias(self, name: str, alias: str) -> None:
        if self._svc:
            return self._svc.delete_alias(name, alias)
        self._call("DELETE", f"/models/{self._m(name)}/aliases/{N.check_alias(alias)}")

    def list_aliases(self, name: str) -> list[ModelAlias]:
        if self._svc:
            return self._svc.list_aliases(name)
        data = self._call("GET", f"/models/{self._m(name)}/aliases")
        return [ModelAlias.model_validate(a) for a in data["aliases"]]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        if self._svc:
            return self._svc.get_version_by_alias(name, alias)
        return ModelVersion.model_validate(
            self._call("GET", f"/models/{self._m(name)}/aliases/{N.check_alias(alias)}")
        )

    def resolve(self, uri: str) -> ModelVersion:
        """The version ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` names now."""
        if self._svc:
            return self._svc.resolve(uri)
        N.parse_model_uri(uri)
        return ModelVersion.model_validate(self._call("GET", "/resolve", params={"uri": uri}))

    # -- cards, lineage, history ---------------------------------------------------------

    def get_card(self, name: str, version: int | str) -> ModelCard:
        if self._svc:
            return self._svc.get_card(name, version)
        return ModelCard.model_validate(
            self._call("GET", f"/models/{self._m(name)}/versions/{_v(version)}/card")
        )

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
        if self._svc:
            return self._svc.update_card(
                name, version, fields=fields, markdown=markdown, regenerate=regenerate
            )
        f = fields.model_dump(exclude_unset=True) if isinstance(fields, CardFields) else fields
        body = {
            "fields": None if f is None else dict(f),
            "markdown": markdown,
            "regenerate": regenerate,
        }
        return ModelCard.model_validate(
            self._call(
                "PUT",
                f"/models/{self._m(name)}/versions/{_v(version)}/card",
                json=body,
            )
        )

    def lineage(self, name: str, version: int | str) -> VersionLineage:
        """Upstream lineage: version -> run -> dataset versions."""
        if self._svc:
            return self._svc.version_lineage(name, version)
        return VersionLineage.model_validate(
            self._call("GET", f"/models/{self._m(name)}/versions/{_v(version)}/lineage")
        )

    def dataset_lineage(self, dataset_version_id: str) -> DatasetLineage:
        """Downstream lineage: dataset version -> runs -> model versions."""
        if self._svc:
            return self._svc.dataset_lineage(dataset_version_id)
        return DatasetLineage.model_validate(
            self._call("GET", f"/lineage/datasets/{quote(dataset_version_id, safe='')}")
        )

    def history(
        self, name: str, *, version: int | None = None, limit: int = 1000
    ) -> list[RegistryEvent]:
        """Recorded changes, newest first."""
        if self._svc:
            return self._svc.history(name, version=version, limit=limit)
        params: dict[str, Any] = {"limit": limit}
        if version is not None:
            params["version"] = version
        data = self._call("GET", f"/models/{self._m(name)}/history", params=params)
        return [RegistryEvent.model_validate(e) for e in data["events"]]

    # -- files and loading -----------------------------------------------------------------

    def _fetch(self, mv: ModelVersion) -> Any:
        def fetch(rel: str, digest: str, target: Path) -> None:
            if self._svc:
                with self._svc.store.open(digest) as src, open(target, "wb") as out:
                    while block := src.read(1024 * 1024):
                        out.write(block)
                return
            url = f"/registry/models/{self._m(mv.name)}/versions/{mv.version}/files/{quote(rel)}"
            _download(self._rest, url, target)

        return fetch

    def materialize(self, mv: ModelVersion, cache_dir: str | os.PathLike[str]) -> Path:
        """A local folder with the version's files (cached by content; do not modify it)."""
        from opsloop.registry._loading import materialize

        return materialize(mv, Path(cache_dir), self._fetch(mv))

    def download(self, name: str, version: int | str, dest: str | os.PathLike[str]) -> Path:
        """Copy a version's files into ``dest`` (created; must be empty or absent)."""
        from opsloop.registry.flavors._common import prepare_folder

        mv = self.get_version(name, version)
        folder = prepare_folder(dest)
        fetch = self._fetch(mv)
        for rel, entry in sorted(mv.files.items()):
            target = (folder / rel).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise InvalidArgument(f"file path {rel!r} leaves the destination folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            fetch(rel, entry.digest, target)
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
        from opsloop.registry._loading import load_model

        return load_model(
            uri,
            client=self._client,
            trusted_types=trusted_types,
            cache_dir=cache_dir,
            device=device,
        )


def _download(rest: Any, url: str, target: Path) -> None:
    import httpx

    from opsloop.errors import Unavailable

    tmp = target.with_name(target.name + ".part")
    try:
        with rest._http.stream("GET", url) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise rest._error(resp)
            with open(tmp, "wb") as out:
                for block in resp.iter_bytes(1024 * 1024):
                    out.write(block)
    except httpx.TransportError as exc:
        raise Unavailable(f"download of {url} failed: {exc}") from exc
    os.replace(tmp, target)
