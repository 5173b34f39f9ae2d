"""The exact-match answer cache: in Redis (shared by replicas) when configured, else in
this process; per route and per team (or per key), for the TTL the route sets."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import orjson

__all__ = ["ExactCache", "cache_key"]

# Fields that do not change the answer.
_IGNORED = ("stream", "stream_options", "user", "metadata")


def cache_key(endpoint: str, route: str, scope: str, body: dict[str, Any]) -> str:
    canon = {k: v for k, v in body.items() if k not in _IGNORED}
    raw = orjson.dumps([endpoint, route, scope, canon], option=orjson.OPT_SORT_KEYS)
    return "ogw:cache:" + hashlib.sha256(raw).hexdigest()


class ExactCache:
    def __init__(self, redis: Any | None = None, max_entries: int = 10_000) -> None:
        self.redis = redis
        self.max_entries = max_entries
        self._mem: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        if self.redis is not None:
            v = await self.redis.get(key)
            return None if v is None else (v.encode("latin-1") if isinstance(v, str) else v)
        hit = self._mem.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._mem.pop(key, None)
            return None
        self._mem.move_to_end(key)
        return hit[1]

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        if ttl_s <= 0:
            return
        if self.redis is not None:
            await self.redis.set(key, value.decode("latin-1"), ex=ttl_s)
            return
        self._mem[key] = (time.monotonic() + ttl_s, value)
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)
