"""Content-addressed blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...).

Keys mirror the local layout: ``<prefix>/blobs/sha256/<hex[:2]>/<hex>``. The
digest is only known once the whole stream has been read, so uploads land
under ``<prefix>/tmp/<uuid>`` first and are copied server-side to their final
key; a crash leaves at most a stray temp object, never a wrong blob under a
real name. Storing bytes that are already there copies them over the blob
again, so its ``LastModified`` (the age ``opsloop gc`` goes by) restarts. boto3
is an optional extra (``opsloop[s3]``) and imported lazily.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, cast

from opsloop.errors import (
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from opsloop.store._artifacts import (
    CHUNK,
    DIGEST_PREFIX,
    ArtifactStore,
    BlobInfo,
    BlobStat,
    TempFile,
    check_digest,
)

# S3 wants every multipart part but the last to be at least 5 MiB.
PART_SIZE = 8 * 1024 * 1024
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "AllAccessDisabled"}
_BAD_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the prefix may be empty."""
    if not uri.startswith("s3://"):
        raise InvalidArgument(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidArgument(f"no bucket in S3 URI {uri!r}: use s3://bucket/prefix")
    return bucket, prefix.strip("/")


class S3ArtifactStore(ArtifactStore):
    """Blobs as objects under ``s3://bucket/prefix``; credentials from the standard boto3 chain."""

    def __init__(
        self, uri: str, *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise InvalidArgument(
                "S3 artifact storage needs boto3: pip install 'opsloop[s3]'"
            ) from exc
        self.uri = uri
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.endpoint_url = endpoint_url
        # Most S3-compatible servers (MinIO, Ceph) have no wildcard DNS for
        # bucket subdomains, so a custom endpoint gets path-style addressing.
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _blob_key(self, digest: str) -> str:
        hexpart = check_digest(digest)
        return self._key("blobs", "sha256", hexpart[:2], hexpart)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn botocore exceptions into opsloop errors; ``what`` names the operation."""
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            HTTPClientError,
            NoCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        where = self.endpoint_url or "AWS S3"
        try:
            yield
        except NoCredentialsError as exc:
            raise Unauthenticated(f"{what}: no AWS credentials found for {self.uri}") from exc
        except (BotoConnectionError, ConnectionClosedError, HTTPClientError) as exc:
            raise Unavailable(f"{what}: cannot reach S3 endpoint {where}: {exc}") from exc
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise NotFound(f"{what}: bucket {self.bucket!r} does not exist at {where}") from exc
            if code in _BAD_CREDENTIAL_CODES:
                raise Unauthenticated(f"{what}: S3 rejected the credentials: {exc}") from exc
            if code in _DENIED_CODES:
                raise PermissionDenied(f"{what}: access to {self.uri} denied: {exc}") from exc
            raise

    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> BlobInfo:
        """Upload everything ``stream`` yields and return its digest and size.

        Identical content is stored once. Over ``max_bytes`` raises ``PayloadTooLarge``;
        on any failure no temporary object or multipart upload is left behind.
        """
        tmp_key = self._key("tmp", uuid.uuid4().hex)
        with self._errors(f"storing an artifact in {self.uri}"):
            digest, size = self._upload_tmp(stream, tmp_key, max_bytes)
            final_key = self._blob_key(digest)
            try:
                # Also when the blob is there already: the copy (same bytes) makes it
                # count as written now. Managed copy: multipart above 5 GiB.
                self._client.copy({"Bucket": self.bucket, "Key": tmp_key}, self.bucket, final_key)
            finally:
                self._quietly(self._client.delete_object, Bucket=self.bucket, Key=tmp_key)
        return BlobInfo(digest, size)

    def _upload_tmp(self, stream: BinaryIO, tmp_key: str, max_bytes: int | None) -> tuple[str, int]:
        """Write ``stream`` to ``tmp_key`` hashing as it goes; abort the upload on failure."""
        h = hashlib.sha256()
        size = 0
        buf = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            while True:
                block = stream.read(CHUNK)
                size += len(block)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLarge(f"artifact is larger than the limit of {max_bytes} bytes")
                h.update(block)
                buf += block
                if len(buf) >= PART_SIZE or (not block and upload_id is not None and buf):
                    if upload_id is None:
                        upload_id = self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=tmp_key
                        )["UploadId"]
                    n = len(parts) + 1
                    resp = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=tmp_key,
                        UploadId=upload_id,
                        PartNumber=n,
                        Body=bytes(buf),
                    )
                    parts.append({"PartNumber": n, "ETag": resp["ETag"]})
                    buf.clear()
                if not block:
                    break
            if upload_id is None:
                # Small blob: one PUT, no multipart bookkeeping.
                self._client.put_object(Bucket=self.bucket, Key=tmp_key, Body=bytes(buf))
            else:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                self._quietly(
                    self._client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                )
            raise
        return DIGEST_PREFIX + h.hexdigest(), size

    @staticmethod
    def _quietly(call: Any, **kwargs: Any) -> None:
        """Best-effort cleanup: a failed cleanup must not hide the error that caused it."""
        with suppress(Exception):
            call(**kwargs)

    def _head(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES:
                return False
            raise
        return True

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored; ``InvalidArgument`` for a malformed digest."""
        key = self._blob_key(digest)
        with self._errors(f"checking blob {digest} in {self.uri}"):
            return self._head(key)

    def open(self, digest: str) -> BinaryIO:
        """A readable stream of the blob (``read(n)``, ``read()``, ``with``); ``NotFound`` if missing."""
        from botocore.exceptions import ClientError

        key = self._blob_key(digest)
        with self._errors(f"reading blob {digest} from {self.uri}"):
            try:
                resp = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES:
                    raise NotFound(f"blob {digest} is missing from {self.uri}") from exc
                raise
        # botocore's StreamingBody is an io.IOBase: read(n), read(), close, context manager.
        return cast(BinaryIO, resp["Body"])

    def delete(self, digest: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""
        key = self._blob_key(digest)
        with self._errors(f"deleting blob {digest} from {self.uri}"):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    # -- listing and garbage collection -------------------------------------------------

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def iter_blobs(self) -> Iterator[BlobStat]:
        prefix = self._key("blobs", "sha256") + "/"
        with self._errors(f"listing blobs in {self.uri}"):
            for obj in self._list(prefix):
                shard, _, name = obj["Key"][len(prefix) :].partition("/")
                if len(name) != 64 or not name.startswith(shard) or len(shard) != 2:
                    continue
                if any(c not in "0123456789abcdef" for c in name):
                    continue
                yield BlobStat(DIGEST_PREFIX + name, obj["Size"], obj["LastModified"].timestamp())

    def stat(self, digest: str) -> BlobStat | None:
        from botocore.exceptions import ClientError

        key = self._blob_key(digest)
        with self._errors(f"checking blob {digest} in {self.uri}"):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES:
                    return None
                raise
        return BlobStat(digest, head["ContentLength"], head["LastModified"].timestamp())

    def touch(self, digest: str) -> bool:
        """Copy the blob onto itself (new ``LastModified``); False if it is not stored."""
        from botocore.exceptions import ClientError

        key = self._blob_key(digest)
        with self._errors(f"refreshing blob {digest} in {self.uri}"):
            try:
                self._client.copy(
                    {"Bucket": self.bucket, "Key": key},
                    self.bucket,
                    key,
                    ExtraArgs={"MetadataDirective": "REPLACE"},
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES:
                    return False
                raise
        return True

    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        """Read its age, then delete. S3 has no atomic move: a write of the same bytes
        landing between the two (milliseconds) is lost; ``opsloop gc`` re-checks the
        database and the age right before, so only such a rewrite of an old,
        unreferenced blob can race."""
        st = self.stat(digest)
        if st is None or st.modified >= cutoff:
            return False
        self.delete(digest)
        return True

    def iter_temp(self) -> Iterator[TempFile]:
        prefix = self._key("tmp") + "/"
        with self._errors(f"listing temporary objects in {self.uri}"):
            for obj in self._list(prefix):
                yield TempFile(
                    obj["Key"][len(prefix) :], obj["Size"], obj["LastModified"].timestamp()
                )
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for up in page.get("Uploads", []):
                    name = f"{up['Key'][len(prefix) :]}?upload={up['UploadId']}"
                    # Still being written if a part arrived lately, however old its start.
                    parts = self._client.list_parts(
                        Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                    ).get("Parts", [])
                    last = max(
                        [up["Initiated"].timestamp()]
                        + [p["LastModified"].timestamp() for p in parts]
                    )
                    yield TempFile(name, sum(p["Size"] for p in parts), last)

    def delete_temp(self, name: str) -> None:
        key_part, _, upload_id = name.partition("?upload=")
        if not key_part or "/" in key_part or key_part in (".", ".."):
            raise InvalidArgument(f"not a temporary object name: {name!r}")
        key = self._key("tmp", key_part)
        with self._errors(f"removing temporary object {key} from {self.uri}"):
            if upload_id:
                self._quietly(
                    self._client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                )
            else:
                self._client.delete_object(Bucket=self.bucket, Key=key)
