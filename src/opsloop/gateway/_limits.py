"""Exact limits across replicas: reserve the worst case before the call, settle after.

A request first *reserves* on every limited counter of its key and its team:
one request, its worst-case input tokens (the prompt's UTF-8 byte count plus
the route's template overhead: a byte-level BPE token covers at least one
byte), its worst-case output tokens (``max_tokens``, capped) and the cost of
both at the dearest price of its route chain. The reservation is atomic: all
counters pass and are all incremented, or none is touched (one Lua script in
Redis; one locking transaction in SQL). After the call it *settles*: each
counter moves by (real usage - reserved). So concurrent requests can never
spend together more than the limit allows, across any number of replicas.

Windows are fixed: the minute, the UTC day, the UTC month. A refusal says how
long until the refusing window resets (``Retry-After``).
"""

from __future__ import annotations

import asyncio
import calendar
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.gateway._errors import LimitExceeded, limit_error
from opsloop.gateway._tables import gateway_counters
from opsloop.gateway.entities import Limits
from opsloop.store import Database, now_ms

__all__ = [
    "Check",
    "Counters",
    "RedisCounters",
    "Reservation",
    "SqlCounters",
    "cost_micros",
    "plan",
    "settle_deltas",
]

# limit name -> (metric, window kind, scale to integer units)
WINDOWED: dict[str, tuple[str, str, int]] = {
    "requests_per_minute": ("req", "m", 1),
    "input_tokens_per_minute": ("in", "m", 1),
    "output_tokens_per_minute": ("out", "m", 1),
    "daily_tokens": ("tok", "d", 1),
    "monthly_tokens": ("tok", "M", 1),
    "daily_cost_usd": ("cost", "d", 1_000_000),  # micro-USD
    "monthly_cost_usd": ("cost", "M", 1_000_000),
}


def cost_micros(input_tokens: int, output_tokens: int, prices: Any) -> int:
    """Cost in micro-USD (USD per million tokens x tokens), rounded up."""
    v = input_tokens * prices.input_per_mtok + output_tokens * prices.output_per_mtok
    return math.ceil(v - 1e-9) if v > 0 else 0


def _window(kind: str, now_s: float) -> tuple[str, float]:
    """The window's id and the second it ends."""
    if kind == "m":
        m = int(now_s // 60)
        return f"m:{m}", (m + 1) * 60.0
    t = time.gmtime(now_s)
    if kind == "d":
        day_start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        return f"d:{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}", day_start + 86400.0
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return f"M:{t.tm_year:04d}{t.tm_mon:02d}", float(calendar.timegm((year, month, 1, 0, 0, 0)))


@dataclass(frozen=True)
class Check:
    scope: str  # key:<id> | team:<name>
    limit_name: str
    metric: str
    window: str
    limit: int
    amount: int
    ends_at: float  # epoch seconds

    @property
    def redis_key(self) -> str:
        return f"ogw:{self.scope}:{self.metric}:{self.window}"

    @property
    def ttl_s(self) -> int:
        return max(1, math.ceil(self.ends_at - time.time())) + 120


@dataclass
class Reservation:
    checks: list[Check]
    input_tokens: int
    output_tokens: int
    cost_micros: int


def plan(
    scopes: Sequence[tuple[str, Limits | None]],
    *,
    input_tokens: int,
    output_tokens: int,
    cost: int,
    now_s: float | None = None,
) -> Reservation:
    """The counters one request reserves on, for each (scope, limits) that limits something."""
    now_s = time.time() if now_s is None else now_s
    amounts = {
        "req": 1,
        "in": input_tokens,
        "out": output_tokens,
        "tok": input_tokens + output_tokens,
        "cost": cost,
    }
    checks = []
    for scope, limits in scopes:
        if limits is None:
            continue
        for name, (metric, kind, scale) in WINDOWED.items():
            value = getattr(limits, name)
            if value is None:
                continue
            window, ends = _window(kind, now_s)
            checks.append(
                Check(
                    scope,
                    name,
                    metric,
                    window,
                    math.floor(value * scale + 1e-9),
                    amounts[metric],
                    ends,
                )
            )
    checks.sort(key=lambda c: (c.scope, c.metric, c.window))
    # Two limits on one counter (daily and monthly differ by window; never the same row).
    return Reservation(checks, input_tokens, output_tokens, cost)


def settle_deltas(
    res: Reservation, input_tokens: int, output_tokens: int, cost: int
) -> list[tuple[Check, int]]:
    """How each reserved counter moves once the real usage is known."""
    real = {
        "req": 1,
        "in": input_tokens,
        "out": output_tokens,
        "tok": input_tokens + output_tokens,
        "cost": cost,
    }
    out = []
    for c in res.checks:
        d = real[c.metric] - c.amount
        if d:
            out.append((c, d))
    return out


def refusal(check: Check, used: int) -> LimitExceeded:
    retry = max(1, math.ceil(check.ends_at - time.time()))
    kind, _, who = check.scope.partition(":")
    shown = check.limit / 1e6 if check.metric == "cost" else check.limit
    return limit_error(
        check.limit_name,
        f"the {kind}'s {check.limit_name} limit ({shown:g}) would be exceeded; retry in {retry} s",
        scope=kind,
        name=who,
        limit_value=shown,
        used=used / 1e6 if check.metric == "cost" else used,
        asked=check.amount / 1e6 if check.metric == "cost" else check.amount,
        retry_after_s=retry,
    )


class Counters(Protocol):
    """Where the shared counters live (Redis, or the SQL store)."""

    async def reserve(self, checks: list[Check]) -> tuple[Check, int] | None:
        """Reserve on every check atomically; None, or the first check that refused and the
        counter's value."""
        ...

    async def settle(self, deltas: list[tuple[Check, int]]) -> None: ...

    async def value(self, check: Check) -> int: ...

    async def aclose(self) -> None: ...


# -- SQL -------------------------------------------------------------------------------


class SqlCounters:
    """Counters in the ``gateway_counters`` table: one locking transaction per reservation."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._last_sweep = 0.0

    def _ensure(self, conn: Any, checks: list[Check]) -> None:
        ins: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        rows = [
            {
                "scope": c.scope,
                "metric": c.metric,
                "window": c.window,
                "value": 0,
                "expires_at": int(c.ends_at * 1000) + 120_000,
            }
            for c in checks
        ]
        conn.execute(ins(gateway_counters).on_conflict_do_nothing(), rows)

    def _reserve(self, checks: list[Check]) -> tuple[Check, int] | None:
        if not checks:
            return None
        t = gateway_counters.c
        with self.db.write() as conn:
            self._ensure(conn, checks)
            values: dict[tuple[str, str, str], int] = {}
            for c in checks:  # sorted: replicas lock rows in one order
                k = (c.scope, c.metric, c.window)
                if k not in values:
                    values[k] = conn.execute(
                        sa.select(t.value)
                        .where(t.scope == c.scope, t.metric == c.metric, t.window == c.window)
                        .with_for_update()
                    ).scalar_one()
            for c in checks:
                used = values[(c.scope, c.metric, c.window)]
                if used + c.amount > c.limit:
                    return c, used  # nothing incremented; the inserted zero rows are harmless
            done: set[tuple[str, str, str]] = set()
            for c in checks:
                k = (c.scope, c.metric, c.window)
                if k in done:
                    continue
                done.add(k)
                conn.execute(
                    gateway_counters.update()
                    .where(t.scope == c.scope, t.metric == c.metric, t.window == c.window)
                    .values(value=t.value + c.amount)
                )
            now = time.time()
            if now - self._last_sweep > 60:
                self._last_sweep = now
                conn.execute(gateway_counters.delete().where(t.expires_at < now_ms()))
        return None

    def _settle(self, deltas: list[tuple[Check, int]]) -> None:
        if not deltas:
            return
        t = gateway_counters.c
        with self.db.write() as conn:
            self._ensure(conn, [c for c, _ in deltas])
            for c, d in sorted(deltas, key=lambda x: (x[0].scope, x[0].metric, x[0].window)):
                conn.execute(
                    gateway_counters.update()
                    .where(t.scope == c.scope, t.metric == c.metric, t.window == c.window)
                    .values(value=t.value + d)
                )

    def _value(self, check: Check) -> int:
        t = gateway_counters.c
        with self.db.read() as conn:
            v = conn.execute(
                sa.select(t.value).where(
                    t.scope == check.scope, t.metric == check.metric, t.window == check.window
                )
            ).scalar()
        return int(v or 0)

    async def reserve(self, checks: list[Check]) -> tuple[Check, int] | None:
        if not checks:
            return None
        return await asyncio.to_thread(self._reserve, checks)

    async def settle(self, deltas: list[tuple[Check, int]]) -> None:
        if deltas:
            await asyncio.to_thread(self._settle, deltas)

    async def value(self, check: Check) -> int:
        return await asyncio.to_thread(self._value, check)

    async def aclose(self) -> None:
        return None


# -- Redis -----------------------------------------------------------------------------

_RESERVE = """
for i = 1, #KEYS do
  local lim = tonumber(ARGV[3 * i - 2])
  local amt = tonumber(ARGV[3 * i - 1])
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cur + amt > lim then return {i, cur} end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[3 * i])
end
return {0, 0}
"""

_SETTLE = """
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * i])
end
return 0
"""


class RedisCounters:
    """Counters in Redis: one Lua script per reservation (atomic on the server)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        # redis-py's typing of from_url differs between releases: call it untyped.
        from_url: Any = aioredis.from_url
        self.client: Any = from_url(url, decode_responses=True)
        self._reserve = self.client.register_script(_RESERVE)
        self._settle = self.client.register_script(_SETTLE)

    async def reserve(self, checks: list[Check]) -> tuple[Check, int] | None:
        if not checks:
            return None
        # The same counter twice (never today: windows differ) would be checked twice; fine.
        argv: list[Any] = []
        for c in checks:
            argv += [c.limit, c.amount, c.ttl_s]
        i, cur = await self._reserve(keys=[c.redis_key for c in checks], args=argv)
        i = int(i)
        return None if i == 0 else (checks[i - 1], int(cur))

    async def settle(self, deltas: list[tuple[Check, int]]) -> None:
        if not deltas:
            return
        argv: list[Any] = []
        for c, d in deltas:
            argv += [d, c.ttl_s]
        await self._settle(keys=[c.redis_key for c, _ in deltas], args=argv)

    async def value(self, check: Check) -> int:
        v = await self.client.get(check.redis_key)
        return int(v or 0)

    async def aclose(self) -> None:
        await self.client.aclose()
