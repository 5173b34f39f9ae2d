"""Score and queue names: a letter, then letters, digits and ``_`` (64 at most)."""

from __future__ import annotations

import re
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = ["NAME_RE", "check_score_name"]

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def check_score_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"name {name!r} must start with a letter and hold at most 64 letters, digits and '_'",
            details={"field": "name"},
        )
    return name
