"""Input checks shared by the service, the SDK and the REST API.

Every check raises ``InvalidArgument`` (or ``PayloadTooLarge``) with a message
that names the offending field and value; nothing here touches storage.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any

from opsloop.errors import InvalidArgument, PayloadTooLarge

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_NAME = 256
MAX_NOTES = 100_000
MAX_ARTIFACT_PATH = 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_KEY_RE = re.compile(r"^[\w\-. /:]+$")


def check_key(kind: str, key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"{kind} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_KEY:
        raise InvalidArgument(f"{kind} key {key[:40]!r}... is longer than {MAX_KEY} characters")
    if not _KEY_RE.match(key):
        raise InvalidArgument(
            f"{kind} key {key!r} may only hold letters, digits, underscores, dashes, periods, "
            "spaces, slashes and colons"
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidArgument(
            f"{kind} key {key!r} must not start with '/' or contain '..' segments"
        )
    return key


def check_name(kind: str, name: Any, *, max_len: int = MAX_NAME) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{kind} must be a non-empty string, got {name!r}")
    if len(name) > max_len:
        raise InvalidArgument(f"{kind} is longer than {max_len} characters")
    if any(ord(c) < 32 for c in name):
        raise InvalidArgument(f"{kind} {name!r} contains control characters")
    return name


def param_value(value: Any) -> str:
    """A param value as stored: its string form, bounded in length."""
    text = str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise PayloadTooLarge(f"param value is longer than {MAX_PARAM_VALUE} characters")
    return text


def tag_value(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_TAG_VALUE:
        raise PayloadTooLarge(f"tag value is longer than {MAX_TAG_VALUE} characters")
    return text


def numeric_or_none(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def metric_value(key: str, value: Any) -> float:
    # numpy scalars have __float__; strings, bytes and None do not count as numbers.
    if (isinstance(value, bool) or not isinstance(value, (int, float))) and (
        value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__float__")
    ):
        raise InvalidArgument(f"metric {key!r} value must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument(f"metric {key!r} value must be a number, got {value!r}") from exc


def int64(kind: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if (isinstance(value, float) and value.is_integer()) or hasattr(value, "__index__"):
            value = int(value)
        else:
            raise InvalidArgument(f"{kind} must be an integer, got {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidArgument(f"{kind} {value} is out of the 64-bit range")
    return int(value)


def artifact_path(path: Any, *, allow_empty: bool = False) -> str:
    """A normalised relative artifact path: no '..', no leading '/', no backslashes."""
    if path is None or path == "":
        if allow_empty:
            return ""
        raise InvalidArgument("artifact path must not be empty")
    if not isinstance(path, str):
        raise InvalidArgument(f"artifact path must be a string, got {path!r}")
    if len(path) > MAX_ARTIFACT_PATH:
        raise InvalidArgument(f"artifact path is longer than {MAX_ARTIFACT_PATH} characters")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise InvalidArgument(f"artifact path {path!r} contains a backslash or control character")
    if path.startswith("/"):
        raise InvalidArgument(f"artifact path {path!r} must be relative")
    norm = posixpath.normpath(path)
    if norm == ".":
        if allow_empty:
            return ""
        raise InvalidArgument("artifact path must not be empty")
    if norm.startswith("..") or "/../" in f"/{norm}/":
        raise InvalidArgument(f"artifact path {path!r} must stay inside the run's artifacts")
    return norm


def check_id(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-zA-Z_\-]{1,32}", value):
        raise InvalidArgument(f"{kind} {value!r} is not a valid id")
    return value


def metric_points(points: Any) -> list[tuple[str, float, int, int]]:
    """Checked ``(key, value, step, timestamp_ms)`` tuples, or ``InvalidArgument``."""
    out: list[tuple[str, float, int, int]] = []
    known: set[str] = set()
    for item in points:
        if not isinstance(item, (tuple, list)) or len(item) != 4:
            raise InvalidArgument("each metric must be (key, value, step, timestamp)")
        key = item[0]
        if key not in known:
            check_key("metric", key)
            known.add(key)
        value = item[1] if type(item[1]) is float else metric_value(key, item[1])
        step = (
            item[2]
            if type(item[2]) is int and INT64_MIN <= item[2] <= INT64_MAX
            else int64("metric step", item[2])
        )
        ts = (
            item[3]
            if type(item[3]) is int and INT64_MIN <= item[3] <= INT64_MAX
            else int64("metric timestamp", item[3])
        )
        out.append((key, value, step, ts))
    return out


def wire_value(v: float | None) -> float | str | None:
    """A metric value as the REST routes carry it: JSON has no NaN or infinities (orjson
    writes null), so NaN travels as null and infinities as ``"Infinity"``/``"-Infinity"``."""
    if v is None or math.isfinite(v):
        return v
    return None if v != v else ("Infinity" if v > 0 else "-Infinity")
