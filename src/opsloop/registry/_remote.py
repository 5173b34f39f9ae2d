"""``RemoteRegistry``: the registry backend over HTTP against ``opsloop server``.

Local model files travel as blobs (hashed here, only the ones the server
lacks are uploaded to the shared ``/api/v1/blobs``: ``upload_missing_blobs``), then the version is created from their digests in one
request. The acting user travels in the transport's actor header.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from opsloop.core import upload_missing_blobs
from opsloop.errors import Unavailable
from opsloop.registry import _names as N
from opsloop.registry._version_service import local_files
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
from opsloop.registry.flavors._common import file_digest

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteRegistry"]

BASE = "/registry"


def _m(name: str) -> str:
    return f"{BASE}/models/{quote(N.check_model_name(name), safe='')}"


def _v(version: int | str) -> str:
    n = N.version_ref(version)
    return "latest" if n is None else str(n)


def _k(key: str) -> str:
    return quote(key, safe="")


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (tags or {}).items()}


class RemoteRegistry:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    # -- registered models ---------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        kind: str = "model",
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        body = {
            "name": N.check_model_name(name),
            "kind": kind,
            "description": description,
            "tags": _tags(tags),
        }
        return RegisteredModel.model_validate(self._t.post(f"{BASE}/models", body))

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._t.get(_m(name)))

    def list_models(
        self, *, kind: str | None = None, name_contains: str | None = None, max_results: int = 1000
    ) -> list[RegisteredModel]:
        params: dict[str, Any] = {"max_results": max_results}
        if kind:
            params["kind"] = kind
        if name_contains:
            params["name_contains"] = name_contains
        data = self._t.get(f"{BASE}/models", params)
        return [RegisteredModel.model_validate(m) for m in data["models"]]

    def update_model(self, name: str, *, description: str | None = None) -> RegisteredModel:
        data = self._t.call("PATCH", _m(name), json={"description": description}, idempotent=True)
        return RegisteredModel.model_validate(data)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        body = {"new_name": N.check_model_name(new_name)}
        return RegisteredModel.model_validate(self._t.post(f"{_m(name)}/rename", body))

    def delete_model(self, name: str) -> None:
        self._t.delete(_m(name))

    def set_model_tag(self, name: str, key: str, value: Any) -> None:
        self._t.put(f"{_m(name)}/tags/{_k(key)}", {"value": str(value)})

    def delete_model_tag(self, name: str, key: str) -> None:
        self._t.delete(f"{_m(name)}/tags/{_k(key)}")

    # -- versions --------------------------------------------------------------------

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
        body: dict[str, Any] = {
            "flavor": flavor,
            "options": dict(options) if options else None,
            "signature": None if signature is None else dict(signature),
            "description": description,
            "tags": _tags(tags),
            "kind": kind,
        }
        if source.startswith("runs:/"):
            body["source"] = source
        else:
            files = self._upload(source)
            body.update(
                files={p: e.model_dump() for p, e in files.items()},
                source=str(Path(source).resolve()),
                run_id=run_id,
            )
        return ModelVersion.model_validate(self._t.post(f"{_m(name)}/versions", body))

    def _upload(self, src: str) -> dict[str, FileEntry]:
        files = {rel: (f, file_digest(f), f.stat().st_size) for rel, f in local_files(src)}
        upload_missing_blobs(self._t, {d: f for f, d, _ in files.values()})
        return {rel: FileEntry(digest=d, size=s) for rel, (_, d, s) in files.items()}

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        return ModelVersion.model_validate(self._t.get(f"{_m(name)}/versions/{_v(version)}"))

    def list_versions(self, name: str) -> list[ModelVersion]:
        data = self._t.get(f"{_m(name)}/versions")
        return [ModelVersion.model_validate(v) for v in data["versions"]]

    def update_version(
        self, name: str, version: int | str, *, description: str | None = None
    ) -> ModelVersion:
        data = self._t.call(
            "PATCH",
            f"{_m(name)}/versions/{_v(version)}",
            json={"description": description},
            idempotent=True,
        )
        return ModelVersion.model_validate(data)

    def delete_version(self, name: str, version: int | str) -> None:
        self._t.delete(f"{_m(name)}/versions/{_v(version)}")

    def set_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        self._t.put(f"{_m(name)}/versions/{_v(version)}/tags/{_k(key)}", {"value": str(value)})

    def delete_version_tag(self, name: str, version: int | str, key: str) -> None:
        self._t.delete(f"{_m(name)}/versions/{_v(version)}/tags/{_k(key)}")

    # -- aliases ----------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int | str, *, force: bool = False
    ) -> ModelAlias:
        N.check_alias(alias)
        body: dict[str, Any] = {"version": N.version_ref(version)}
        if force:
            body["force"] = True
        return ModelAlias.model_validate(self._t.put(f"{_m(name)}/aliases/{alias}", body))

    def delete_alias(self, name: str, alias: str) -> None:
        self._t.delete(f"{_m(name)}/aliases/{N.check_alias(alias)}")

    def list_aliases(self, name: str) -> list[ModelAlias]:
        data = self._t.get(f"{_m(name)}/aliases")
        return [ModelAlias.model_validate(a) for a in data["aliases"]]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return ModelVersion.model_validate(
            self._t.get(f"{_m(name)}/aliases/{N.check_alias(alias)}")
        )

    def resolve(self, uri: str) -> ModelVersion:
        N.parse_model_uri(uri)
        return ModelVersion.model_validate(self._t.get(f"{BASE}/resolve", {"uri": uri}))

    # -- cards, lineage, history ---------------------------------------------------------

    def get_card(self, name: str, version: int | str) -> ModelCard:
        return ModelCard.model_validate(self._t.get(f"{_m(name)}/versions/{_v(version)}/card"))

    def update_card(
        self,
        name: str,
        version: int | str,
        *,
        fields: CardFields | Mapping[str, Any] | None = None,
        markdown: str | None = None,
        regenerate: bool = False,
    ) -> ModelCard:
        f = fields.model_dump(exclude_unset=True) if isinstance(fields, CardFields) else fields
        body = {
            "fields": None if f is None else dict(f),
            "markdown": markdown,
            "regenerate": regenerate,
        }
        return ModelCard.model_validate(
            self._t.put(f"{_m(name)}/versions/{_v(version)}/card", body)
        )

    def version_lineage(self, name: str, version: int | str) -> VersionLineage:
        return VersionLineage.model_validate(
            self._t.get(f"{_m(name)}/versions/{_v(version)}/lineage")
        )

    def dataset_lineage(self, dataset_version_id: str) -> DatasetLineage:
        return DatasetLineage.model_validate(
            self._t.get(f"{BASE}/lineage/datasets/{quote(dataset_version_id, safe='')}")
        )

    def history(
        self, name: str, *, version: int | None = None, limit: int = 1000
    ) -> list[RegistryEvent]:
        params: dict[str, Any] = {"limit": limit}
        if version is not None:
            params["version"] = version
        data = self._t.get(f"{_m(name)}/history", params)
        return [RegistryEvent.model_validate(e) for e in data["events"]]

    # -- files ---------------------------------------------------------------------------

    def fetch_file(self, mv: ModelVersion, path: str, digest: str, target: Path) -> None:
        url = f"{_m(mv.name)}/versions/{mv.version}/files/{quote(path)}"
        tmp = target.with_name(target.name + ".part")
        try:
            with self._t.stream("GET", url) as resp, open(tmp, "wb") as out:
                for block in resp.iter_bytes(1024 * 1024):
                    out.write(block)
        except httpx.TransportError as exc:
            raise Unavailable(f"download of {url} failed: {exc}") from exc
        os.replace(tmp, target)
