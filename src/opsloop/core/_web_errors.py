"""One JSON error shape for every failure the API can answer with.

``{"error": {"code": "...", "message": "...", "details": {...}}}``; see
``opsloop.errors`` for the codes. Unexpected exceptions answer 500 INTERNAL
without leaking internals; their traceback goes to the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsloop.core._web_json import JSONBody
from opsloop.errors import OpsloopError

log = logging.getLogger("opsloop.server")

_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONBody({"error": body}, status_code=status)


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpsloopError)
    async def _opsloop(_: Request, exc: OpsloopError) -> Response:
        return error_response(exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": _loc(e.get("loc", ())),
                "message": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()[:50]
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return error_response(
            400,
            "INVALID_ARGUMENT",
            f"invalid request: {first['field']}: {first['message']}",
            {"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(
            exc.status_code, "INTERNAL" if exc.status_code >= 500 else "INVALID_ARGUMENT"
        )
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint"
        return error_response(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "INTERNAL", "internal server error; see the server log")
