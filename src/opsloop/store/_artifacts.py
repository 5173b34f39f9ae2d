"""Content-addressed blob storage for artifacts.

A blob is named by the SHA-256 of its bytes (``sha256:<hex>``), so the same
file logged by a thousand runs is stored once, and a blob, once written, never
changes. Writes go to a temporary name and are renamed into place only when
complete and flushed, so a crash never leaves a half-written blob under a real
name. Which run holds which blob under which path lives in the database
(``artifacts`` table), not here.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from opsloop.errors import InvalidArgument, NotFound, PayloadTooLarge

CHUNK = 1024 * 1024
DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


def check_digest(digest: str) -> str:
    """The hex part of a ``sha256:<64 hex>`` digest, or ``InvalidArgument``."""
    if not digest.startswith(DIGEST_PREFIX):
        raise InvalidArgument(f"not a sha256 digest: {digest!r}")
    hexpart = digest[len(DIGEST_PREFIX) :]
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"not a sha256 digest: {digest!r}")
    return hexpart


class ArtifactStore(ABC):
    """Where blobs live. Implementations: a local folder, S3-compatible storage."""

    uri: str

    @abstractmethod
    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> BlobInfo:
        """Store everything ``stream`` yields; return its digest and size."""

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        with open(path, "rb") as fh:
            return self.put_stream(fh)

    def put_bytes(self, data: bytes) -> BlobInfo:

        return self.put_stream(io.BytesIO(data))

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A readable binary stream of the blob; ``NotFound`` if it is missing."""

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.open(digest) as fh:
            while True:
                block = fh.read(chunk_size)
                if not block:
                    return
                yield block

    @abstractmethod
    def delete(self, digest: str) -> None: ...


class LocalArtifactStore(ArtifactStore):
    """Blobs as files under ``root/blobs/sha256/ab/<hex>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)
        self._blobs = self.root / "blobs" / "sha256"
        self._tmp = self.root / "tmp"

    def _path(self, digest: str) -> Path:
        hexpart = check_digest(digest)
        return self._blobs / hexpart[:2] / hexpart

    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> BlobInfo:
        self._tmp.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    block = stream.read(CHUNK)
                    if not block:
                        break
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:

                        raise PayloadTooLarge(
                            f"artifact is larger than the limit of {max_bytes} bytes"
                        )
                    h.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            digest = DIGEST_PREFIX + h.hexdigest()
            final = self._path(digest)
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, final)
            return BlobInfo(digest, size)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        with open(path, "rb") as fh:
            return self.put_stream(fh)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        p = self._path(digest)
        try:
            return open(p, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is missing from {self.uri}") from exc

    def local_path(self, digest: str) -> Path:
        """The file holding the blob (local store only; lets servers use sendfile)."""
        p = self._path(digest)
        if not p.is_file():
            raise NotFound(f"blob {digest} is missing from {self.uri}")
        return p

    def delete(self, digest: str) -> None:
        p = self._path(digest)
        if p.exists():
            p.unlink()

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
