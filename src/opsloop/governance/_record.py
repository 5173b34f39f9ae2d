"""Recording one change in the audit trail: the state before, the body sent, the answer.

``Recorder`` runs a changing request through the app, keeping its body and
holding its answer back until the audit entry is written, so a client that
saw success can count on the entry. ``read_before`` asks the app, in
process, for ``GET`` of the same path before a ``PUT``, ``PATCH`` or
``DELETE`` changes it (where that route exists and answers JSON): the
"before" of the entry.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsloop.governance._audit import MAX_STORED_CHARS, AuditService, stored_json
from opsloop.governance.entities import Principal

__all__ = ["Recorder", "read_before"]

_DROPPED = frozenset({b"content-length", b"content-type", b"transfer-encoding"})


async def read_before(app: ASGIApp, scope: Scope) -> str | None:
    """``GET`` of the request's path as stored in the trail, or None (not found, not JSON)."""
    get_scope = {
        **scope,
        "method": "GET",
        "query_string": b"",
        "headers": [(k, v) for k, v in scope["headers"] if k not in _DROPPED],
    }
    status, json_body, body = 0, False, bytearray()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, json_body
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", ()):
                if k.lower() == b"content-type":
                    json_body = v.startswith(b"application/json")
        elif message["type"] == "http.response.body" and len(body) <= MAX_STORED_CHARS:
            body.extend(message.get("body", b""))

    await app(get_scope, receive, send)
    return stored_json(bytes(body)) if status == 200 and json_body else None


class Recorder:
    """Runs one changing request, holding its answer back until the audit entry is written."""

    def __init__(
        self,
        trail: AuditService,
        scope: Scope,
        actor: str,
        who: Principal | None,
        route: str,
        before: str | None,
    ) -> None:
        self.trail, self.scope, self.actor, self.who = trail, scope, actor, who
        self.route, self.before = route, before
        self.request = bytearray()
        self.held: list[Message] = []
        self.response = bytearray()
        self.status = 0
        self.passthrough = False

    async def run(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        async def receive_kept() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(self.request) <= MAX_STORED_CHARS:
                self.request += message.get("body", b"")
            return message

        async def send_held(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.passthrough = self.status >= 400  # a refused change: nothing to record
                if self.passthrough:
                    await send(message)
                else:
                    self.held.append(message)
                return
            if self.passthrough or message["type"] != "http.response.body":
                await send(message)
                return
            if len(self.response) <= MAX_STORED_CHARS:
                self.response += message.get("body", b"")
            if message.get("more_body", False):
                self.held.append(message)
                if len(self.response) > MAX_STORED_CHARS:  # too large to hold: let it flow
                    await self._flush(send)
                return
            await anyio.to_thread.run_sync(self._append)
            self.held.append(message)
            await self._flush(send)

        await app(self.scope, receive_kept, send_held)

    async def _flush(self, send: Send) -> None:
        held, self.held = self.held, []
        for m in held:
            await send(m)

    def _append(self) -> None:
        scope, who = self.scope, self.who
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        self.trail.append(
            actor=self.actor,
            token_id=who.token_id if who else None,
            role=who.role if who else None,
            client=f"{client[0]}" if client else "",
            method=scope["method"],
            path=scope["path"] + (f"?{query}" if query else ""),
            route=self.route,
            status=self.status,
            before=self.before,
            request=stored_json(bytes(self.request)),
            response=stored_json(bytes(self.response)),
        )
