"""OpenID Connect sign-in against a real provider started here.

The provider is the OpenID-certified ``oidc-provider`` (npm), run by the
machine's Node.js from ``tests/oidc/provider.mjs`` (``scripts/setup.sh dev``
installs it with ``npm ci --prefix tests/oidc``); it signs ID tokens with an RSA
key made here, and requires PKCE. Without Node.js or the package the tests
are skipped, except under CI=true where they fail.

A live opsloop server (auth on) is its client. httpx plays the browser: off to
the provider, through its login form, back to the callback with the code,
and on into the UI with a session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest

from opsloop import Client
from opsloop.errors import OpsloopError
from opsloop.governance._oidc import OidcSignIn, map_user
from opsloop.settings import Settings
from tests.conftest import IN_CI, LiveServer, free_port

HERE = Path(__file__).parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "opsloop-test", "s3cret-of-the-client"
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "email_verified": True},
    "bob": {"email": "bob@team.example.org", "email_verified": True},
    "carol": {"email": "carol@elsewhere.example", "email_verified": True},
    "dave": {"email": "alice@example.com", "email_verified": False},  # claims alice's address
}
ROLES = {"alice@example.com": "admin", "@team.example.org": "viewer", "dave": "ops-dave:editor"}


def _provider_ready() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: npm ci --prefix tests/oidc"
    return None


@dataclass
class Env:
    issuer: str
    server: LiveServer
    key: Any  # the provider's private signing key (joserfc RSAKey)
    settings: Settings


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    why = _provider_ready()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "test-1", "alg": "RS256", "use": "sig"})
    issuer = f"http://127.0.0.1:{free_port()}"
    home = tmp_path_factory.mktemp("oidc")
    settings = Settings(
        home=home,
        auth=True,
        oidc_issuer=issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_roles=ROLES,
    )
    server = LiveServer(settings)  # its port is known before it starts: the redirect URI
    config = {
        "port": int(issuer.rsplit(":", 1)[1]),
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{server.url}/auth/oidc/callback"],
            }
        ],
        "jwks": {"keys": [key.as_dict(private=True)]},
        "accounts": ACCOUNTS,
    }
    proc = subprocess.Popen(
        ["node", str(HERE / "provider.mjs")],
        env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in proc.stdout:  # warnings first, then READY
            if line.startswith("READY "):
                assert line.split()[1] == issuer
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the OIDC provider did not start")
        else:
            raise RuntimeError(f"the OIDC provider exited: {proc.wait()}")
        server.start()
        try:
            yield Env(issuer, server, key, settings)
        finally:
            server.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _sign_in(env: Env, login: str, http: httpx.Client) -> httpx.Response:
    """Start at opsloop, sign in at the provider's form, follow the redirects back."""
    r = http.get(f"{env.server.url}/auth/oidc/login", params={"next": "/ui/#/experiments"})
    assert r.status_code == 200 and r.url.host == "127.0.0.1", r.text[:300]
    assert str(r.url).startswith(env.issuer + "/interaction/"), r.url  # the provider's form
    action = re.search(r'<form[^>]*action="([^"]+)"', r.text)
    assert action, r.text[:500]
    return http.post(
        urljoin(str(r.url), action.group(1)),
        data={"prompt": "login", "login": login, "password": "anything"},
    )


def test_the_authorization_request_uses_pkce_state_and_nonce(env: Env) -> None:
    r = httpx.get(f"{env.server.url}/auth/oidc/login")
    assert r.status_code == 302
    url = urlparse(r.headers["location"])
    assert f"{url.scheme}://{url.netloc}" == env.issuer
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 43 and len(q["nonce"]) >= 43
    assert q["redirect_uri"] == f"{env.server.url}/auth/oidc/callback"
    cookie = r.headers["set-cookie"].lower()
    assert "opsloop_oidc_state=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_a_mapped_user_signs_in_and_gets_a_session(env: Env) -> None:
    with httpx.Client(follow_redirects=True, timeout=20) as http:
        r = _sign_in(env, "alice", http)
        assert r.status_code == 200 and r.url.path == "/ui/", (r.url, r.text[:300])
        assert r.url.fragment == "/experiments"  # back where the sign-in started
        me = http.get(f"{env.server.url}/api/v1/whoami").json()
        assert me["user"] == "alice@example.com" and me["role"] == "admin"
        assert me["session_id"].startswith("ses_")
        csrf = {"X-CSRF-Token": http.cookies["opsloop_csrf"]}
        r = http.post(f"{env.server.url}/api/v1/experiments", json={"name": "sso"}, headers=csrf)
        assert r.status_code == 201
        r = http.post(f"{env.server.url}/api/v1/experiments", json={"name": "no-csrf"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "CSRF_TOKEN_INVALID"
    with Client(settings=env.settings) as c:  # the change was recorded as the person
        entries = c.governance.audit(path="/api/v1/experiments")
        signed_in = c.governance.audit(path="/auth/oidc/callback")
    assert [e.actor for e in entries if e.status == 201] == ["alice@example.com"]
    assert signed_in[0].actor == "alice@example.com" and signed_in[0].role == "admin"
    assert signed_in[0].response == {"signed_in": "oidc", "subject": "alice", "role": "admin"}


def test_mapping_by_domain_by_subject_and_refusals(env: Env) -> None:
    with httpx.Client(follow_redirects=True, timeout=20) as http:
        _sign_in(env, "bob", http)
        me = http.get(f"{env.server.url}/api/v1/whoami").json()
        assert (me["user"], me["role"]) == ("bob@team.example.org", "viewer")
    # dave claims alice's address, unverified: the email is ignored, his subject maps him.
    with httpx.Client(follow_redirects=True, timeout=20) as http:
        _sign_in(env, "dave", http)
        me = http.get(f"{env.server.url}/api/v1/whoami").json()
        assert (me["user"], me["role"]) == ("ops-dave", "editor")
    # carol is known to the provider, not to this server: refused, no session.
    with httpx.Client(follow_redirects=True, timeout=20) as http:
        r = _sign_in(env, "carol", http)
        assert r.status_code == 403 and r.json()["error"]["code"] == "OIDC_USER_REFUSED"
        assert "opsloop_session" not in http.cookies
        assert http.get(f"{env.server.url}/api/v1/whoami").status_code == 401


def test_a_callback_replayed_forged_or_refused_starts_no_session(env: Env) -> None:
    callbacks: list[str] = []

    def keep(request: httpx.Request) -> None:
        if request.url.path == "/auth/oidc/callback":
            callbacks.append(str(request.url))

    with httpx.Client(follow_redirects=True, timeout=20, event_hooks={"request": [keep]}) as http:
        assert _sign_in(env, "alice", http).status_code == 200
        state_cookie = {
            "Cookie": f"opsloop_oidc_state={parse_qs(urlparse(callbacks[0]).query)['state'][0]}"
        }
    # The same code and state again (a stolen callback URL), even with the state cookie.
    r = httpx.get(callbacks[0], headers=state_cookie)
    assert r.status_code == 401 and r.json()["error"]["code"] == "OIDC_SIGN_IN_FAILED"
    assert "opsloop_session" not in r.cookies
    # A callback whose state is not this browser's (login CSRF): refused before any lookup.
    with httpx.Client(timeout=20) as http:
        start = http.get(f"{env.server.url}/auth/oidc/login")
        state = parse_qs(urlparse(start.headers["location"]).query)["state"][0]
        r = httpx.get(f"{env.server.url}/auth/oidc/callback", params={"state": state, "code": "x"})
        assert r.status_code == 401 and "does not match" in r.json()["error"]["message"]
        # The provider said no (the user cancelled): refused, with its error named.
        r = http.get(
            f"{env.server.url}/auth/oidc/callback",
            params={"state": state, "error": "access_denied"},
        )
        assert r.status_code == 401 and r.json()["error"]["details"]["error"] == "access_denied"
        # A made-up code with a good state: the provider does not redeem it.
        start = http.get(f"{env.server.url}/auth/oidc/login")
        state = parse_qs(urlparse(start.headers["location"]).query)["state"][0]
        r = http.get(f"{env.server.url}/auth/oidc/callback", params={"state": state, "code": "x"})
        assert r.status_code == 401 and "did not redeem" in r.json()["error"]["message"]


def _id_token(key: Any, **claims: Any) -> str:
    from joserfc import jwt

    now = int(time.time())
    body = {"iat": now, "exp": now + 300, "sub": "alice", "aud": CLIENT_ID, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


def test_id_tokens_are_checked_against_the_providers_keys(env: Env) -> None:
    from joserfc.jwk import RSAKey

    rp = OidcSignIn(env.settings, Client(settings=env.settings).context.database)
    good = {"iss": env.issuer, "nonce": "n-1"}
    assert rp.verify_id_token(_id_token(env.key, **good), nonce="n-1")["sub"] == "alice"
    impostor = RSAKey.generate_key(2048, parameters={"kid": env.key.kid})
    stranger = RSAKey.generate_key(2048, parameters={"kid": "unknown-kid"})
    now = int(time.time())
    bad = {
        "another key, same kid": _id_token(impostor, **good),
        "a key the provider never published": _id_token(stranger, **good),
        "another nonce": _id_token(env.key, iss=env.issuer, nonce="n-2"),
        "another audience": _id_token(env.key, **good, aud="someone-else"),
        "another issuer": _id_token(env.key, iss="http://evil.example", nonce="n-1"),
        "expired": _id_token(env.key, **good, exp=now - 600),
        "no nonce": _id_token(env.key, iss=env.issuer),
        "several audiences, azp not us": _id_token(env.key, **good, aud=[CLIENT_ID, "x"], azp="x"),
    }
    header, payload, _ = _id_token(env.key, **good).split(".")
    bad["alg none"] = f"{header}.{payload}."
    for why, token in bad.items():
        with pytest.raises(OpsloopError) as refused:
            rp.verify_id_token(token, nonce="n-1")
        assert refused.value.code == "OIDC_SIGN_IN_FAILED", why


def test_the_role_mapping_and_its_default(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, oidc_roles={"Alice@Example.com": "admin", "@corp.io": "editor"})
    verified = {"email_verified": True}
    assert map_user(s, {"sub": "1", "email": "alice@example.com", **verified}) == (
        "alice@example.com",
        "admin",
    )
    assert map_user(s, {"sub": "2", "email": "x@corp.io", **verified}) == ("x@corp.io", "editor")
    with pytest.raises(OpsloopError) as refused:
        map_user(s, {"sub": "3", "email": "x@corp.io"})  # unverified: not by email
    assert refused.value.code == "OIDC_USER_REFUSED"
    d = s.model_copy(update={"oidc_default_role": "viewer"})
    assert map_user(d, {"sub": "3"}) == ("oidc:3", "viewer")
    with pytest.raises(ValueError, match="oidc_roles"):
        Settings(home=tmp_path, oidc_roles={"a@b.c": "superuser"})


def test_without_oidc_settings_the_sign_in_says_so(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from opsloop.server import create_app

    with TestClient(create_app(Settings(home=tmp_path, auth=True))) as tc:
        r = tc.get("/auth/oidc/login", follow_redirects=False)
        assert r.status_code == 409 and r.json()["error"]["code"] == "OIDC_NOT_CONFIGURED"
        assert "single sign-on" not in tc.get("/auth/login").text


@pytest.mark.ui
def test_single_sign_on_in_a_real_browser(env: Env, browser: Any) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{env.server.url}/ui/#/experiments")
        page.wait_for_url("**/auth/login?next=*")
        page.click("#sso")
        page.wait_for_url(f"{env.issuer}/interaction/**")  # the provider's own form
        page.fill("input[name=login]", "alice")
        page.fill("input[name=password]", "anything")
        page.click("button[type=submit]")
        page.wait_for_url(f"{env.server.url}/ui/#/experiments")
        page.locator("#session-user").wait_for()
        assert page.locator("#session-user").inner_text() == "alice@example.com (admin)"
        session = {c["name"]: c for c in ctx.cookies()}["opsloop_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
    finally:
        ctx.close()
