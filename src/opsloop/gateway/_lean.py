"""A lean HTTP/1.1 client for the gateway's hot path: non-streamed JSON POSTs to ``http://``
upstreams over a small pool of keep-alive connections.

httpx's pool scans every connection on each request; at a few hundred
requests per second that scan, not the network, was most of the gateway's
added latency. Streams and ``https://`` upstreams still go through httpx.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["LeanConnectError", "LeanPool", "LeanReadError", "LeanResponse", "LeanTimeout"]

MAX_HEAD = 64 * 1024


class LeanConnectError(OSError):
    """The connection could not be opened: nothing was sent."""


class LeanTimeout(TimeoutError):
    """No complete answer in time (the request was sent)."""


class LeanReadError(OSError):
    """The connection broke after the request was sent."""


class LeanResponse:
    """The parts of a response the forwarder reads (the same names as httpx's)."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    async def aread(self) -> bytes:
        return self.content

    async def aclose(self) -> None:
        return None


async def _read_response(reader: asyncio.StreamReader) -> tuple[LeanResponse, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read()
        keep = False
    return LeanResponse(status, headers, body), keep


class LeanPool:
    """Keep-alive connections per (host, port), at most ``max_idle`` kept idle each."""

    def __init__(self, max_idle: int = 64) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
        self._idle = {}

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
    ) -> LeanResponse:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode("latin-1") + body
        idle = self._idle.setdefault((host, port), [])
        while True:
            pooled = bool(idle)
            if pooled:
                reader, writer = idle.pop()
            else:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), min(timeout, connect_timeout)
                    )
                except (OSError, TimeoutError) as exc:
                    raise LeanConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
            try:
                writer.write(head)
                resp, keep = await asyncio.wait_for(_read_response(reader), timeout)
            except TimeoutError as exc:
                writer.close()
                raise LeanTimeout(f"no answer from {host}:{port} in {timeout:.3g} s") from exc
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                writer.close()
                got_nothing = isinstance(exc, asyncio.IncompleteReadError) and not exc.partial
                if pooled and (got_nothing or isinstance(exc, ConnectionResetError)):
                    continue  # the server had closed the idle connection: use another
                raise LeanReadError(f"the connection to {host}:{port} broke: {exc!r}") from exc
            except BaseException:
                writer.close()
                raise
            if keep and len(idle) < self.max_idle:
                idle.append((reader, writer))
            else:
                writer.close()
            return resp

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()
