"""Content-addressed blob storage for artifacts.

A blob is named by the SHA-256 of its bytes (``sha256:<hex>``), so the same
file logged by a thousand runs is stored once, and a blob, once written, never
changes. Writes go to a temporary name and are renamed into place only when
complete and flushed, so a crash never leaves a half-written blob under a real
name. Which run holds which blob under which path lives in the database
(``artifacts`` table), not here.

A blob's modification time is the time it was last *written*: storing bytes
that are already there refreshes it (``touch``). ``opsloop gc`` (``_gc.py``)
removes only blobs no row references that were not written for a grace period,
so a blob written just before the row that names it is committed is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import uuid
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


@dataclass(frozen=True)
class BlobStat:
    """A stored blob: its digest, size and when it was last written (epoch seconds)."""

    digest: str
    size: int
    modified: float


@dataclass(frozen=True)
class TempFile:
    """A leftover of an interrupted write (a temporary file or object, an open upload)."""

    name: str
    size: int
    modified: float


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

    # -- listing and garbage collection (``_gc.py``) ------------------------------------

    @abstractmethod
    def iter_blobs(self) -> Iterator[BlobStat]:
        """Every stored blob, in no particular order."""

    @abstractmethod
    def stat(self, digest: str) -> BlobStat | None:
        """The blob's size and last write time, or None if it is not stored."""

    @abstractmethod
    def touch(self, digest: str) -> bool:
        """Mark the blob as written now (as storing its bytes again would); False if absent."""

    @abstractmethod
    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        """Delete the blob unless it was written at or after ``cutoff`` (epoch seconds).

        True if this call deleted it. A write of the same bytes racing with the
        delete must not be lost.
        """

    @abstractmethod
    def iter_temp(self) -> Iterator[TempFile]:
        """Leftovers of interrupted writes (they never hold a finished blob)."""

    @abstractmethod
    def delete_temp(self, name: str) -> None:
        """Remove one leftover named by ``iter_temp``; a missing one is not an error."""


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
            if self.touch(digest):
                # Already stored: it counts as written now (its age restarts), ours goes.
                os.unlink(tmp_name)
            else:
                final = self._path(digest)
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

    def iter_blobs(self) -> Iterator[BlobStat]:
        try:
            shards = list(os.scandir(self._blobs))
        except FileNotFoundError:
            return
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                name = entry.name
                if len(name) != 64 or not name.startswith(shard.name) or not _is_hex(name):
                    continue  # not a blob (a stray file someone put here)
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # deleted while listing
                yield BlobStat(DIGEST_PREFIX + name, st.st_size, st.st_mtime)

    def stat(self, digest: str) -> BlobStat | None:
        try:
            st = os.stat(self._path(digest))
        except FileNotFoundError:
            return None
        return BlobStat(digest, st.st_size, st.st_mtime)

    def touch(self, digest: str) -> bool:
        try:
            os.utime(self._path(digest))
        except FileNotFoundError:
            return False
        return True

    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        """Moved aside first, then its age read there: a writer that refreshed it before
        the move is seen (the blob goes back), one after finds it gone and stores its own."""
        p = self._path(digest)
        self._tmp.mkdir(parents=True, exist_ok=True)
        aside = self._tmp / f"gc-{uuid.uuid4().hex}"
        try:
            os.rename(p, aside)
        except FileNotFoundError:
            return False
        if os.stat(aside).st_mtime >= cutoff:
            os.replace(aside, p)  # written again meanwhile: keep it (same bytes either way)
            return False
        os.unlink(aside)
        return True

    def iter_temp(self) -> Iterator[TempFile]:
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            if entry.is_file():
                yield TempFile(entry.name, st.st_size, st.st_mtime)

    def delete_temp(self, name: str) -> None:
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise InvalidArgument(f"not a temporary file name: {name!r}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp / name)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
