"""``Transport``: the one typed HTTP transport every room's remote backend uses.

Errors come back as the same exception classes the embedded services raise
(rebuilt from the server's ``{"error": {code, message, details}}`` answer).
Connection failures are retried with backoff; a request that may have
reached the server is retried only when repeating it is safe (``idempotent``:
reads, PUT/DELETE by default, and writes that carry an id the server
de-duplicates).

JSON calls (``call``, ``call_bytes`` and the verbs) go over a lean keep-alive
connection per thread on the standard library's ``http.client``: about a
quarter of httpx's client CPU per request. Streams, file uploads and callers
of ``request`` keep httpx, and so does everything when a proxy applies to the
server's address (httpx honours the proxy variables).
"""

from __future__ import annotations

import http.client
import os
import random
import select
import socket
import ssl
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import certifi
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
        if settings.token:  # a server with auth on takes the user from the token, not the header
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.Client(
            base_url=f"{self.base_url}{API_PREFIX}",
            timeout=httpx.Timeout(
                settings.http_timeout_s, connect=min(10.0, settings.http_timeout_s)
            ),
            headers=headers,
        )
        self.retries = max(0, settings.http_retries)
        self._headers = headers
        self._path_prefix = urlsplit(self.base_url).path.rstrip("/") + API_PREFIX
        self.request_hooks: list[Callable[[str, str], None]] = []
        """Called with (method, URL path) before each attempt is sent (tests count requests)."""
        self._lean = _LeanHTTP.for_url(f"{self.base_url}{API_PREFIX}", settings.http_timeout_s)

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
        safe, content, hdrs = _prepare(method, idempotent, json, content, headers)
        kw: dict[str, Any] = {"params": params, "content": content, "headers": hdrs}
        if timeout is not None:
            kw["timeout"] = timeout

        tries = 0

        def once() -> tuple[int, httpx.Response]:
            nonlocal tries
            if tries and hasattr(content, "seek"):
                content.seek(0)  # a retried upload starts again
            tries += 1
            try:
                resp = self._http.request(method, path, **kw)
            except httpx.ConnectError as exc:
                raise _NotSent(str(exc)) from exc
            except (
                httpx.TimeoutException,
                httpx.RemoteProtocolError,
                httpx.ReadError,
                httpx.WriteError,
            ) as exc:
                raise _MaybeSent(str(exc)) from exc
            return resp.status_code, resp

        return self._retrying(method, path, safe, once, lambda _status, resp: self.error(resp))

    def _retrying(
        self,
        method: str,
        path: str,
        idempotent: bool,
        once: Callable[[], tuple[int, _R]],
        error_of: Callable[[int, _R], OpsloopError],
    ) -> _R:
        """``once()`` until it answers below 400, retrying where safe (both transports' loop).

        A request that never reached the server is always retried; one that may
        have (a timeout, a dropped connection, a 502/503/504) only when ``idempotent``.
        """
        attempt = 0
        while True:
            for hook in self.request_hooks:
                hook(method, self._path_prefix + path)
            try:
                status, answer = once()
            except _NotSent as exc:
                if attempt >= self.retries:
                    raise Unavailable(
                        f"cannot reach the opsloop server at {self.base_url}: {exc}"
                    ) from exc.__cause__
            except _MaybeSent as exc:
                if not idempotent or attempt >= self.retries:
                    raise Unavailable(
                        f"the opsloop server at {self.base_url} did not answer: {exc}"
                    ) from exc.__cause__
            else:
                if status < 400:
                    return answer
                if not (status in _RETRY_STATUS and idempotent and attempt < self.retries):
                    raise error_of(status, answer)
            attempt += 1
            time.sleep(min(4.0, 0.2 * 2**attempt) * (0.5 + random.random()))

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
        data = self.call_bytes(method, path, **kw)
        return orjson.loads(data) if data else None

    def call_bytes(
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
    ) -> bytes:
        """The answer's body bytes (``b""`` for none), errors raised as exceptions.

        Over the lean connection when it applies (JSON or bytes bodies);
        otherwise through ``request``.
        """
        if self._lean is None or not (content is None or isinstance(content, bytes)):
            resp = self.request(
                method,
                path,
                params=params,
                json=json,
                content=content,
                headers=headers,
                idempotent=idempotent,
                timeout=timeout,
            )
            return b"" if resp.status_code == 204 else resp.content
        safe, content, hdrs = _prepare(method, idempotent, json, content, headers)
        hdrs = {**self._headers, **hdrs}
        target = _target(self._lean.prefix + path, params)
        lean = self._lean

        def once() -> tuple[int, bytes]:
            try:
                return lean.send(method, target, content, hdrs, timeout)
            except (OSError, http.client.HTTPException) as exc:
                raise _MaybeSent(repr(exc)) from exc

        return self._retrying(method, path, safe, once, _error_of_body)

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
        if self._lean is not None:
            self._lean.close()


def _param_text(value: Any) -> str:
    """A query value as httpx writes it (``true``/``false``, ``""`` for None)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def _target(path: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return path
    pairs = [
        (k, _param_text(item))
        for k, v in params.items()
        for item in (v if isinstance(v, list | tuple) else (v,))
    ]
    return f"{path}?{urlencode(pairs)}"


class _NotSent(Exception):
    """The request never reached the server (the connection could not be made)."""


class _MaybeSent(Exception):
    """The request may have reached the server (a timeout or a dropped connection)."""


_R = TypeVar("_R")


def _prepare(
    method: str,
    idempotent: bool | None,
    json: Any,
    content: Any,
    headers: Mapping[str, str] | None,
) -> tuple[bool, Any, dict[str, str]]:
    """Whether repeating the request is safe (reads, PUT and DELETE unless told), its body
    and its extra headers."""
    hdrs = dict(headers or {})
    if json is not None:
        content = orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)
        hdrs["Content-Type"] = "application/json"
    if idempotent is None:
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
    return idempotent, content, hdrs


def _error_of_body(status: int, body: bytes) -> OpsloopError:
    """The exception an error answer (its status and JSON body) stands for."""
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    return error_from_payload(payload, status)


class _LeanHTTP:
    """One keep-alive ``http.client`` connection per thread (and per process, after a fork)."""

    def __init__(self, scheme: str, host: str, port: int | None, prefix: str, timeout: float):
        self.scheme, self.host, self.port = scheme, host, port
        self.prefix, self.timeout = prefix, timeout
        self._local = threading.local()
        self._all: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context(cafile=_ca_file()) if scheme == "https" else None

    @classmethod
    def for_url(cls, url: str, timeout: float) -> _LeanHTTP | None:
        """The lean path to ``url``, or None where httpx must go (a proxy applies)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname
        proxies = urllib.request.getproxies()
        if proxies and not urllib.request.proxy_bypass(parts.netloc):
            return None
        return cls(parts.scheme, host, parts.port, parts.path.rstrip("/"), timeout)

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection, open (a stale keep-alive one reconnected)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) != os.getpid():
            conn = None  # inherited over a fork: the socket belongs to the parent
        if conn is not None and conn.sock is not None:
            # An idle keep-alive socket that reads as ready was closed by the server.
            if select.select([conn.sock], [], [], 0)[0]:
                conn.close()
            else:
                return conn
        if conn is None:
            if self._ssl is not None:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self._ssl
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.add(conn)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise _NotSent(str(exc)) from exc
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def send(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[int, bytes]:
        conn = self._connection()
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        return resp.status, data

    def close(self) -> None:
        with self._lock:
            conns, self._all = list(self._all), weakref.WeakSet()
        for conn in conns:
            conn.close()


def _ca_file() -> str:
    """The certificate bundle httpx verifies with (certifi's), for the same trust."""
    return str(certifi.where())
