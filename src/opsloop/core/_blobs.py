"""``upload_missing_blobs``: the client side of the one blob API (``/api/v1/blobs``).

Remote clients that send files (dataset versions, model versions) hash them,
ask ``POST /blobs/missing`` which digests the server lacks, upload those with
``PUT /blobs/{digest}`` (the server recomputes the SHA-256 while streaming and
refuses a mismatch before anything is stored), then post the metadata that
names the digests. The server side is ``opsloop.server``'s blob router.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsloop.core._transport import Transport

__all__ = ["upload_missing_blobs"]


def upload_missing_blobs(
    transport: Transport, files: Mapping[str, str | os.PathLike[str]]
) -> list[str]:
    """Upload the files (``digest -> path``) the server lacks; return the digests uploaded.

    One ``POST /blobs/missing``, then one streamed ``PUT /blobs/{digest}`` per
    missing file (safe to retry: the same digest stores the same bytes).
    """
    digests = sorted(files)
    if not digests:
        return []
    missing = list(
        transport.post("/blobs/missing", {"digests": digests}, idempotent=True)["missing"]
    )
    for digest in missing:
        with open(files[digest], "rb") as fh:
            transport.call(
                "PUT",
                f"/blobs/{digest}",
                content=fh,
                headers={"Content-Type": "application/octet-stream"},
            )
    return missing
