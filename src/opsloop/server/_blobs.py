"""The one content-addressed blob API, under ``/api/v1/blobs``, shared by every room.

Remote clients that send files (dataset versions, model versions) hash them,
ask ``POST /blobs/missing`` which digests the server lacks, upload those with
``PUT /blobs/{digest}`` (the server recomputes the SHA-256 while streaming and
refuses a mismatch before anything is stored), then post the metadata that
names the digests; the room's service checks they are all there.
``opsloop.core.upload_missing_blobs`` is the client side. Blobs belong to no
one room (datasets and the registry share one blob space), so the server hub
mounts this router itself, like the meta routes.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from opsloop.core.web import Ctx, StrictBody, ok
from opsloop.errors import InvalidArgument, NotFound, PayloadTooLarge
from opsloop.store import LocalArtifactStore

router = APIRouter(prefix="/blobs", tags=["blobs"])

Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class Digests(StrictBody):
    digests: list[Digest] = Field(max_length=100_000)


@router.post("/missing", summary="Which of these blob digests the server lacks")
def missing_blobs(body: Digests, ctx: Ctx) -> Response:
    # The ones that are there count as written now (``touch``): the client is about to
    # name them in a row, so ``opsloop gc`` must leave them for its grace period.
    return ok({"missing": [d for d in dict.fromkeys(body.digests) if not ctx.blobs.touch(d)]})


@router.put(
    "/{digest}",
    status_code=201,
    summary="Upload a blob (raw body); the SHA-256 is checked before it is stored",
)
async def put_blob(digest: Digest, request: Request, ctx: Ctx) -> Response:
    limit = ctx.settings.max_artifact_bytes
    h = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async for block in request.stream():
            size += len(block)
            if size > limit:
                raise PayloadTooLarge(f"blob is larger than the limit of {limit} bytes")
            h.update(block)
            spool.write(block)
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            raise InvalidArgument(
                f"the body's digest is {actual}, not {digest}",
                details={"expected": digest, "actual": actual},
            )
        spool.seek(0)
        info = await run_in_threadpool(ctx.blobs.put_stream, spool)  # type: ignore[arg-type]
    return ok({"digest": info.digest, "size": info.size}, 201)


@router.head("/{digest}", summary="Whether a blob is stored")
def head_blob(digest: Digest, ctx: Ctx) -> Response:
    if not ctx.blobs.exists(digest):
        raise NotFound(f"blob {digest} is not stored")
    return Response(status_code=200)


@router.get("/{digest}", summary="Download a blob", response_class=Response)
def get_blob(digest: Digest, ctx: Ctx) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=31536000, immutable"}
    if isinstance(ctx.blobs, LocalArtifactStore):
        return FileResponse(
            ctx.blobs.local_path(digest), media_type="application/octet-stream", headers=headers
        )
    fh = ctx.blobs.open(digest)

    def chunks() -> Any:
        with fh:
            while block := fh.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)
