"""Stored secrets (API keys) in ``<home>/secrets.json``, readable only by their owner.

The file is a JSON object ``{name: value}``, mode 0600 in a home the user
owns. Every write replaces the whole file atomically (a temporary file in the
same folder, fsynced, renamed over the old one) under an exclusive lock, so a
crash or a concurrent writer never leaves a half-written file and two writers
never lose each other's changes. Values are never printed by opsloop:
``secrets list`` shows names only. This keeps keys out of shell history and
environment dumps.

With a server key (``OPSLOOP_SECRET_KEY``, ``Settings.secret_key``) values are
encrypted at rest: each is stored as ``enc:v1:`` and a Fernet token
(AES-128-CBC with an HMAC-SHA256, from the ``cryptography`` package) under a
key derived from the server key by SHA-256, and every write encrypts the
values still stored in plain text. Reading an encrypted value without the
key, or with another key, is refused with a clear error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument, NotFound

if sys.platform != "win32":
    import fcntl

__all__ = ["SecretStore"]

FILE_NAME = "secrets.json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_VALUE = 64 * 1024
ENCRYPTED = "enc:v1:"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"a secret name is 1-128 letters, digits, '_', '.' or '-', starting with a letter "
            f"or '_'; got {name!r}",
            details={"name": str(name)[:200]},
        )
    return name


class SecretStore:
    """Named secrets of one opsloop home; encrypted at rest when given a server ``key``."""

    def __init__(self, home: str | os.PathLike[str], key: str | None = None) -> None:
        self.home = Path(home).expanduser()
        self.path = self.home / FILE_NAME
        self._fernet: Any = None
        if key:
            from cryptography.fernet import Fernet  # lazy: only with a server key

            digest = hashlib.sha256(key.encode()).digest()
            self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def _seal(self, value: str) -> str:
        if self._fernet is None or value.startswith(ENCRYPTED):
            return value
        return ENCRYPTED + str(self._fernet.encrypt(value.encode()).decode())

    def _open(self, name: str, stored: str) -> str:
        if not stored.startswith(ENCRYPTED):
            return stored
        if self._fernet is None:
            raise InvalidArgument(
                f"secret {name!r} is encrypted: set OPSLOOP_SECRET_KEY to the server key",
                details={"secret": name},
            )
        from cryptography.fernet import InvalidToken  # lazy: only with a server key

        try:
            return str(self._fernet.decrypt(stored[len(ENCRYPTED) :].encode()).decode())
        except InvalidToken:
            raise InvalidArgument(
                f"secret {name!r} was encrypted with another key than OPSLOOP_SECRET_KEY",
                details={"secret": name},
            ) from None

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
        data = {k: self._seal(v) for k, v in data.items()}  # plain values get encrypted too
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
        stored = self._read().get(check_name(name))
        return None if stored is None else self._open(name, stored)

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
