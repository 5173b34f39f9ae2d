"""MLflow's wire conventions: reading a request's message, and answering errors MLflow's way.

A GET carries its message as query parameters (a repeated parameter is a
list), every other method as a JSON body (DELETE too). 64-bit integers may
arrive as JSON numbers or as strings. Errors answer
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`` with the HTTP
status MLflow gives that code, because the MLflow client branches on them
(``set_experiment`` creates the experiment on ``RESOURCE_DOES_NOT_EXIST``,
``register_model`` goes on after ``RESOURCE_ALREADY_EXISTS``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi.responses import Response

from opsloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    OpsloopError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "MlflowError",
    "Msg",
    "error_json",
    "json_response",
    "key_value_list",
    "max_results",
    "mlflow_code",
    "page_offset",
    "page_token",
    "view_type",
]

# MLflow's error codes and the HTTP status its server answers each with.
STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INVALID_STATE": 500,
    "RESOURCE_CONFLICT": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


class MlflowError(Exception):
    """An error answered with an MLflow code (for what opsloop's own errors do not say)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def mlflow_code(exc: BaseException) -> str:
    """The MLflow error code for an exception raised by opsloop's services."""
    if isinstance(exc, MlflowError):
        return exc.code
    if isinstance(exc, NotFound):
        return "RESOURCE_DOES_NOT_EXIST"
    if isinstance(exc, AlreadyExists):
        return "RESOURCE_ALREADY_EXISTS"
    if isinstance(exc, (InvalidArgument, Conflict)):
        # A param logged again with another value, a batch too large, a bad key:
        # MLflow answers each with INVALID_PARAMETER_VALUE.
        return "INVALID_PARAMETER_VALUE"
    if isinstance(exc, PermissionDenied):
        return "PERMISSION_DENIED"
    if isinstance(exc, Unauthenticated):
        return "UNAUTHENTICATED"
    if isinstance(exc, Unavailable):
        return "TEMPORARILY_UNAVAILABLE"
    return "INTERNAL_ERROR"


def error_json(exc: BaseException) -> Response:
    code = mlflow_code(exc)
    if isinstance(exc, (MlflowError, OpsloopError)):
        message = exc.message
    else:
        message = "internal error (see the server log)"
    return json_response({"error_code": code, "message": message}, STATUS.get(code, 500))


def _float_default(obj: Any) -> Any:
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, default=_float_default),
        status_code=status,
        media_type="application/json",
    )


def wire_float(value: float | None) -> float | str:
    """A double as proto JSON writes it: NaN and infinities as strings (None is NaN)."""
    if value is None or value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_FLOAT_WORDS = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "inf": math.inf}


class Msg:
    """One request's message: query parameters (GET) or the JSON body, plus path parameters."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def from_query(cls, items: list[tuple[str, str]]) -> Msg:
        data: dict[str, Any] = {}
        for k, v in items:
            if k in data:
                prev = data[k]
                data[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
            else:
                data[k] = v
        return cls(data)

    @classmethod
    def from_body(cls, body: bytes) -> Msg:
        if not body.strip():
            return cls({})
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MlflowError("BAD_REQUEST", f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MlflowError("BAD_REQUEST", "the request body must be a JSON object")
        return cls(data)

    def has(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        v = self.data.get(name)
        if isinstance(v, list) and len(v) == 1:
            v = v[0]
        if v is None or v == "":
            if required:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE",
                    f"Missing value for required parameter '{name}'.",
                )
            return default
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"Invalid value {v!r} for parameter '{name}': a string"
            )
        return v if isinstance(v, str) else str(v)

    def req(self, name: str) -> str:
        v = self.text(name, required=True)
        assert v is not None
        return v

    def int64(self, name: str, default: int | None = None) -> int | None:
        """An int64 field: a JSON number or a string of digits."""
        v = self.data.get(name)
        if isinstance(v, list) and len(v) == 1:
            v = v[0]
        if v is None or v == "":
            return default
        if isinstance(v, bool):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be an integer")
        if isinstance(v, int):
            out = v
        elif isinstance(v, float) and v.is_integer():
            out = int(v)
        elif isinstance(v, str):
            try:
                out = int(v.strip())
            except ValueError:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"'{name}' must be an integer, got {v!r}"
                ) from None
        else:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be an integer, got {v!r}")
        if not -(2**63) <= out < 2**63:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' is out of the int64 range")
        return out

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.data.get(name)
        if v is None or v == "":
            return default
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be true or false")

    def values(self, name: str) -> list[Any]:
        v = self.data.get(name)
        if v is None:
            return []
        if isinstance(v, list):
            return v
        return [v]

    def dicts(self, name: str) -> list[dict[str, Any]]:
        out = self.values(name)
        for item in out:
            if not isinstance(item, dict):
                raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be a list of objects")
        return out


def to_float(name: str, v: Any) -> float:
    """A proto JSON double: a number, or "NaN" / "Infinity" / "-Infinity" (or a numeric string)."""
    if isinstance(v, bool) or v is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be a number, got {v!r}")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        word = _FLOAT_WORDS.get(v.strip().lower())
        if word is not None:
            return word
        try:
            return float(v)
        except ValueError:
            pass
    raise MlflowError("INVALID_PARAMETER_VALUE", f"'{name}' must be a number, got {v!r}")


def to_int(name: str, v: Any, default: int = 0) -> int:
    return Msg({name: v}).int64(name, default) or 0


def key_values(items: list[dict[str, Any]], what: str) -> list[tuple[str, str]]:
    """``[{"key": k, "value": v}, ...]`` as ``(k, v)`` pairs (MLflow's tags and params)."""
    out = []
    for item in items:
        k = item.get("key")
        v = item.get("value", "")
        if not isinstance(k, str) or not k:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"every {what} needs a non-empty 'key'")
        if v is None:
            v = ""
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise MlflowError(
                "INVALID_PARAMETER_VALUE", f"{what} {k!r} needs a string 'value', got {v!r}"
            )
        out.append((k, v if isinstance(v, str) else str(v)))
    return out


# ---------------------------------------------------------------------------- pages and views

_VIEW = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


def key_value_list(items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """``[{"key": k, "value": v}, ...]``: how MLflow sends tags and params."""
    return [{"key": k, "value": v} for k, v in items]


def view_type(m: Msg, field: str) -> str:
    """A search's ``ACTIVE_ONLY`` / ``DELETED_ONLY`` / ``ALL`` (names or MLflow's numbers)."""
    v = m.text(field) or "ACTIVE_ONLY"
    v = _VIEW.get(v, v).upper()
    if v not in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid {field} '{v}'")
    return v


def page_offset(token: str | None) -> int:
    """The offset a page token made by ``page_token`` carries (0 without a token)."""
    if not token:
        return 0
    try:
        out = int(json.loads(token)["offset"])
    except (ValueError, KeyError, TypeError, OverflowError):
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token") from None
    if out < 0:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token")
    return out


def page_token(offset: int) -> str:
    return json.dumps({"offset": offset})


def max_results(m: Msg, default: int, limit: int) -> int:
    """The request's ``max_results`` (``default`` when absent), refused above ``limit``."""
    n = m.int64("max_results", default)
    assert n is not None
    if not 1 <= n <= limit:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid value {n} for parameter 'max_results' supplied. It must be at most {limit}",
        )
    return n
