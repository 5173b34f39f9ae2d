"""Signing in to the web UI: the login page, sessions, sign-out, OpenID Connect.

Routes at the server's root (not under ``/api/v1``: they set cookies for the
browser, and are not part of the API document):

- ``GET /auth/login[?next=/ui/...]``: the sign-in page (an API token, and a
  "single sign-on" button when OIDC is set up);
- ``POST /auth/session`` ``{"token": "ols_..."}``: a session for that token's
  user and role; sets the ``opsloop_session`` cookie (HttpOnly, SameSite=Strict,
  Secure over https) and ``opsloop_csrf`` (readable by the page's script);
- ``POST /auth/logout``: ends the session and clears both cookies;
- ``GET /auth/oidc/login[?next=]``: off to the OpenID provider (``_oidc``);
- ``GET /auth/oidc/callback``: back from it: a session, then on to ``next``.

Failed sign-ins count towards the same per-address limit as bad API tokens
(``SIGN_IN_RATE_LIMITED``).
"""

from __future__ import annotations

import json
import math
import time
from html import escape
from typing import Annotated
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field

from opsloop.core import Context
from opsloop.core.web import Ctx, StrictBody, ok, service
from opsloop.errors import Unauthenticated
from opsloop.governance._backend import audit_service, token_service
from opsloop.governance._errors import AuthNotEnabled, OidcSignInFailed
from opsloop.governance._guard import client_address, cookie_of, principal_of
from opsloop.governance._oidc import OidcSignIn, oidc_sign_in
from opsloop.governance._sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionService,
    csrf_token,
    session_service,
)
from opsloop.governance._throttle import SignInThrottle, sign_in_throttle
from opsloop.governance._tokens import TokenService
from opsloop.governance.entities import Principal

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

STATE_COOKIE = "opsloop_oidc_state"
CALLBACK = "/auth/oidc/callback"

Sessions = Annotated[SessionService, Depends(service(session_service))]
Tokens = Annotated[TokenService, Depends(service(token_service))]
Throttle = Annotated[SignInThrottle, Depends(service(sign_in_throttle))]
Oidc = Annotated[OidcSignIn, Depends(service(oidc_sign_in))]
Next = Annotated[str, Query(max_length=512)]


def safe_next(path: str) -> str:
    """Where to go after signing in: a path of the UI only (never another site)."""
    if path.startswith("/ui") and not path.startswith("//") and "\\" not in path:
        return path
    return "/ui/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_session(response: Response, request: Request, secret: str, expires_at: int) -> None:
    max_age = max(1, math.ceil(expires_at / 1000 - time.time()))
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    # Not HttpOnly: the page's script reads it and sends it back as X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token(secret),
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="strict",
        secure=secure,
    )


def _record(
    ctx: Context, request: Request, principal: Principal, status: int, what: dict[str, str]
) -> None:
    """A sign-in or sign-out in the audit trail (when it is on): who, how, from where; never
    a secret."""
    if not ctx.settings.audit_on:
        return
    ctx.room(audit_service).append(
        actor=principal.user,
        method=request.method,
        path=request.url.path,
        route=request.url.path,
        status=status,
        token_id=principal.token_id,
        role=principal.role,
        client=client_address(request.scope),
        response=json.dumps(what),
    )


def _need_auth(ctx: Context) -> None:
    if not ctx.settings.auth:
        raise AuthNotEnabled(
            "this server runs without authentication (no --auth): there is nothing to sign in to"
        )


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta http-equiv="Content-Security-Policy"
        content="default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'">
  <title>Sign in · opsloop</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/ui/static/app.css">
</head>
<body class="login-page">
  <main class="login-box">
    <h1><span class="brand-mark">◎</span> opsloop</h1>
    <p class="muted">{intro}</p>
    {sso}
    <form id="token-form" data-next="{next}">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off"
             placeholder="ols_..." required>
      <button type="submit" class="btn btn-primary">Sign in</button>
      <p id="login-error" class="error" role="alert" hidden></p>
    </form>
    <p class="muted small">Make a token with <code>opsloop tokens create USER --role viewer</code>.</p>
  </main>
  <script type="module" src="/ui/static/js/login.js"></script>
</body>
</html>
"""


@router.get("/auth/login")
def login_page(ctx: Ctx, oidc: Oidc, next: Next = "/ui/") -> Response:
    target = safe_next(next)
    if not ctx.settings.auth:
        intro = "This server runs without authentication: open the UI directly."
    else:
        intro = "Sign in with an API token" + (" or single sign-on." if oidc.configured else ".")
    sso = ""
    if ctx.settings.auth and oidc.configured:
        href = "/auth/oidc/login?" + urlencode({"next": target})
        sso = (
            f'<p><a id="sso" class="btn" href="{escape(href)}">Sign in with single sign-on</a></p>'
        )
    page = _PAGE.format(intro=escape(intro), sso=sso, next=escape(target))
    # Never framed by another site (clickjacking the sign-in), never cached.
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
    }
    return HTMLResponse(page, headers=headers)


class SignIn(StrictBody):
    token: str = Field(min_length=1, max_length=256)


@router.post("/auth/session")
async def sign_in(
    body: SignIn,
    request: Request,
    ctx: Ctx,
    tokens: Tokens,
    sessions: Sessions,
    throttle: Throttle,
) -> Response:
    """Sign in with an API token: a session for its user and role, in a cookie."""
    _need_auth(ctx)
    address = client_address(request.scope)
    throttle.check(address)
    secret = body.token.strip()
    try:
        principal = await anyio.to_thread.run_sync(tokens.authenticate, secret)
    except Unauthenticated:
        throttle.failed(address)
        raise
    token = await anyio.to_thread.run_sync(tokens.get, principal.token_id or "")
    cookie, expires = await anyio.to_thread.run_sync(
        lambda: sessions.start(
            principal, method="token", client=address, not_after=token.expires_at
        )
    )
    what = {"signed_in": "token", "role": principal.role}
    await anyio.to_thread.run_sync(lambda: _record(ctx, request, principal, 200, what))
    response = ok({"user": principal.user, "role": principal.role, "expires_at": expires})
    _set_session(response, request, cookie, expires)
    return response


@router.post("/auth/logout", status_code=204)
async def sign_out(request: Request, ctx: Ctx, sessions: Sessions) -> Response:
    """End this browser's session (the guard has checked its CSRF token) and clear its cookies."""
    cookie = cookie_of(request.scope, SESSION_COOKIE)
    who = principal_of(request.scope)
    ended = False
    if cookie:
        ended = await anyio.to_thread.run_sync(sessions.end, cookie)
    if ended and who is not None:
        what = {"signed_out": who.session_id or ""}
        await anyio.to_thread.run_sync(lambda: _record(ctx, request, who, 204, what))
    response = Response(status_code=204)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=_secure(request), samesite="strict")
    return response


def _redirect_uri(request: Request, ctx: Context) -> str:
    configured = ctx.settings.oidc_redirect_url
    return configured or str(request.base_url).rstrip("/") + CALLBACK


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, ctx: Ctx, oidc: Oidc, next: Next = "/ui/") -> Response:
    """Off to the OpenID provider, with a state bound to this browser by a cookie."""
    _need_auth(ctx)
    url, state = await anyio.to_thread.run_sync(
        oidc.begin, _redirect_uri(request, ctx), safe_next(next)
    )
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    # SameSite=Lax: the provider sends the browser back with a cross-site top-level GET.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=600,
        path=CALLBACK,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request,
    ctx: Ctx,
    oidc: Oidc,
    sessions: Sessions,
    throttle: Throttle,
    state: Annotated[str | None, Query(max_length=512)] = None,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=512)] = None,
    iss: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Back from the provider: check everything, start a session, go on to the UI."""
    _need_auth(ctx)
    address = client_address(request.scope)
    throttle.check(address)
    try:
        principal, subject, next_path = await anyio.to_thread.run_sync(
            lambda: oidc.finish(
                state=state,
                browser_state=cookie_of(request.scope, STATE_COOKIE),
                code=code,
                error=error,
                issuer=iss,
                redirect_uri=_redirect_uri(request, ctx),
            )
        )
    except OidcSignInFailed:
        throttle.failed(address)
        raise
    cookie, expires = await anyio.to_thread.run_sync(
        lambda: sessions.start(principal, method="oidc", client=address, subject=subject)
    )
    what = {"signed_in": "oidc", "subject": subject, "role": principal.role}
    await anyio.to_thread.run_sync(lambda: _record(ctx, request, principal, 303, what))
    response = RedirectResponse(safe_next(next_path), status_code=303)
    _set_session(response, request, cookie, expires)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK, secure=_secure(request), samesite="lax")
    return response
