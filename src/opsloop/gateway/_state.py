"""What one gateway process shares between requests: the configuration cache, the
counters, the answer caches, the upstream forwarder and the usage writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from opsloop.core import Context
from opsloop.deployments import Deployments
from opsloop.errors import NotFound, Unauthenticated
from opsloop.gateway._cache import ExactCache
from opsloop.gateway._limits import Counters, RedisCounters, SqlCounters
from opsloop.gateway._semantic import SemanticCache
from opsloop.gateway._service import GatewayService, hash_secret
from opsloop.gateway._upstream import Forwarder
from opsloop.gateway.entities import Limits, Route, VirtualKey
from opsloop.settings import Settings
from opsloop.store import now_ms
from opsloop.tracing import Tracer, Tracing

__all__ = ["Call", "GatewayState", "UsageWriter", "min_of"]

log = logging.getLogger("opsloop.gateway")


@dataclass
class Call:
    """One request as the gateway handles it."""

    endpoint: str
    t0: float
    wall0: float = field(default_factory=time.time)
    key: VirtualKey | None = None
    team_limits: Limits | None = None
    route_name: str | None = None
    decisions: list[str] = field(default_factory=list)
    cache: str | None = None
    charged: tuple[int, int, int] = (0, 0, 0)  # input, output tokens, micro-USD of a failure


def min_of(*values: Any) -> Any:
    vs = [v for v in values if v is not None]
    return min(vs) if vs else None


class UsageWriter:
    """Usage rows written in the background, in batches (flushed on shutdown)."""

    def __init__(self, service: GatewayService) -> None:
        self.service = service
        self.rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def flush(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        try:
            await asyncio.to_thread(self.service.record_usage, rows)
        except Exception:
            log.exception("could not write %d gateway usage rows; keeping them", len(rows))
            self.rows = rows + self.rows

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class GatewayState:
    """Everything one gateway process shares between requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis_url: str | None = None,
        config_ttl_s: float = 1.0,
        trace: bool = True,
    ) -> None:
        self.settings = settings
        self.ctx = Context(settings)
        self.trace = trace
        self.service = GatewayService(self.ctx.database)
        self.redis_url = redis_url if redis_url is not None else settings.redis_url
        self.config_ttl_s = config_ttl_s
        self._keys: dict[str, tuple[float, VirtualKey, Limits | None]] = {}
        self._routes: dict[str, tuple[float, Route | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters: Counters
        self.cache: ExactCache
        self._semantic: SemanticCache | None = None
        self.forwarder: Forwarder
        self.usage = UsageWriter(self.service)
        self.tracer: Tracer | None = None

    def _deployment_urls(self, uri: str) -> list[str]:
        deps = self.ctx.room(Deployments).list(status="running")
        return [d.url for d in deps if d.name == uri]

    async def start(self) -> None:
        self.ctx.database.ensure_schema()
        if self.redis_url:
            rc = RedisCounters(self.redis_url)
            self.counters = rc
            self.cache = ExactCache(rc.client)
        else:
            self.counters = SqlCounters(self.ctx.database)
            self.cache = ExactCache(None)
        self.forwarder = Forwarder(self._deployment_urls)
        self.tracer = self.ctx.room(Tracing).tracer if self.trace else None
        self.usage.start()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.usage.close()
        await self.forwarder.aclose()
        await self.counters.aclose()
        self.ctx.close()

    @property
    def semantic(self) -> SemanticCache:
        """The semantic cache, with MiniLM loaded on first use (only routes that ask for it)."""
        if self._semantic is None:
            from opsloop.evaluation.metrics import default_embedder  # lazy: loads torch

            self._semantic = SemanticCache(default_embedder())
        return self._semantic

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` to its end even if the request that started it is cancelled."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- configuration, cached for ``config_ttl_s`` -----------------------------------

    async def authenticate(self, header: str | None) -> tuple[VirtualKey, Limits | None]:
        if not header or not header.lower().startswith("bearer "):
            raise Unauthenticated("send a gateway key: Authorization: Bearer sk-ogw-...")
        secret = header[7:].strip()
        h = hash_secret(secret)
        now = time.monotonic()
        hit = self._keys.get(h)
        if hit is not None and hit[0] > now:
            key, team = hit[1], hit[2]
            if key.expires_at is not None and key.expires_at <= now_ms():
                raise Unauthenticated(
                    f"gateway key {key.prefix}... has expired", details={"reason": "expired"}
                )
            return key, team
        key, team = await asyncio.to_thread(self.service.authenticate, secret)
        self._keys[h] = (now + self.config_ttl_s, key, team)
        return key, team

    async def route(self, name: str) -> Route | None:
        now = time.monotonic()
        hit = self._routes.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]

        def load() -> Route | None:
            try:
                return self.service.get_route(name)
            except NotFound:
                return None

        r = await asyncio.to_thread(load)
        self._routes[name] = (now + self.config_ttl_s, r)
        return r
