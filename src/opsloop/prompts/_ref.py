"""Prompt names, labels and ``prompts:/`` URIs: parsing and checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.registry import check_model_name, version_ref

LATEST = "latest"
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")


def check_name(name: Any) -> str:
    try:
        return check_model_name(name)
    except InvalidArgument:
        raise InvalidArgument(
            f"prompt name {name!r} is not valid: use 1-256 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            details={"name": str(name)[:300]},
        ) from None


def check_label(label: Any, *, allow_latest: bool = False) -> str:
    """A label name; ``latest`` only where it is read (it always follows the newest version)."""
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise InvalidArgument(
            f"label {label!r} is not valid: use 1-128 letters, digits, '_' or '-', "
            "starting with a letter",
            details={"label": str(label)[:200]},
        )
    if label.lower() == LATEST and not (allow_latest and label == LATEST):
        raise InvalidArgument(
            "label 'latest' always follows the newest version: it cannot be set or deleted",
            details={"label": label},
        )
    return label


def version_number(version: Any) -> int | None:
    """A version number, or None for ``latest``."""
    try:
        return version_ref(version)
    except InvalidArgument as exc:
        raise InvalidArgument(exc.message.replace("version must", "prompt version must")) from None


@dataclass(frozen=True)
class PromptRef:
    """A prompt name plus a version number or a label (neither: the newest version)."""

    name: str
    version: int | None = None
    label: str | None = None

    @property
    def key(self) -> str:
        """``NAME/3`` or ``NAME@label``: how caches and logs name what was asked for."""
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.label or LATEST}"


def parse_uri(uri: str) -> PromptRef:
    """``prompts:/NAME@LABEL``, ``prompts:/NAME/VERSION``, ``prompts:/NAME/latest``, ``prompts:/NAME``."""
    rest = uri[len("prompts:/") :].strip("/")
    if "@" in rest:
        name, label = rest.split("@", 1)
        return PromptRef(check_name(name), label=check_label(label, allow_latest=True))
    if "/" in rest:
        name, ver = rest.split("/", 1)
        n = version_number(ver)
        return PromptRef(check_name(name), version=n, label=None if n is not None else LATEST)
    return PromptRef(check_name(rest), label=LATEST)


def make_ref(name: str, version: Any = None, label: str | None = None) -> PromptRef:
    """What ``get(name, version=, label=)`` asks for; ``name`` may be a ``prompts:/`` URI."""
    if isinstance(name, str) and name.startswith("prompts:/"):
        if version is not None or label is not None:
            raise InvalidArgument("give a prompts:/ URI or version/label, not both")
        return parse_uri(name)
    check_name(name)
    if version is not None and label is not None:
        raise InvalidArgument("give a version or a label, not both")
    if version is not None:
        n = version_number(version)
        return PromptRef(name, version=n) if n is not None else PromptRef(name, label=LATEST)
    return PromptRef(name, label=check_label(label, allow_latest=True) if label else LATEST)
