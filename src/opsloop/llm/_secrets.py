"""Stored secrets (API keys) in ``<home>/secrets.json``, readable only by their owner.

The file is a JSON object ``{name: value}``, mode 0600 in a home the user
owns. Every write replaces the whole file atomically (a temporary file in the
same folder, fsynced, renamed over the old one) under an exclusive lock, so a
crash or a concurrent writer never leaves a half-written file and two writers
never lose each other's changes. Values are never printed by opsloop:
``secrets list`` shows names only. This keeps keys out of shell history and
environment dumps; it is not encryption at rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from opsloop.errors import InvalidArgument, NotFound

if sys.platform != "win32":
    import fcntl

__all__ = ["SecretStore"]

FILE_NAME = "secrets.json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_VALUE = 64 * 1024


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"a secret name is 1-128 letters, digits, '_', '.' or '-', starting with a letter "
            f"or '_'; got {name!r}",
            details={"name": str(name)[:200]},
        )
    return name


class SecretStore:
    """Named secrets of one opsloop home."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home).expanduser()
        self.path = self.home / FILE_NAME

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise InvalidArgument(
                f"{self.path} is not valid JSON ({exc}); fix or delete it",
                details={"path": str(self.path)},
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise InvalidArgument(
                f"{self.path} must be a JSON object of name -> string",
                details={"path": str(self.path)},
            )
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / f".{FILE_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":  # no advisory locks; atomic replace still holds
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.home / f".{FILE_NAME}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(data, indent=2, sort_keys=True).encode())
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # O_CREAT's mode is filtered by the umask
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, name: str) -> str | None:
        """The secret's value, or None when there is no such secret."""
        return self._read().get(check_name(name))

    def require(self, name: str) -> str:
        """The secret's value; ``NotFound`` saying how to set it otherwise."""
        value = self.get(name)
        if value is None:
            raise NotFound(
                f"no stored secret {name!r}; set it with: opsloop secrets set {name}",
                details={"secret": name},
            )
        return value

    def set(self, name: str, value: str) -> None:
        check_name(name)
        if not isinstance(value, str) or not value:
            raise InvalidArgument("a secret value must be a non-empty string")
        if len(value) > MAX_VALUE:
            raise InvalidArgument(f"a secret value is at most {MAX_VALUE} characters")
        with self._locked():
            data = self._read()
            data[name] = value
            self._write(data)

    def delete(self, name: str) -> None:
        """Remove a secret; ``NotFound`` if there is none by that name."""
        check_name(name)
        with self._locked():
            data = self._read()
            if name not in data:
                raise NotFound(f"no stored secret {name!r}", details={"secret": name})
            del data[name]
            self._write(data)

    def names(self) -> list[str]:
        return sorted(self._read())
