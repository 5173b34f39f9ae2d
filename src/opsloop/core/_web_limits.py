"""A request-size limit enforced while the body streams in, not after it is buffered."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsloop.core._web_errors import error_response


class BodyLimitMiddleware:
    """Answer 413 PAYLOAD_TOO_LARGE for bodies over ``max_bytes``.

    Artifact and blob uploads (``PUT .../artifacts/...``, ``PUT .../blobs/...``)
    get ``max_artifact_bytes`` instead, and are streamed to disk by their endpoint.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_artifact_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_artifact_bytes = max_artifact_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if scope["method"] == "PUT" and (
            "/artifacts/" in scope["path"] or "/blobs/" in scope["path"]
        ):
            limit = self.max_artifact_bytes
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        if cl is not None:
            try:
                too_big = int(cl) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(scope, receive, send, limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send, limit)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        resp = error_response(
            413, "PAYLOAD_TOO_LARGE", f"request body is larger than the limit of {limit} bytes"
        )
        await resp(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing re-raises it as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")
