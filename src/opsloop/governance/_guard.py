"""The one place every request of ``opsloop server`` is authenticated, checked and audited.

``install(app, context)`` (declared as the room's middleware, called by
``create_app`` once every route is mounted) adds ``Guard``, a pure ASGI
middleware, outermost. For each HTTP request it:

1. finds the route the app will run (the same first-match walk over the
   app's routes the router does) and its rule in ``_rules.RULES``;
2. with auth on, takes the ``Authorization: Bearer`` token (401 with
   ``TOKEN_REQUIRED``, ``TOKEN_INVALID``, ``TOKEN_EXPIRED`` or ``TOKEN_REVOKED``
   otherwise) or, without one, the UI's session cookie (``SESSION_INVALID``,
   ``SESSION_EXPIRED``; a change made with the cookie must carry the session's
   ``X-CSRF-Token``, else 403 ``CSRF_TOKEN_INVALID``), counting failures per
   address (``_throttle``); it refuses a route without a rule
   (``NO_PERMISSION_RULE``) or a role below the rule's (``PERMISSION_DENIED``),
   and replaces any
   ``X-Opsloop-User`` header with the token's user, so no caller can act as
   someone else;
3. with the audit on, appends every change that succeeded (a request to a
   route needing ``editor`` or more, answered below 400) to the hash-chained
   trail before the answer's last byte is sent: who, the route and path, the
   client's address, the state before (``_record.read_before``), the body sent
   and the answer (secrets masked).

The path matched is the one the router matches (the ``root_path`` taken off,
as Starlette does). With auth on the guard fails closed: a request no route
of the table matches never reaches the app; the guard answers 404 (or 405
when another method of the path exists) itself.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from opsloop.core import ACTOR_HEADER, AUTHENTICATED_USER, Context, resolve_user
from opsloop.core.web import error_response
from opsloop.errors import OpsloopError, PermissionDenied, Unauthenticated
from opsloop.governance._audit import AuditService
from opsloop.governance._backend import audit_service, token_service
from opsloop.governance._errors import CsrfTokenInvalid, NoPermissionRule, TokenRequired
from opsloop.governance._record import Recorder, read_before
from opsloop.governance._rules import required_role
from opsloop.governance._sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionService,
    csrf_matches,
    session_service,
)
from opsloop.governance._throttle import (
    FAILED_SIGN_INS_PER_MINUTE,
    SignInThrottle,
    sign_in_throttle,
)
from opsloop.governance._tokens import TokenService, role_at_least
from opsloop.governance.entities import Principal

__all__ = ["FAILED_SIGN_INS_PER_MINUTE", "Guard", "RouteTable", "install", "principal_of"]

log = logging.getLogger("opsloop.server")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_ACTOR = ACTOR_HEADER.lower().encode()
PRINCIPAL_KEY = "opsloop.principal"


@dataclass(frozen=True)
class _Route:
    template: str
    regex: re.Pattern[str]
    methods: frozenset[str] | None  # None: a mounted app (every method)


class RouteTable:
    """Every route of an app in routing order: ``(method, template)`` pairs and a matcher."""

    def __init__(self, app: FastAPI) -> None:
        self.routes: list[_Route] = []
        for r in iter_route_contexts(app.routes):
            regex = getattr(r, "path_regex", None)
            if r.path is None or regex is None:
                continue
            methods = frozenset(r.methods) if r.methods else None
            self.routes.append(_Route(r.path, regex, methods))

    def readable(self, template: str) -> bool:
        """Whether a GET of the same template answers the state a change replaces (JSON; not
        a file: templates with a ``:path`` parameter stream artifacts)."""
        if ":path}" in template:
            return False
        return any(r.template == template and r.methods and "GET" in r.methods for r in self.routes)

    def pairs(self) -> list[tuple[str, str]]:
        """``(method, template)`` of every route (``*`` for a mounted app)."""
        return [(m, r.template) for r in self.routes for m in sorted(r.methods or {"*"})]

    def match(self, method: str, path: str) -> str | None:
        """The template the router will run for ``method`` on ``path`` (None: 404 or 405)."""
        for r in self.routes:
            if (r.methods is None or method in r.methods) and r.regex.match(path):
                return r.template
        return None

    def known_path(self, path: str) -> bool:
        """Whether some route matches ``path`` with another method (a 405, not a 404)."""
        return any(r.regex.match(path) for r in self.routes)


def route_path(scope: Scope) -> str:
    """The path the router matches: ``scope["path"]`` without the ``root_path`` (as Starlette)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        if path == root:
            return ""
        if path[len(root)] == "/":
            return path[len(root) :]
    return path


def rule_for(method: str, template: str, path: str) -> str | None:
    """The least role for ``method`` on ``template`` (a mounted app's rule is under ``*``)."""
    return required_role(method, template, path) or required_role("*", template, path)


def principal_of(scope: Scope) -> Principal | None:
    """The principal the guard authenticated for this request (None with auth off)."""
    state = scope.get("state") or {}
    found = state.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def _bearer(scope: Scope) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == b"authorization":
            scheme, _, token = v.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def cookie_of(scope: Scope, name: str) -> str | None:
    """The value of cookie ``name`` the request sent (None: none). Parsed as browsers send
    cookies, leniently: another application's odd cookie on the same host hides nothing."""
    for k, v in scope.get("headers", ()):
        if k == b"cookie":
            found = cookie_parser(v.decode("latin-1")).get(name)
            if found:
                return found
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


class Guard:
    """Authentication, the permission rule and the audit trail, for every request."""

    def __init__(self, app: ASGIApp, *, context: Context, server: FastAPI) -> None:
        self.app = app
        self.context = context
        self.server = server
        self._table: RouteTable | None = None
        self._seen = -1
        settings = context.settings
        self.auth = settings.auth
        self.audit = settings.audit_on
        # The same services as the REST routes: a revocation there empties the token cache.
        self.tokens: TokenService = context.room(token_service)
        self.trail: AuditService = context.room(audit_service)
        self.sessions: SessionService = context.room(session_service)
        self.throttle: SignInThrottle = context.room(sign_in_throttle)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], route_path(scope)
        table = self.table()
        template = table.match(method, path)
        level = rule_for(method, template, path) if template is not None else None
        principal: Principal | None = None
        if self.auth and level != "public":
            try:
                principal = await self._authenticate(scope, method)
                if template is None:  # fail closed: the app never runs an unmatched request
                    status = 405 if table.known_path(path) else 404
                    code = "METHOD_NOT_ALLOWED" if status == 405 else "NOT_FOUND"
                    resp = error_response(status, code, f"no such endpoint: {method} {path}")
                    await resp(scope, receive, send)
                    return
                self._check(principal, method, template, level)
            except OpsloopError as exc:
                resp = error_response(exc.http_status, exc.code, exc.message, exc.details)
                await resp(scope, receive, send)
                return
            headers = [(k, v) for k, v in scope["headers"] if k != _ACTOR]
            headers.append((_ACTOR, principal.user.encode()))
            scope = {**scope, "headers": headers}
            state = scope.setdefault("state", {})
            state[PRINCIPAL_KEY], state[AUTHENTICATED_USER] = principal, principal.user
        elif self.auth:  # a public route: nobody is named by a header there either
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != _ACTOR]}
        if (
            not self.audit
            or method in _SAFE
            or level in ("public", "viewer")
            or (template is None and not self.auth)
        ):
            await self.app(scope, receive, send)
            return
        actor = (
            principal.user
            if principal
            else resolve_user(self.context.settings, _header(scope, _ACTOR))
        )
        before = None
        if method in ("PUT", "PATCH", "DELETE") and template and self.table().readable(template):
            before = await read_before(self.app, scope)
        recorder = Recorder(self.trail, scope, actor, principal, template or path, before)
        await recorder.run(self.app, receive, send)

    def table(self) -> RouteTable:
        """The app's routes, walked again when a route was added after the app was built."""
        count = len(self.server.router.routes)
        if self._table is None or count != self._seen:
            self._table, self._seen = RouteTable(self.server), count
        return self._table

    async def _authenticate(self, scope: Scope, method: str) -> Principal:
        secret = _bearer(scope)
        session = None if secret else cookie_of(scope, SESSION_COOKIE)
        if not secret and not session:
            raise TokenRequired(
                "this server needs an API token: send `Authorization: Bearer ols_...` "
                "(set OPSLOOP_TOKEN for the SDK and CLI; `opsloop tokens create` makes one), "
                "or sign in to the UI at /auth/login"
            )
        address = client_address(scope)
        self.throttle.check(address)
        if session:
            found = self.sessions.cached(session)
            if found is None:
                try:
                    found = await anyio.to_thread.run_sync(self.sessions.authenticate, session)
                except Unauthenticated:
                    self.throttle.failed(address)
                    raise
            # The cookie goes with every request the browser makes, whoever asked it to: a
            # change must prove it came from our page by the token only our page can read.
            if method not in _SAFE and not csrf_matches(
                session, _header(scope, CSRF_HEADER.encode())
            ):
                raise CsrfTokenInvalid(
                    f"a change made with the session cookie needs the `X-CSRF-Token` header "
                    f"(the {'wrong' if _header(scope, CSRF_HEADER.encode()) else 'missing'} "
                    "token; the UI sends it from the opsloop_csrf cookie)"
                )
            return found
        assert secret is not None
        known = self.tokens.cached(secret)  # no thread hop for a token seen seconds ago
        if known is not None:
            return known
        try:
            principal: Principal = await anyio.to_thread.run_sync(self.tokens.authenticate, secret)
        except Unauthenticated:
            self.throttle.failed(address)
            raise
        return principal

    @staticmethod
    def _check(principal: Principal, method: str, template: str, level: str | None) -> None:
        if level is None:
            raise NoPermissionRule(
                f"{method} {template} has no permission rule, so it is refused to everyone",
                details={"method": method, "route": template},
            )
        if level != "public" and not role_at_least(principal.role, level):
            raise PermissionDenied(
                f"{method} {template} needs the {level} role; this token is a {principal.role}",
                details={"required": level, "role": principal.role},
            )


def install(app: FastAPI, context: Context) -> None:
    """Add the guard to the app when auth or the audit trail is on (both off by default)."""
    settings = context.settings
    if settings.auth or settings.audit_on:
        app.add_middleware(Guard, context=context, server=app)
    if settings.auth and not context.room(token_service).list(active_only=True):
        log.warning(
            "authentication is on and no token is active: every call will be refused; make "
            "one on the server's store with `opsloop tokens create USER --role admin`"
        )
