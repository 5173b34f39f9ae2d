"""REST routes for vector indexes, under ``/api/v1`` (the indexes in the server's home).

- ``GET /indexes``: every index's info; ``POST /indexes``: create one (or check an
  existing one: same ``dim`` and ``metric``), answering its info.
- ``GET /indexes/{name}``: its info; ``DELETE /indexes/{name}``: drop it.
- ``POST /indexes/{name}/items``: add (upsert) ids, vectors, metadata, texts.
- ``POST /indexes/{name}/items/delete``: delete ids (answers how many existed).
- ``POST /indexes/{name}/search``: ``mode`` dense (``vectors``, one or more),
  keyword (``query``) or hybrid (one vector and ``query``); ``k``, ``filter``,
  ``exact``, ``nprobe``, ``candidates``. Answers ``{"results": [[hit, ...], ...]}``,
  one list per query, a hit being ``{id, score, metadata, text}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import StrictBody, ok, service
from opsloop.retrieval._service import IndexService, index_service

router = APIRouter(tags=["indexes"])

Svc = Annotated[IndexService, Depends(service(index_service))]
Name = Annotated[str, Path(min_length=1, max_length=128)]
MAX_ITEMS = 100_000


class CreateIndex(StrictBody):
    name: str = Field(min_length=1, max_length=128)
    dim: int | None = Field(default=None, ge=1, le=65_536)
    metric: Literal["cosine", "l2"] | None = None
    ann_threshold: int | None = Field(default=None, ge=256, le=1_000_000_000)


class AddItems(StrictBody):
    ids: list[str] = Field(max_length=MAX_ITEMS)
    vectors: list[list[float]] = Field(max_length=MAX_ITEMS)
    metadata: list[dict[str, Any] | None] | None = Field(default=None, max_length=MAX_ITEMS)
    texts: list[str | None] | None = Field(default=None, max_length=MAX_ITEMS)


class DeleteItems(StrictBody):
    ids: list[str] = Field(max_length=MAX_ITEMS)


class SearchBody(StrictBody):
    vectors: list[list[float]] | None = Field(default=None, min_length=1, max_length=1_000)
    query: str | None = Field(default=None, max_length=100_000)
    k: int = Field(default=10, ge=1, le=10_000)
    filter: dict[str, Any] | None = None
    exact: bool = False
    nprobe: int | None = Field(default=None, ge=1, le=1_000_000)
    mode: Literal["dense", "keyword", "hybrid"] = "dense"
    candidates: int = Field(default=50, ge=1, le=10_000)


@router.get("/indexes", summary="List vector indexes")
def list_indexes(svc: Svc) -> Response:
    return ok({"indexes": svc.list()})


@router.post("/indexes", summary="Create a vector index (or check an existing one)")
def create_index(body: CreateIndex, svc: Svc) -> Response:
    return ok(
        svc.create(body.name, dim=body.dim, metric=body.metric, ann_threshold=body.ann_threshold)
    )


@router.get("/indexes/{name}", summary="A vector index's info")
def index_info(name: Name, svc: Svc) -> Response:
    return ok(svc.info(name))


@router.delete("/indexes/{name}", status_code=204, summary="Drop a vector index")
def drop_index(name: Name, svc: Svc) -> Response:
    svc.drop(name)
    return Response(status_code=204)


@router.post("/indexes/{name}/items", summary="Add (upsert) items")
def add_items(name: Name, body: AddItems, svc: Svc) -> Response:
    return ok(svc.add(name, body.ids, body.vectors, metadata=body.metadata, texts=body.texts))


@router.post("/indexes/{name}/items/delete", summary="Delete items by id")
def delete_items(name: Name, body: DeleteItems, svc: Svc) -> Response:
    return ok(svc.delete(name, body.ids))


@router.post("/indexes/{name}/search", summary="Dense, keyword or hybrid search")
def search(name: Name, body: SearchBody, svc: Svc) -> Response:
    results = svc.search(
        name,
        vectors=body.vectors,
        query=body.query,
        k=body.k,
        filter=body.filter,
        exact=body.exact,
        nprobe=body.nprobe,
        mode=body.mode,
        candidates=body.candidates,
    )
    return ok({"results": results})
