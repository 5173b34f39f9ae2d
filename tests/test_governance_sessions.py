"""UI sessions over real HTTP: sign in with a token, the cookie, CSRF, sign out, expiry.

A live server (uvicorn thread, auth on, SQLite) and httpx, as a browser would
talk to it: ``POST /auth/session`` sets the ``opsloop_session`` cookie (HttpOnly,
SameSite=Strict) and ``opsloop_csrf``; a change made with the cookie must send
``X-CSRF-Token``; the database keeps only the session secret's hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from opsloop import Client
from opsloop.governance._sessions import csrf_token
from opsloop.governance._throttle import FAILED_SIGN_INS_PER_MINUTE
from opsloop.server import create_app
from opsloop.settings import Settings
from tests.conftest import LiveServer, fresh_pg_database, live_server


class _Env:
    def __init__(self, srv: LiveServer, secrets: dict[str, str], db_url: str) -> None:
        self.srv, self.secrets, self.db_url = srv, secrets, db_url

    @contextlib.contextmanager
    def sign_in(self, role: str) -> Iterator[httpx.Client]:
        """A browser-like client signed in with the ``role`` token (cookies kept)."""
        with httpx.Client(base_url=self.srv.url, timeout=10) as http:
            r = http.post("/auth/session", json={"token": self.secrets[role]})
            assert r.status_code == 200, r.text
            yield http


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Env]:
    home = tmp_path_factory.mktemp("sessions")
    with fresh_pg_database() if request.param == "postgres" else contextlib.nullcontext() as pg:
        settings = Settings(home=home, auth=True, database_url=pg)
        with Client(settings=settings) as c:
            secrets = {
                r: c.governance.create_token(f"u-{r}", r).secret for r in ("viewer", "editor")
            }
            secrets["admin"] = c.governance.create_token("root", "admin").secret
        with live_server(settings) as srv:
            yield _Env(srv, secrets, settings.resolved_database_url)


def _set_cookies(r: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def test_signing_in_sets_a_hardened_cookie_and_stores_only_its_hash(env: _Env) -> None:
    r = httpx.post(f"{env.srv.url}/auth/session", json={"token": env.secrets["editor"]})
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "u-editor" and r.json()["role"] == "editor"
    cookies = _set_cookies(r)
    session = cookies["opsloop_session"].lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    assert "secure" not in session  # plain http here; https below
    csrf = cookies["opsloop_csrf"].lower()
    assert "httponly" not in csrf and "samesite=strict" in csrf
    secret = r.cookies["opsloop_session"]
    assert r.cookies["opsloop_csrf"] == csrf_token(secret)
    engine = sa.create_engine(env.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM ui_sessions")).all()
    finally:
        engine.dispose()
    stored = {(r.secret_hash, r.user, r.method) for r in rows}
    assert (hashlib.sha256(secret.encode()).hexdigest(), "u-editor", "token") in stored
    assert secret not in repr(rows) and r.cookies["opsloop_csrf"] not in repr(rows)
    # Found among other applications' cookies on the same host, odd ones included.
    odd = {"Cookie": f'grafana="{{\\"a\\": 1}}"; bad cookie=1 2; opsloop_session={secret}; z=1'}
    me = httpx.get(f"{env.srv.url}/api/v1/whoami", headers=odd)
    assert me.status_code == 200 and me.json()["user"] == "u-editor"


def test_changes_with_the_cookie_need_the_csrf_token(env: _Env) -> None:
    with env.sign_in("editor") as http:
        csrf = http.cookies["opsloop_csrf"]
        # Reads need no CSRF token; the session names the user.
        me = http.get("/api/v1/whoami").json()
        assert me["user"] == "u-editor" and me["session_id"].startswith("ses_")
        assert http.get("/api/v1/experiments").status_code == 200
        # A change without the header (what a forged cross-site form sends), or a wrong one.
        for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": ""}):
            r = http.post("/api/v1/experiments", json={"name": "forged"}, headers=headers)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "CSRF_TOKEN_INVALID"
        r = http.post(
            "/api/v1/experiments",
            content=b"name=forged",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.json()["error"]["code"] == "CSRF_TOKEN_INVALID"
        assert "forged" not in http.get("/api/v1/experiments").text  # nothing was made
        # With it, the change goes through, as the session's user whatever a header claims.
        r = http.post(
            "/api/v1/experiments",
            json={"name": "by-session"},
            headers={"X-CSRF-Token": csrf, "X-Opsloop-User": "mallory"},
        )
        assert r.status_code == 201, r.text
        run = http.post(
            "/api/v1/runs",
            json={"experiment_id": r.json()["id"]},
            headers={"X-CSRF-Token": csrf},
        ).json()
        assert run["user"] == "u-editor"
        # Another session's CSRF token is no good for this one.
        with env.sign_in("editor") as other:
            theirs = other.cookies["opsloop_csrf"]
        r = http.post("/api/v1/experiments", json={"name": "x"}, headers={"X-CSRF-Token": theirs})
        assert r.status_code == 403
        # A bearer token needs no CSRF token (no browser sends one by itself).
        bearer = {"Authorization": f"Bearer {env.secrets['editor']}"}
        r = httpx.post(f"{env.srv.url}/api/v1/experiments", json={"name": "b"}, headers=bearer)
        assert r.status_code == 201


def test_a_viewer_session_reads_but_cannot_change(env: _Env) -> None:
    with env.sign_in("viewer") as http:
        csrf = {"X-CSRF-Token": http.cookies["opsloop_csrf"]}
        assert http.get("/api/v1/experiments").status_code == 200
        r = http.post("/api/v1/experiments", json={"name": "v"}, headers=csrf)
        assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
        assert http.get("/api/v1/tokens").status_code == 403


def test_signing_out_ends_the_session(env: _Env) -> None:
    with env.sign_in("viewer") as http:
        secret = http.cookies["opsloop_session"]
        r = http.post("/auth/logout")  # a forged sign-out is refused too
        assert r.status_code == 403 and r.json()["error"]["code"] == "CSRF_TOKEN_INVALID"
        r = http.post("/auth/logout", headers={"X-CSRF-Token": http.cookies["opsloop_csrf"]})
        assert r.status_code == 204
        cleared = _set_cookies(r)
        assert 'opsloop_session=""' in cleared["opsloop_session"]
        assert "max-age=0" in cleared["opsloop_session"].lower()
        # The old cookie is dead even if a browser kept it.
        r = httpx.get(f"{env.srv.url}/api/v1/whoami", cookies={"opsloop_session": secret})
        assert r.status_code == 401 and r.json()["error"]["code"] == "SESSION_INVALID"
    # Signing in and out are in the audit trail, with no secret in it.
    admin = {"Authorization": f"Bearer {env.secrets['admin']}"}
    trail = httpx.get(f"{env.srv.url}/api/v1/audit", params={"path": "/auth/"}, headers=admin)
    entries = trail.json()["entries"]
    outs = [e for e in entries if e["path"] == "/auth/logout"]
    assert outs and outs[0]["actor"] == "u-viewer" and outs[0]["status"] == 204
    ins = [e for e in entries if e["path"] == "/auth/session" and e["actor"] == "u-viewer"]
    assert ins and ins[0]["role"] == "viewer" and ins[0]["token_id"].startswith("tok_")
    assert secret not in trail.text and env.secrets["viewer"] not in trail.text


def test_revoking_the_token_ends_its_sessions(env: _Env, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {env.secrets['admin']}"}
    made = httpx.post(
        f"{env.srv.url}/api/v1/tokens", json={"user": "temp", "role": "viewer"}, headers=admin
    ).json()
    with httpx.Client(base_url=env.srv.url) as http:
        assert http.post("/auth/session", json={"token": made["secret"]}).status_code == 200
        assert http.get("/api/v1/whoami").json()["user"] == "temp"
        r = httpx.post(f"{env.srv.url}/api/v1/tokens/{made['token']['id']}/revoke", headers=admin)
        assert r.status_code == 200
        r = http.get("/api/v1/whoami")
        assert r.status_code == 401 and r.json()["error"]["code"] == "SESSION_EXPIRED"
        assert "revoked" in r.json()["error"]["message"]
        # And a revoked token cannot start a session.
        r = http.post("/auth/session", json={"token": made["secret"]})
        assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REVOKED"


def test_sessions_expire_after_their_lifetime_and_when_idle(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, auth=True, session_ttl_s=2.0, session_idle_s=1.0)
    with Client(settings=settings) as c:
        secret = c.governance.create_token("vera", "viewer").secret
    with live_server(settings) as srv:
        # The cookie sent by hand: a browser would drop it at its Max-Age anyway; here the
        # server's own expiry is what is checked.
        sessions = []
        for _ in range(2):
            r = httpx.post(f"{srv.url}/auth/session", json={"token": secret})
            sessions.append({"Cookie": f"opsloop_session={r.cookies['opsloop_session']}"})
        a, b = sessions
        whoami = f"{srv.url}/api/v1/whoami"
        for _ in range(3):  # a is in use, never idle for a second
            time.sleep(0.5)
            assert httpx.get(whoami, headers=a).status_code == 200
        r = httpx.get(whoami, headers=b)  # b sat idle for 1.5 s
        assert r.status_code == 401 and r.json()["error"]["code"] == "SESSION_EXPIRED"
        assert "idle" in r.json()["error"]["message"]
        time.sleep(0.6)
        r = httpx.get(whoami, headers=a)  # a is over 2 s old now
        assert r.status_code == 401 and r.json()["error"]["code"] == "SESSION_EXPIRED"
        assert "has expired" in r.json()["error"]["message"]


def test_sign_in_errors_and_the_secure_flag_over_https(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, auth=True)
    with Client(settings=settings) as c:
        secret = c.governance.create_token("vera", "viewer").secret
    with TestClient(create_app(settings), base_url="https://opsloop.test") as tc:
        r = tc.post("/auth/session", json={"token": secret})
        assert r.status_code == 200
        for name, header in _set_cookies(r).items():  # type: ignore[arg-type]
            assert "secure" in header.lower(), name
        r = tc.post("/auth/session", json={"token": ""})
        assert r.status_code == 400
        r = tc.post("/auth/session", content=b"token=x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 400
        page = tc.get("/auth/login", params={"next": "https://evil.example/"})
        assert page.status_code == 200 and 'data-next="/ui/"' in page.text  # no open redirect
        assert (
            page.headers["x-frame-options"] == "DENY"
            and page.headers["cache-control"] == "no-store"
        )
    with TestClient(create_app(Settings(home=tmp_path / "open"))) as tc:
        r = tc.post("/auth/session", json={"token": secret})
        assert r.status_code == 409 and r.json()["error"]["code"] == "AUTH_NOT_ENABLED"


def test_guessing_at_the_sign_in_is_throttled(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, auth=True)
    with Client(settings=settings) as c:
        secret = c.governance.create_token("vera", "viewer").secret
    with live_server(settings) as srv, httpx.Client(base_url=srv.url) as http:
        for i in range(FAILED_SIGN_INS_PER_MINUTE):
            r = http.post("/auth/session", json={"token": f"ols_guess{i}"})
            assert r.status_code == 401
        r = http.post("/auth/session", json={"token": secret})  # even the right one waits now
        assert r.status_code == 429 and r.json()["error"]["code"] == "SIGN_IN_RATE_LIMITED"
        # Bad session cookies count the same way, and the API is throttled for the address too.
        r = http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 429
