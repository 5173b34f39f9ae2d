"""``Transport``: the one typed HTTP transport every room's remote backend uses.

Errors come back as the same exception classes the embedded services raise
(rebuilt from the server's ``{"error": {code, message, details}}`` answer).
Connection failures are retried with backoff; a request that may have
reached the server is retried only when repeating it is safe (``idempotent``:
reads, PUT/DELETE by default, and writes that carry an id the server
de-duplicates).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from opsloop.core._identity import ACTOR_HEADER
from opsloop.errors import OpsloopError, Unavailable, error_from_payload
from opsloop.settings import Settings

__all__ = ["API_PREFIX", "Transport", "quote_segment"]

API_PREFIX = "/api/v1"
_RETRY_STATUS = frozenset({502, 503, 504})


def quote_segment(segment: str, safe: str = "") -> str:
    """``segment`` escaped for one URL path segment."""
    return quote(segment, safe=safe)


class Transport:
    """JSON over HTTP to ``opsloop server`` under ``/api/v1``, with safe retries."""

    def __init__(self, settings: Settings, *, user: str = "") -> None:
        if not settings.is_remote:
            raise ValueError("a Transport needs an http(s) tracking_uri")
        self.settings = settings
        self.base_url = str(settings.tracking_uri).rstrip("/")
        headers = {"User-Agent": "opsloop-python"}
        if user:
            headers[ACTOR_HEADER] = user
        self._http = httpx.Client(
            base_url=f"{self.base_url}{API_PREFIX}",
            timeout=httpx.Timeout(
                settings.http_timeout_s, connect=min(10.0, settings.http_timeout_s)
            ),
            headers=headers,
        )
        self.retries = max(0, settings.http_retries)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request (retrying where safe); raise the server's error as an exception."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        hdrs = dict(headers or {})
        if json is not None:
            content = orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)
            hdrs["Content-Type"] = "application/json"
        kw: dict[str, Any] = {"params": params, "content": content, "headers": hdrs}
        if timeout is not None:
            kw["timeout"] = timeout
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, path, **kw)
            except httpx.ConnectError as exc:
                # Never reached the server: always safe to retry.
                if attempt >= self.retries:
                    raise Unavailable(
                        f"cannot reach the opsloop server at {self.base_url}: {exc}"
                    ) from exc
            except (
                httpx.TimeoutException,
                httpx.RemoteProtocolError,
                httpx.ReadError,
                httpx.WriteError,
            ) as exc:
                if not idempotent or attempt >= self.retries:
                    raise Unavailable(
                        f"the opsloop server at {self.base_url} did not answer: {exc}"
                    ) from exc
            else:
                if resp.status_code < 400:
                    return resp
                if not (
                    resp.status_code in _RETRY_STATUS and idempotent and attempt < self.retries
                ):
                    raise self.error(resp)
            attempt += 1
            time.sleep(min(4.0, 0.2 * 2**attempt) * (0.5 + random.random()))
            if hasattr(content, "seek"):
                content.seek(0)

    @staticmethod
    def error(resp: httpx.Response) -> OpsloopError:
        """The exception a failed response stands for."""
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        return error_from_payload(payload, resp.status_code)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """``request`` and decode the JSON answer (None for an empty one)."""
        resp = self.request(method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return None
        return orjson.loads(resp.content)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, idempotent: bool = False) -> Any:
        return self.call("POST", path, json=body, idempotent=idempotent)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, json=body)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.call("PATCH", path, json=body, idempotent=False)

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("DELETE", path, params=params)

    @contextmanager
    def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed response (bodies too large to hold), errors raised as exceptions."""
        with self._http.stream(method, path, params=params) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise self.error(resp)
            yield resp

    @property
    def http(self) -> httpx.Client:
        """The underlying client, for requests outside ``/api/v1`` (paths are relative to it)."""
        return self._http

    def close(self) -> None:
        self._http.close()
