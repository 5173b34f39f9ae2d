"""REST routes for datasets, under ``/api/v1``.

Remote clients build a version locally, upload its blobs through the shared
blob API (``PUT /api/v1/blobs/{digest}``, mounted by the server; the server
recomputes the digest and refuses a mismatch), then ``POST /datasets/{name}/versions`` with the metadata; the
server checks that every blob is there and that the data blob's Parquet
footer matches the row count and columns. Version references in paths
(``{ref}``) are ``name@3``, ``name@latest``, ``name`` or a version id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import StrictBody, ok, service
from opsloop.datasets._backend import dataset_service
from opsloop.datasets._service import DatasetService, VersionManifest
from opsloop.datasets.entities import (
    Dataset,
    DatasetDiff,
    DatasetVersion,
    RowsPage,
    RunInput,
)

router = APIRouter(tags=["datasets"])


Svc = Annotated[DatasetService, Depends(service(dataset_service))]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Ref = Annotated[str, Field(min_length=1, max_length=300)]


class CreateDataset(StrictBody):
    name: str = Field(min_length=1, max_length=256)
    kind: str = Field(default="tabular", max_length=32)
    description: str = Field(default="", max_length=100_000)
    created_by: str = Field(default="", max_length=256)


class CreateVersion(StrictBody):
    manifest: VersionManifest
    created_by: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=100_000)


class SplitBody(StrictBody):
    fractions: dict[str, float] = Field(min_length=1, max_length=32)
    seed: int = Field(default=0, ge=0, lt=2**63)
    stratify: str | None = Field(default=None, max_length=256)
    names: dict[str, str] = Field(default_factory=dict, max_length=32)
    created_by: str = Field(default="", max_length=256)


class LogInput(StrictBody):
    dataset_version: str = Field(min_length=1, max_length=300)
    context: str = Field(default="train", min_length=1, max_length=64)


# ---------------------------------------------------------------------------- datasets


@router.get("/datasets", summary="List datasets")
def list_datasets(svc: Svc) -> Response:
    return ok({"datasets": svc.list_datasets()})


@router.post("/datasets", response_model=Dataset, status_code=201, summary="Create a dataset")
def create_dataset(body: CreateDataset, svc: Svc) -> Response:
    ds = svc.create_dataset(
        body.name, kind=body.kind, description=body.description, created_by=body.created_by
    )
    return ok(ds, 201)


@router.get("/datasets/{name}", response_model=Dataset, summary="Get a dataset")
def get_dataset(name: Name, svc: Svc) -> Response:
    return ok(svc.get_dataset(name))


@router.get("/datasets/{name}/versions", summary="List a dataset's versions")
def list_versions(
    name: Name,
    svc: Svc,
    content_digest: Annotated[str | None, Query(pattern=r"^sha256:[0-9a-f]{64}$")] = None,
) -> Response:
    if content_digest is not None:
        found = svc.find_version(name, content_digest)
        if found is None:
            svc.get_dataset(name)  # NotFound for an unknown dataset
        return ok({"versions": [] if found is None else [found.info()]})
    return ok({"versions": svc.list_versions(name)})


@router.post(
    "/datasets/{name}/versions",
    summary="Store a version whose blobs were uploaded (the same content returns the stored one)",
)
def create_version(name: Name, body: CreateVersion, svc: Svc) -> Response:
    v, created = svc.register_version(
        name, body.manifest, created_by=body.created_by, description=body.description
    )
    return ok({"version": v, "created": created}, 201 if created else 200)


@router.get(
    "/datasets/{name}/versions/{version}",
    response_model=DatasetVersion,
    summary="Get a version by number (or 'latest')",
)
def get_version_by_number(
    name: Name, version: Annotated[str, Field(pattern=r"^(\d{1,9}|latest)$")], svc: Svc
) -> Response:
    return ok(svc.get_version(f"{name}@{version}"))


# ---------------------------------------------------------------------------- versions


@router.get(
    "/dataset-versions/{ref}",
    response_model=DatasetVersion,
    summary="Get a version with schema, profile, sample and validation report",
)
def get_version(ref: Ref, svc: Svc) -> Response:
    return ok(svc.get_version(ref))


@router.get("/dataset-versions/{ref}/rows", response_model=RowsPage, summary="A page of rows")
def version_rows(
    ref: Ref,
    svc: Svc,
    offset: Annotated[int, Query(ge=0, lt=2**63)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    columns: Annotated[list[str] | None, Query(max_length=10_000)] = None,
    table: Annotated[str, Query(pattern="^(data|chunks)$")] = "data",
) -> Response:
    return ok(svc.rows(ref, offset=offset, limit=limit, columns=columns, table=table))


@router.get(
    "/dataset-versions/{ref}/diff",
    response_model=DatasetDiff,
    summary="Rows added, removed, changed and schema changes from this version to another",
)
def version_diff(
    ref: Ref,
    svc: Svc,
    other: Annotated[str, Query(min_length=1, max_length=300)],
    key: Annotated[str | None, Query(max_length=256)] = None,
    max_examples: Annotated[int, Query(ge=0, le=100)] = 10,
) -> Response:
    return ok(svc.diff(ref, other, key=key, max_examples=max_examples))


@router.post(
    "/dataset-versions/{ref}/splits",
    status_code=201,
    summary="Split a version deterministically into new versions",
)
def version_split(ref: Ref, body: SplitBody, svc: Svc) -> Response:
    out = svc.split(
        ref,
        body.fractions,
        seed=body.seed,
        stratify=body.stratify,
        names=body.names,
        created_by=body.created_by,
    )
    return ok({"splits": out}, 201)


@router.get("/dataset-versions/{ref}/children", summary="Versions derived from this one")
def version_children(ref: Ref, svc: Svc) -> Response:
    return ok({"versions": svc.children(ref)})


@router.get("/dataset-versions/{ref}/runs", summary="Runs that read this version")
def version_runs(ref: Ref, svc: Svc, include_deleted: bool = False) -> Response:
    return ok({"runs": svc.version_runs(ref, include_deleted=include_deleted)})


# ---------------------------------------------------------------------------- lineage


@router.post(
    "/runs/{run_id}/inputs",
    response_model=RunInput,
    status_code=201,
    summary="Record that a run read a dataset version",
)
def log_run_input(
    run_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9a-zA-Z_\-]+$")],
    body: LogInput,
    svc: Svc,
) -> Response:
    return ok(svc.log_input(run_id, body.dataset_version, body.context), 201)


@router.get("/runs/{run_id}/inputs", summary="The dataset versions a run read")
def list_run_inputs(
    run_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9a-zA-Z_\-]+$")],
    svc: Svc,
) -> Response:
    return ok({"inputs": svc.run_inputs(run_id)})
