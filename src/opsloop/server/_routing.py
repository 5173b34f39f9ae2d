"""Small pieces every room's router uses: the JSON reply, strict bodies, the acting user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from opsloop.server._json import JSONBody

__all__ = ["Actor", "StrictBody", "get_actor", "ok"]


def ok(content: Any, status_code: int = 200) -> Response:
    """``content`` as a JSON response (orjson; pydantic models, numpy values)."""
    return JSONBody(content, status_code=status_code)


class StrictBody(BaseModel):
    """A request body that refuses fields it does not declare."""

    model_config = ConfigDict(extra="forbid")


def get_actor(request: Request) -> str | None:
    """Who acts: the ``X-Opsloop-User`` header (at most 256 characters), else the server's default."""
    who = request.headers.get("x-opsloop-user")
    return who[:256] if who else None


Actor = Annotated[str | None, Depends(get_actor)]
