"""Calling upstreams: load balancing, retries with backoff and jitter, circuit breakers,
fallbacks to other routes.

- Retried (same upstream, then the next one of the route): connection errors,
  timeouts and 408/409/429/5xx answers. Any other 4xx goes back to the client
  as it is (the same request would fail the same way), except a context-length
  overflow, which falls back to the next route.
- A breaker per upstream (per gateway process): ``failures`` consecutive
  failures open it; after ``cooldown_s`` one probe is let through
  (half-open): success closes it, failure opens it again.
- Upstreams of a route are tried in weighted round-robin order, open breakers
  skipped; then each fallback route, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from opsloop.errors import ProviderTimeout
from opsloop.gateway._errors import NoUpstream
from opsloop.gateway._lean import LeanConnectError, LeanPool, LeanReadError, LeanTimeout
from opsloop.gateway.entities import BreakerSpec, Route, Upstream
from opsloop.llm import RetryPolicy

__all__ = ["Attempt", "Breaker", "Forwarder", "Target"]

RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})
BREAKER_FAILURES = frozenset({500, 502, 503, 504})
_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "this model's context",
    "too many tokens",
    "prompt is too long",
)


@dataclass(frozen=True)
class Target:
    base_url: str  # ends before /chat/completions: http://host:port/v1
    model: str | None
    api_key: str | None

    @property
    def id(self) -> str:
        return f"{self.base_url}#{self.model or ''}"


class Breaker:
    """closed -> (``failures`` in a row) -> open -> (``cooldown_s``) -> half-open -> closed/open."""

    def __init__(self, spec: BreakerSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.probe_at = 0.0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.probing or self.clock() - self.opened_at >= self.spec.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        # One probe at a time; a probe that never reported back (its request was
        # cancelled) is replaced after another cooldown.
        if self.probing and self.clock() - self.probe_at < self.spec.cooldown_s:
            return False
        self.probing = True
        self.probe_at = self.clock()
        return True

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self) -> bool:
        """Count a failure; True when this opened (or reopened) the breaker."""
        self.failures += 1
        if self.probing or (self.opened_at is None and self.failures >= self.spec.failures):
            self.opened_at = self.clock()
            self.probing = False
            return True
        return False


@dataclass
class Attempt:
    """What the forwarder did for one request (recorded on its usage row)."""

    decisions: list[str] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting on upstreams (and backoff), not the gateway's
    route: Route | None = None
    target: Target | None = None
    maybe_billed: bool = False  # an attempt may have reached an upstream that billed it


def _is_context_overflow(status: int, text: str) -> bool:
    low = text.lower()
    return status in (400, 413, 422) and any(w in low for w in _CONTEXT_WORDS)


class Forwarder:
    """One per gateway process: the HTTP client, the breakers, the round-robin counters."""

    def __init__(self, resolve_deployment: Callable[[str], list[str]] | None = None) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=32),
            timeout=httpx.Timeout(60.0, connect=5.0),
        )
        self.lean = LeanPool()
        self.breakers: dict[str, Breaker] = {}
        self._rr: dict[str, itertools.count[int]] = {}
        self._resolve_deployment = resolve_deployment
        self._deployments: dict[str, tuple[float, list[str]]] = {}

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.lean.aclose()

    def breaker(self, target: Target, spec: BreakerSpec) -> Breaker:
        b = self.breakers.get(target.id)
        if b is None:
            b = self.breakers[target.id] = Breaker(spec)
        else:
            b.spec = spec
        return b

    async def _deployment_urls(self, uri: str) -> list[str]:
        hit = self._deployments.get(uri)
        now = time.monotonic()
        if hit is not None and now - hit[0] < 5.0:
            return hit[1]
        urls: list[str] = []
        if self._resolve_deployment is not None:
            urls = await asyncio.to_thread(self._resolve_deployment, uri)
        self._deployments[uri] = (now, urls)
        return urls

    async def targets(self, route: Route) -> list[Target]:
        """The route's upstreams in this request's order (weighted round-robin)."""
        flat: list[Target] = []
        for up in route.upstreams:
            flat += [t for t in await self._targets_of(up) for _ in range(up.weight)]
        if not flat:
            return []
        start = next(self._rr.setdefault(route.name, itertools.count())) % len(flat)
        seen: set[str] = set()
        out = []
        for t in flat[start:] + flat[:start]:
            if t.id not in seen:
                seen.add(t.id)
                out.append(t)
        return out

    async def _targets_of(self, up: Upstream) -> list[Target]:
        key = os.environ.get(up.api_key_env) if up.api_key_env else None
        if up.url is not None:
            return [Target(up.url.rstrip("/"), up.model, key)]
        assert up.deployment is not None
        urls = await self._deployment_urls(up.deployment)
        return [Target(u.rstrip("/") + "/v1", up.model or up.deployment, key) for u in urls]

    async def _httpx(
        self,
        target: Target,
        path: str,
        payload: dict[str, Any],
        headers: dict[str, str],
        remaining: float,
        route_timeout: float,
        stream: bool,
    ) -> httpx.Response:
        req = self.client.build_request(
            "POST",
            target.base_url + path,
            content=orjson.dumps(payload),
            headers=headers,
            timeout=httpx.Timeout(min(remaining, route_timeout), connect=5.0),
        )
        return await self.client.send(req, stream=stream)

    async def send(
        self,
        chain: list[Route],
        path: str,
        body: dict[str, Any],
        *,
        stream: bool,
        deadline: float,
        attempt: Attempt,
    ) -> Any:
        """The first good upstream answer along ``chain`` (a streamed one is left open).

        A non-retryable client error of the upstream is returned as it is; every
        upstream failing raises ``NoUpstream``; the deadline passing raises
        ``ProviderTimeout``.
        """
        last_error = "no upstream"
        for ri, route in enumerate(chain):
            if ri:
                attempt.decisions.append(f"fallback:{route.name}")
            policy = RetryPolicy(
                max_retries=route.retry.max_retries,
                backoff_s=route.retry.backoff_s,
                max_backoff_s=route.retry.max_backoff_s,
            )
            targets = await self.targets(route)
            if not targets:
                attempt.decisions.append(f"no_upstream:{route.name}")
                continue
            overflow = False
            for target in targets:
                br = self.breaker(target, route.breaker)
                if not br.allow():
                    attempt.decisions.append(f"breaker_open:{target.id}")
                    continue
                if br.probing:
                    attempt.decisions.append(f"breaker_half_open:{target.id}")
                for n in range(policy.max_retries + 1):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ProviderTimeout(
                            "the request's timeout passed before an upstream answered",
                            details={"decisions": attempt.decisions[-20:]},
                        )
                    payload = dict(body)
                    if target.model is not None:
                        payload["model"] = target.model
                    headers = {"Content-Type": "application/json"}
                    if target.api_key:
                        headers["Authorization"] = f"Bearer {target.api_key}"
                    t0 = time.perf_counter()
                    resp: Any
                    lean = not stream and target.base_url.startswith("http://")
                    try:
                        if lean:
                            resp = await self.lean.post(
                                target.base_url + path,
                                orjson.dumps(payload),
                                headers,
                                timeout=min(remaining, route.timeout_s),
                                connect_timeout=5.0,
                            )
                        else:
                            resp = await self._httpx(
                                target, path, payload, headers, remaining, route.timeout_s, stream
                            )
                    except (httpx.TimeoutException, LeanTimeout) as exc:
                        failure = "timeout"
                        attempt.maybe_billed |= not isinstance(exc, httpx.ConnectTimeout)
                    except (httpx.TransportError, LeanConnectError, LeanReadError) as exc:
                        failure = f"transport:{type(exc).__name__}"
                        attempt.maybe_billed |= not isinstance(
                            exc, httpx.ConnectError | LeanConnectError
                        )
                    else:
                        status = resp.status_code
                        if status < 400:
                            attempt.upstream_s += time.perf_counter() - t0
                            if br.state != "closed":
                                attempt.decisions.append(f"breaker_closed:{target.id}")
                            br.success()
                            attempt.route, attempt.target = route, target
                            return resp
                        text = (await resp.aread()).decode("utf-8", "replace")
                        await resp.aclose()
                        if _is_context_overflow(status, text):
                            attempt.upstream_s += time.perf_counter() - t0
                            attempt.decisions.append(f"context_overflow:{target.id}")
                            br.success()
                            overflow = True
                            break
                        if status not in RETRYABLE:
                            attempt.upstream_s += time.perf_counter() - t0
                            br.success()
                            attempt.route, attempt.target = route, target
                            return resp
                        failure = f"status_{status}"
                    attempt.upstream_s += time.perf_counter() - t0
                    last_error = f"{target.id}: {failure}"
                    opened = failure != "status_429" and br.failure()
                    if opened:
                        attempt.decisions.append(f"breaker_open:{target.id}")
                    if opened or n == policy.max_retries or br.state != "closed":
                        attempt.decisions.append(f"failed:{failure}:{target.id}")
                        break
                    wait = min(policy.delay(n), max(0.0, deadline - time.monotonic()))
                    attempt.decisions.append(f"retry:{failure}:{target.id}")
                    t1 = time.perf_counter()
                    await asyncio.sleep(wait)
                    attempt.upstream_s += time.perf_counter() - t1
                if overflow:
                    break
        if time.monotonic() >= deadline:
            raise ProviderTimeout(
                "the request's timeout passed before an upstream answered",
                details={"decisions": attempt.decisions[-20:]},
            )
        raise NoUpstream(
            f"no upstream of route {chain[0].name!r} or its fallbacks answered ({last_error})",
            details={"decisions": attempt.decisions[-20:]},
        )
