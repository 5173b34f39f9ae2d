"""Error bodies of a model server: opsloop's shape everywhere, readable by OpenAI clients too.

Every error answers opsloop's ``{"error": {"code", "message", "details"}}``.
On the OpenAI-compatible routes the same object also carries ``type`` and
``param``, the fields OpenAI's clients read, so ``openai.BadRequestError``
shows the message and ``e.code`` is opsloop's stable code.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from opsloop.core.web import JSONBody, install_error_handlers

OPENAI_PATHS = ("/v1/chat/", "/v1/completions", "/v1/embeddings", "/v1/models")

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_type(status: int) -> str:
    return _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def _is_openai(path: str) -> bool:
    return path.startswith(OPENAI_PATHS)


def install_serving_error_handlers(app: FastAPI) -> None:
    """opsloop's handlers, with the OpenAI fields added on OpenAI routes."""
    install_error_handlers(app)
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _with_openai_fields(handler)


def _with_openai_fields(handler: Any) -> Any:
    async def wrapped(request: Request, exc: Exception) -> Response:
        resp: Response = await handler(request, exc)
        if not _is_openai(request.url.path):
            return resp
        try:
            body = orjson.loads(bytes(resp.body))
        except orjson.JSONDecodeError:
            return resp
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return resp
        err.setdefault("type", openai_type(resp.status_code))
        err.setdefault("param", (err.get("details") or {}).get("param"))
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
        return JSONBody(body, status_code=resp.status_code, headers=headers)

    return wrapped
