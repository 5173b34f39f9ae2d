"""``open_artifact_store``: the blob store for a URI (a folder, or S3-compatible storage)."""

from __future__ import annotations

from opsloop.errors import InvalidArgument
from opsloop.store._artifacts import ArtifactStore, LocalArtifactStore

__all__ = ["open_artifact_store"]


def open_artifact_store(
    uri: str, *, endpoint_url: str | None = None, region: str | None = None
) -> ArtifactStore:
    """The store for ``uri``: ``s3://bucket/prefix`` or a local folder (``file://`` optional)."""
    if uri.startswith("s3://"):
        from opsloop.store._s3 import S3ArtifactStore  # lazy: loads boto3

        return S3ArtifactStore(uri, endpoint_url=endpoint_url, region=region)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise InvalidArgument(
            f"unsupported artifact URI {uri!r}: use a folder or s3://bucket/prefix"
        )
    return LocalArtifactStore(uri)
