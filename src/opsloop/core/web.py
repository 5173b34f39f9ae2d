"""What every room's FastAPI router uses: the context, the JSON reply, strict bodies, the actor.

Room routers import this module (below them), never ``opsloop.server``
(above them): the server mounts the routers, the routers do not know the
server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from opsloop.core._context import Context
from opsloop.core._identity import ACTOR_HEADER, AUTHENTICATED_USER, actor_from_header
from opsloop.core._web_errors import error_response, install_error_handlers
from opsloop.core._web_json import JSONBody
from opsloop.core._web_limits import BodyLimitMiddleware

__all__ = [
    "Actor",
    "BodyLimitMiddleware",
    "Ctx",
    "JSONBody",
    "StrictBody",
    "claimed_user",
    "error_response",
    "get_actor",
    "get_context",
    "install_error_handlers",
    "ok",
    "service",
]

T = TypeVar("T")


def ok(content: Any, status_code: int = 200) -> Response:
    """``content`` as a JSON response (orjson; pydantic models, numpy values)."""
    return JSONBody(content, status_code=status_code)


class StrictBody(BaseModel):
    """A request body that refuses fields it does not declare."""

    model_config = ConfigDict(extra="forbid")


async def get_context(request: Request) -> Context:
    """The server's embedded ``Context`` (``async``: an attribute read needs no thread hop)."""
    ctx: Context = request.app.state.opsloop
    return ctx


Ctx = Annotated[Context, Depends(get_context)]


async def get_actor(request: Request) -> str | None:
    """Who acts: the ``X-Opsloop-User`` header (at most 256 characters), else None
    (the service then uses the server's own user, see ``opsloop.core.resolve_user``)."""
    return actor_from_header(request.headers.get(ACTOR_HEADER))


Actor = Annotated[str | None, Depends(get_actor)]


def claimed_user(request: Request, claimed: str | None) -> str | None:
    """The user a request body names (a run's ``user``), unless the server authenticated the
    caller: then the authenticated user, whatever the body says."""
    state = request.scope.get("state") or {}
    authenticated = state.get(AUTHENTICATED_USER)
    return authenticated if isinstance(authenticated, str) else claimed


def service(factory: Callable[[Context], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency giving ``factory(context)``, built once per app (``Context.room``)."""

    async def dependency(request: Request) -> T:
        ctx: Context = request.app.state.opsloop
        return ctx.room(factory)

    dependency.__name__ = f"service_{getattr(factory, '__name__', 'factory')}"
    return dependency
