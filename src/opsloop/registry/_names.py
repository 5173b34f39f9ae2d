"""Names, aliases, version references and ``models:/`` URIs: parsing and checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opsloop.core import resolve_user
from opsloop.errors import InvalidArgument
from opsloop.settings import Settings
from opsloop.tracking import validation as V

KINDS = ("model", "prompt", "pipeline")
MAX_DESCRIPTION = 100_000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,255}$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")
RESERVED_ALIASES = ("latest",)


def check_model_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"model name {name!r} is not valid: use 1-256 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            details={"name": str(name)[:300]},
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidArgument(
            f"alias {alias!r} is not valid: use 1-128 letters, digits, '_' or '-', "
            "starting with a letter",
            details={"alias": str(alias)[:200]},
        )
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidArgument(
            f"alias {alias!r} is reserved (models:/NAME/latest means the newest version)"
        )
    return alias


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return str(kind)


def check_description(text: Any) -> str:
    if not isinstance(text, str) or len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"description must be a string of at most {MAX_DESCRIPTION} characters"
        )
    return text


def version_ref(version: Any) -> int | None:
    """A version number, or None for "latest"; ``InvalidArgument`` otherwise."""
    if isinstance(version, bool):
        raise InvalidArgument(f"version must be a positive integer or 'latest', got {version!r}")
    if isinstance(version, int):
        n = version
    elif isinstance(version, str) and version.lower() == "latest":
        return None
    elif isinstance(version, str) and version.isdigit() and len(version) < 10:
        n = int(version)
    else:
        raise InvalidArgument(f"version must be a positive integer or 'latest', got {version!r}")
    if not 1 <= n <= 2**31 - 1:
        raise InvalidArgument(f"version must be a positive integer, got {version!r}")
    return n


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI: a name plus a version number, an alias, or neither (latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"models:/{self.name}@{self.alias}"
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}"


def is_model_uri(uri: str) -> bool:
    return isinstance(uri, str) and uri.startswith("models:/")


def parse_model_uri(uri: Any) -> ModelRef:
    """``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME/latest`` or ``models:/NAME``."""
    if not is_model_uri(uri):
        raise InvalidArgument(
            f"not a model URI: {uri!r}; use models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME"
        )
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    if "/" in rest:
        name, ver = rest.split("/", 1)
        return ModelRef(check_model_name(name), version=version_ref(ver))
    return ModelRef(check_model_name(rest))


def parse_run_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<artifact path>`` as ``(run_id, path)`` (path may be empty)."""
    if not isinstance(uri, str) or not uri.startswith("runs:/"):
        raise InvalidArgument(f"not a run URI: {uri!r}; use runs:/<run_id>/<artifact path>")
    rest = uri[len("runs:/") :].lstrip("/")
    run_id, _, path = rest.partition("/")
    return V.check_id("run id", run_id), V.artifact_path(path, allow_empty=True)


def current_user(settings: Settings | None = None) -> str:
    """Who is acting (``opsloop.core.resolve_user``: ``Settings.user``, else the OS user)."""
    return resolve_user(settings or Settings())
