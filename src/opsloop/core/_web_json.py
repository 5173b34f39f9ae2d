"""Fast JSON responses (orjson) for every router and the serving apps."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel

__all__ = ["JSONBody"]


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class JSONBody(JSONResponse):
    """Fast JSON responses (orjson): NaN becomes null, numpy and pydantic types are handled.

    A ``JSONResponse``, so the OpenAPI document shows each route's response model.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="python")
        return orjson.dumps(
            content, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        )
