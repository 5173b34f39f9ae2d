"""REST routes for the registry, under ``/api/v1/registry``. Thin: parse, call the service, answer.

Who acts is taken from the ``X-Opsloop-User`` header (the SDK sends the
settings user or the OS user), else the server's own user.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import Field

from opsloop.core.web import Actor, ok, service
from opsloop.core.web import StrictBody as _Body
from opsloop.errors import InvalidArgument
from opsloop.registry._backend import registry_service
from opsloop.registry._service import RegistryService
from opsloop.registry.entities import (
    CardFields,
    DatasetLineage,
    FileEntry,
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    VersionLineage,
)
from opsloop.store import LocalArtifactStore

router = APIRouter(prefix="/registry", tags=["registry"])

Name = Annotated[str, Field(min_length=1, max_length=256)]
Version = Annotated[str, Field(min_length=1, max_length=12)]


Svc = Annotated[RegistryService, Depends(service(registry_service))]


class CreateModel(_Body):
    name: str = Field(min_length=1, max_length=256)
    kind: str = Field(default="model", max_length=32)
    description: str = Field(default="", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class UpdateDescription(_Body):
    description: str | None = Field(default=None, max_length=100_000)


class RenameModel(_Body):
    new_name: str = Field(min_length=1, max_length=256)


class TagValue(_Body):
    value: str = Field(max_length=8000)


class CreateVersion(_Body):
    """From ``source: runs:/<id>/<path>``, or from ``files`` already uploaded as blobs."""

    source: str = Field(default="", max_length=4096)
    files: dict[str, FileEntry] | None = Field(default=None, max_length=100_000)
    run_id: str | None = Field(default=None, max_length=32)
    flavor: str | None = Field(default=None, max_length=64)
    options: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    description: str = Field(default="", max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)
    kind: str = Field(default="model", max_length=32)


class SetAlias(_Body):
    version: int = Field(ge=1, le=2**31 - 1)
    force: bool = False  # override a failed promotion gate (recorded as an event)


class UpdateCard(_Body):
    fields: CardFields | None = None
    markdown: str | None = Field(default=None, max_length=200_000)
    regenerate: bool = False


# ---------------------------------------------------------------------------- models


@router.get("/models", summary="List registered models")
def list_models(
    svc: Svc,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    name_contains: Annotated[str | None, Query(max_length=256)] = None,
    max_results: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    return ok(
        {"models": svc.list_models(kind=kind, name_contains=name_contains, max_results=max_results)}
    )


@router.post(
    "/models", response_model=RegisteredModel, status_code=201, summary="Register a model name"
)
def create_model(body: CreateModel, svc: Svc, actor: Actor) -> Response:
    m = svc.create_model(
        body.name, kind=body.kind, description=body.description, tags=body.tags, actor=actor
    )
    return ok(m, 201)


@router.get("/models/{name}", response_model=RegisteredModel, summary="Get a registered model")
def get_model(name: Name, svc: Svc) -> Response:
    return ok(svc.get_model(name))


@router.patch("/models/{name}", response_model=RegisteredModel, summary="Describe a model")
def update_model(name: Name, body: UpdateDescription, svc: Svc, actor: Actor) -> Response:
    return ok(svc.update_model(name, description=body.description, actor=actor))


@router.post(
    "/models/{name}/rename",
    response_model=RegisteredModel,
    summary="Rename a model (models:/OLD URIs keep resolving until the name is reused)",
)
def rename_model(name: Name, body: RenameModel, svc: Svc, actor: Actor) -> Response:
    return ok(svc.rename_model(name, body.new_name, actor=actor))


@router.delete("/models/{name}", status_code=204, summary="Delete a model and all its versions")
def delete_model(name: Name, svc: Svc, actor: Actor) -> Response:
    svc.delete_model(name, actor=actor)
    return Response(status_code=204)


@router.put("/models/{name}/tags/{key:path}", status_code=204, summary="Set a model tag")
def set_model_tag(name: Name, key: str, body: TagValue, svc: Svc, actor: Actor) -> Response:
    svc.set_model_tag(name, key, body.value, actor=actor)
    return Response(status_code=204)


@router.delete("/models/{name}/tags/{key:path}", status_code=204, summary="Delete a model tag")
def delete_model_tag(name: Name, key: str, svc: Svc, actor: Actor) -> Response:
    svc.delete_model_tag(name, key, actor=actor)
    return Response(status_code=204)


@router.get("/models/{name}/history", summary="Recorded changes to a model, newest first")
def history(
    name: Name,
    svc: Svc,
    version: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    before_id: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
) -> Response:
    return ok({"events": svc.history(name, version=version, limit=limit, before_id=before_id)})


# ---------------------------------------------------------------------------- versions


@router.get("/models/{name}/versions", summary="List a model's versions, newest first")
def list_versions(name: Name, svc: Svc) -> Response:
    return ok({"versions": svc.list_versions(name)})


@router.post(
    "/models/{name}/versions",
    response_model=ModelVersion,
    status_code=201,
    summary="Create a version from a run's artifacts or uploaded blobs",
)
def create_version(name: Name, body: CreateVersion, svc: Svc, actor: Actor) -> Response:
    kw: dict[str, Any] = {
        "flavor": body.flavor,
        "options": body.options,
        "signature": body.signature,
        "description": body.description,
        "tags": body.tags,
        "kind": body.kind,
        "actor": actor,
    }
    if body.files is not None:
        if body.source.startswith("runs:/"):
            raise InvalidArgument("give either files or a runs:/ source, not both")
        mv = svc.create_version(
            name, body.files, source=body.source, source_run_id=body.run_id, **kw
        )
    elif body.source.startswith("runs:/"):
        mv = svc.create_version_from_run(name, body.source, **kw)
    else:
        raise InvalidArgument(
            "a version needs source='runs:/<run_id>/<path>' or files uploaded to /api/v1/blobs"
        )
    return ok(mv, 201)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelVersion,
    summary="Get a version (a number or 'latest')",
)
def get_version(name: Name, version: Version, svc: Svc) -> Response:
    return ok(svc.get_version(name, version))


@router.patch(
    "/models/{name}/versions/{version}", response_model=ModelVersion, summary="Describe a version"
)
def update_version(
    name: Name, version: Version, body: UpdateDescription, svc: Svc, actor: Actor
) -> Response:
    return ok(svc.update_version(name, version, description=body.description, actor=actor))


@router.delete("/models/{name}/versions/{version}", status_code=204, summary="Delete a version")
def delete_version(name: Name, version: Version, svc: Svc, actor: Actor) -> Response:
    svc.delete_version(name, version, actor=actor)
    return Response(status_code=204)


@router.put(
    "/models/{name}/versions/{version}/tags/{key:path}",
    status_code=204,
    summary="Set a version tag",
)
def set_version_tag(
    name: Name, version: Version, key: str, body: TagValue, svc: Svc, actor: Actor
) -> Response:
    svc.set_version_tag(name, version, key, body.value, actor=actor)
    return Response(status_code=204)


@router.delete(
    "/models/{name}/versions/{version}/tags/{key:path}",
    status_code=204,
    summary="Delete a version tag",
)
def delete_version_tag(name: Name, version: Version, key: str, svc: Svc, actor: Actor) -> Response:
    svc.delete_version_tag(name, version, key, actor=actor)
    return Response(status_code=204)


@router.get(
    "/models/{name}/versions/{version}/card",
    response_model=ModelCard,
    summary="A version's model card",
)
def get_card(name: Name, version: Version, svc: Svc) -> Response:
    return ok(svc.get_card(name, version))


@router.put(
    "/models/{name}/versions/{version}/card", response_model=ModelCard, summary="Edit a model card"
)
def update_card(name: Name, version: Version, body: UpdateCard, svc: Svc, actor: Actor) -> Response:
    fields = body.fields if body.fields is not None and body.fields.model_fields_set else None
    return ok(
        svc.update_card(
            name,
            version,
            fields=fields,
            markdown=body.markdown,
            regenerate=body.regenerate,
            actor=actor,
        )
    )


@router.get(
    "/models/{name}/versions/{version}/lineage",
    response_model=VersionLineage,
    summary="Upstream lineage: version -> run -> dataset versions",
)
def version_lineage(name: Name, version: Version, svc: Svc) -> Response:
    return ok(svc.version_lineage(name, version))


@router.get(
    "/models/{name}/versions/{version}/files", summary="A version's files with digests and sizes"
)
def list_files(name: Name, version: Version, svc: Svc) -> Response:
    mv = svc.get_version(name, version)
    return ok({"files": [{"path": p, **e.model_dump()} for p, e in sorted(mv.files.items())]})


@router.get(
    "/models/{name}/versions/{version}/files/{path:path}",
    response_class=Response,
    summary="Download one file of a version",
)
def download_file(name: Name, version: Version, path: str, svc: Svc) -> Response:
    entry, fh = svc.open_file(name, version, path)
    filename = path.rsplit("/", 1)[-1]
    quoted = quote(filename)  # a name quoting changes goes as RFC 5987 filename*
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="{filename}"'
        if quoted == filename
        else f"attachment; filename*=utf-8''{quoted}",
        "X-Opsloop-Digest": entry.digest,
    }
    if isinstance(svc.store, LocalArtifactStore):
        fh.close()
        return FileResponse(
            svc.store.local_path(entry.digest),
            media_type="application/octet-stream",
            headers=headers,
        )

    def chunks() -> Any:
        with fh:
            while block := fh.read(1024 * 1024):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={**headers, "Content-Length": str(entry.size)},
    )


# ---------------------------------------------------------------------------- aliases


@router.get("/models/{name}/aliases", summary="A model's aliases")
def list_aliases(name: Name, svc: Svc) -> Response:
    return ok({"aliases": svc.list_aliases(name)})


@router.get(
    "/models/{name}/aliases/{alias}",
    response_model=ModelVersion,
    summary="The version an alias names",
)
def get_alias(name: Name, alias: str, svc: Svc) -> Response:
    return ok(svc.get_version_by_alias(name, alias))


@router.put(
    "/models/{name}/aliases/{alias}",
    response_model=ModelAlias,
    summary="Set or move an alias (atomic)",
)
def set_alias(name: Name, alias: str, body: SetAlias, svc: Svc, actor: Actor) -> Response:
    return ok(svc.set_alias(name, alias, body.version, actor=actor, force=body.force))


@router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Delete an alias")
def delete_alias(name: Name, alias: str, svc: Svc, actor: Actor) -> Response:
    svc.delete_alias(name, alias, actor=actor)
    return Response(status_code=204)


@router.get("/resolve", response_model=ModelVersion, summary="The version a models:/ URI names now")
def resolve(uri: Annotated[str, Query(min_length=1, max_length=600)], svc: Svc) -> Response:
    return ok(svc.resolve(uri))


@router.get(
    "/lineage/datasets/{dataset_version_id}",
    response_model=DatasetLineage,
    summary="Downstream lineage: dataset version -> runs -> model versions",
)
def dataset_lineage(dataset_version_id: Annotated[str, Field(max_length=64)], svc: Svc) -> Response:
    return ok(svc.dataset_lineage(dataset_version_id))
