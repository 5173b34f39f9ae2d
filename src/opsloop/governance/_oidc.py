"""OpenID Connect sign-in: the authorization-code flow with PKCE, as a relying party.

``OidcSignIn.begin`` makes a sign-in: a random ``state`` (its SHA-256 kept in
``oidc_logins`` with a random ``nonce`` and a PKCE verifier, for ten minutes)
and the provider's authorization URL (``code_challenge`` = the verifier's
S256). ``finish`` takes the provider's answer at the callback:

1. the ``state`` must be the one this browser was given (the caller passes the
   copy from the browser's cookie too) and one kept here, unused and not
   expired; it is deleted as it is read, so it works once;
2. the code is exchanged at the token endpoint with the verifier and this
   client's secret;
3. the ID token's signature is checked against the provider's JWKS (refetched
   once when it names an unknown key; ``none`` and HMAC algorithms are refused),
   then its issuer, audience (and ``azp``), expiry, issue time and ``nonce``; an
   email the ID token lacks is read from the userinfo endpoint (same ``sub``);
4. the user is mapped to an opsloop user and role by ``Settings.oidc_roles``
   (a verified email, its ``@domain``, or the subject), else
   ``oidc_default_role``, else refused (``OIDC_USER_REFUSED``).

The provider's discovery document and keys are read over HTTP (httpx) and kept
for an hour. ``joserfc`` (the ``governance`` extra) checks the signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

from opsloop.governance._errors import OidcNotConfigured, OidcSignInFailed, OidcUserRefused
from opsloop.governance._tables import oidc_logins
from opsloop.governance._tokens import hash_secret
from opsloop.governance.entities import Principal
from opsloop.settings import Settings
from opsloop.store import Database, now_ms

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["ALGORITHMS", "OidcSignIn", "map_user", "oidc_sign_in"]

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LOGIN_TTL_MS = 600_000  # a sign-in must come back within ten minutes
METADATA_TTL_S = 3600.0
LEEWAY_S = 60  # clock skew allowed on exp and iat


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def map_user(settings: Settings, claims: dict[str, Any]) -> tuple[str, str]:
    """``(user, role)`` for a signed-in person, by ``oidc_roles``, else the default role.

    An email counts only when the provider says it is verified. The user is the
    mapping's ``user:`` part, else the email, else ``oidc:<sub>``.
    """
    sub = str(claims.get("sub") or "")
    email = claims.get("email")
    verified = claims.get("email_verified") is True or claims.get("email_verified") == "true"
    email = email.lower() if isinstance(email, str) and email and verified else None
    keys = [email, "@" + email.rpartition("@")[2]] if email else []
    keys.append(sub)
    for key in keys:
        target = settings.oidc_roles.get(key) if key else None
        if target is not None:
            user, _, role = target.rpartition(":")
            return user or email or f"oidc:{sub}", role
    if settings.oidc_default_role is not None:
        return email or f"oidc:{sub}", settings.oidc_default_role
    raise OidcUserRefused(
        f"{email or sub} signed in at the provider but is not allowed on this server "
        "(add them to OPSLOOP_OIDC_ROLES, or set OPSLOOP_OIDC_DEFAULT_ROLE)",
        details={"subject": sub, "email": email},
    )


class OidcSignIn:
    """The relying party of one server: begin a sign-in, finish it at the callback."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._lock = threading.Lock()
        self._metadata: tuple[dict[str, Any], float] | None = None
        self._keys: tuple[Any, float] | None = None

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.oidc_issuer and s.oidc_client_id)

    def _require(self) -> tuple[str, str]:
        s = self.settings
        if not (s.oidc_issuer and s.oidc_client_id):
            raise OidcNotConfigured(
                "OpenID Connect sign-in is not set up on this server: set OPSLOOP_OIDC_ISSUER, "
                "OPSLOOP_OIDC_CLIENT_ID and OPSLOOP_OIDC_CLIENT_SECRET"
            )
        return s.oidc_issuer.rstrip("/"), s.oidc_client_id

    def _get(self, url: str) -> dict[str, Any]:
        try:
            r = httpx.get(url, timeout=10.0, follow_redirects=False)
            r.raise_for_status()
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcSignInFailed(
                f"the OpenID provider did not answer {url}: {exc}", details={"url": url}
            ) from exc
        if not isinstance(body, dict):
            raise OidcSignInFailed(f"the OpenID provider answered {url} with no JSON object")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept an hour); its issuer must be the one set."""
        issuer, _ = self._require()
        with self._lock:
            if self._metadata and time.monotonic() - self._metadata[1] < METADATA_TTL_S:
                return self._metadata[0]
        doc = self._get(issuer + "/.well-known/openid-configuration")
        if str(doc.get("issuer", "")).rstrip("/") != issuer:
            raise OidcSignInFailed(
                f"the provider's discovery document names issuer {doc.get('issuer')!r}, "
                f"not {issuer!r}"
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(field), str):
                raise OidcSignInFailed(f"the provider's discovery document lacks {field}")
        with self._lock:
            self._metadata = (doc, time.monotonic())
        return doc

    def _key_set(self, *, refresh: bool) -> Any:
        from joserfc.jwk import KeySet  # lazy: the governance extra

        with self._lock:
            if not refresh and self._keys and time.monotonic() - self._keys[1] < METADATA_TTL_S:
                return self._keys[0]
        keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
        with self._lock:
            self._keys = (keys, time.monotonic())
        return keys

    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """A new sign-in: ``(the provider's authorization URL, state)``."""
        _, client_id = self._require()
        doc = self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43 to 128)
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(oidc_logins.delete().where(oidc_logins.c.expires_at < now))
            conn.execute(
                oidc_logins.insert().values(
                    state_hash=hash_secret(state),
                    nonce=nonce,
                    verifier=verifier,
                    next=next_path[:512],
                    created_at=now,
                    expires_at=now + LOGIN_TTL_MS,
                )
            )
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = doc["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query), state

    def _take(self, state: str) -> Any:
        """The kept sign-in of ``state``, deleted as it is read (a state works once)."""
        digest = hash_secret(state)
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(oidc_logins).where(oidc_logins.c.state_hash == digest)
            ).first()
            gone = conn.execute(oidc_logins.delete().where(oidc_logins.c.state_hash == digest))
        if row is None or gone.rowcount != 1:
            raise OidcSignInFailed("unknown or already used sign-in state: start again")
        if row.expires_at <= now_ms():
            raise OidcSignInFailed("the sign-in took too long (over ten minutes): start again")
        return row

    def finish(
        self,
        *,
        state: str | None,
        browser_state: str | None,
        code: str | None,
        error: str | None,
        redirect_uri: str,
        issuer: str | None = None,
    ) -> tuple[Principal, str, str]:
        """Check the provider's answer: ``(principal, subject, the path to go on to)``."""
        _, client_id = self._require()
        if not state or not browser_state or not hmac.compare_digest(state, browser_state):
            raise OidcSignInFailed(
                "the sign-in state does not match the one this browser was given "
                "(a forged or replayed callback, or cookies are off)"
            )
        row = self._take(state)
        # RFC 9207: a provider naming itself in the answer must be the one asked.
        if issuer is not None and issuer != self.metadata()["issuer"]:
            raise OidcSignInFailed("the answer names another issuer (a mix-up attack?)")
        if error:
            raise OidcSignInFailed(
                f"the OpenID provider refused the sign-in: {error[:200]}",
                details={"error": error[:200]},
            )
        if not code:
            raise OidcSignInFailed("the provider sent no authorization code")
        claims = self._redeem(client_id, code, row.verifier, redirect_uri, row.nonce)
        user, role = map_user(self.settings, claims)
        principal = Principal(user=user, role=role)  # type: ignore[arg-type]
        return principal, str(claims["sub"]), row.next or "/ui/"

    def _redeem(
        self, client_id: str, code: str, verifier: str, redirect_uri: str, nonce: str
    ) -> dict[str, Any]:
        doc = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        secret = self.settings.oidc_client_secret or ""
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth: tuple[str, str] | None = None
        if "client_secret_basic" in methods:
            auth = (client_id, secret)
        else:
            form.update(client_id=client_id, client_secret=secret)
        try:
            r = httpx.post(doc["token_endpoint"], data=form, auth=auth, timeout=10.0)
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcSignInFailed(f"the provider's token endpoint failed: {exc}") from exc
        if r.status_code != 200 or not isinstance(body, dict) or "id_token" not in body:
            why = body.get("error") if isinstance(body, dict) else None
            raise OidcSignInFailed(
                f"the provider did not redeem the code ({r.status_code} {why or ''})".strip(),
                details={"status": r.status_code, "error": str(why or "")[:200]},
            )
        claims = self.verify_id_token(str(body["id_token"]), nonce=nonce)
        endpoint = doc.get("userinfo_endpoint")
        if "email" not in claims and isinstance(endpoint, str) and body.get("access_token"):
            claims.update(self._userinfo(endpoint, str(body["access_token"]), claims["sub"]))
        return claims

    def _userinfo(self, endpoint: str, access_token: str, sub: str) -> dict[str, Any]:
        """The email claims from the userinfo endpoint (many providers keep the ID token
        small); its ``sub`` must be the ID token's."""
        try:
            r = httpx.get(
                endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=10.0
            )
            info = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            info = {}
        if not isinstance(info, dict) or info.get("sub") != sub:
            return {}  # no email then: the subject alone maps the user
        return {k: info[k] for k in ("email", "email_verified", "name") if k in info}

    def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, times and nonce check."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        _, client_id = self._require()
        try:
            try:
                token = jwt.decode(id_token, self._key_set(refresh=False), algorithms=ALGORITHMS)
            except JoseError as exc:
                if type(exc).__name__ not in ("InvalidKeyIdError", "BadSignatureError"):
                    raise
                # The provider may have rotated its keys: read them again, once.
                token = jwt.decode(id_token, self._key_set(refresh=True), algorithms=ALGORITHMS)
            claims: dict[str, Any] = dict(token.claims)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": str(self.metadata()["issuer"])},
                aud={"essential": True, "value": client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcSignInFailed(
                f"the ID token was refused: {type(exc).__name__}: {exc}",
                details={"reason": type(exc).__name__},
            ) from exc
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
            raise OidcSignInFailed("the ID token has several audiences and azp is not this client")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcSignInFailed("the ID token's nonce is not this sign-in's")
        return claims


def oidc_sign_in(ctx: Context) -> OidcSignIn:
    """The server's relying party (its discovery document and keys kept between sign-ins)."""
    return OidcSignIn(ctx.settings, ctx.database)
