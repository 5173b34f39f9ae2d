"""The gateway's usage log as live metrics: what the monitoring room charts next to its own.

``usage_series`` is this room's implementation of the ``monitoring.usage`` hook
(declared in ``_room.py``): the monitoring room calls every implementation by
name through ``opsloop.core.hooks`` and never imports the gateway, nor the
gateway the monitoring room (they are independent siblings in the layers).

Per time bucket and per route and/or model (the upstream model that
answered): requests, errors, tokens, cost, cache hits and misses, guardrail
hits (requests a guard blocked, redacted or flagged: a ``GUARDRAIL_BLOCKED``
refusal, or an ``input.*`` / ``output.*`` decision) and blocks, mean latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from opsloop.errors import InvalidArgument
from opsloop.gateway._tables import gateway_usage

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["USAGE_GROUPS", "usage_series"]

USAGE_GROUPS = ("route", "model")


def usage_series(
    ctx: Context,
    *,
    since: int,
    until: int,
    bucket_s: int = 300,
    by: Sequence[str] = USAGE_GROUPS,
    route: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """One point per bucket (``bucket_s`` seconds) and group of ``by``, oldest first."""
    if not 1 <= bucket_s <= 30 * 86_400:
        raise InvalidArgument("bucket_s must be between 1 and 2592000")
    groups = list(dict.fromkeys(by))
    if not set(groups) <= set(USAGE_GROUPS):
        raise InvalidArgument(f"by must name some of {', '.join(USAGE_GROUPS)}")
    u = gateway_usage.c
    width = bucket_s * 1000
    bucket = (u.ts - u.ts % width).label("t")
    keys: list[Any] = [bucket, *(getattr(u, g).label(g) for g in groups)]
    text = sa.cast(u.decisions, sa.Text)
    guarded = sa.or_(u.code == "GUARDRAIL_BLOCKED", text.like('%"input.%'), text.like('%"output.%'))
    q = (
        sa.select(
            *keys,
            sa.func.count().label("requests"),
            sa.func.sum(sa.case((u.status >= 400, 1), else_=0)).label("errors"),
            sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("output_tokens"),
            sa.func.coalesce(sa.func.sum(u.cost_micros), 0).label("cost_micros"),
            sa.func.sum(sa.case((u.cache == "hit", 1), else_=0)).label("cache_hits"),
            sa.func.sum(sa.case((u.cache == "miss", 1), else_=0)).label("cache_misses"),
            sa.func.sum(sa.case((guarded, 1), else_=0)).label("guardrail_hits"),
            sa.func.sum(sa.case((u.code == "GUARDRAIL_BLOCKED", 1), else_=0)).label("blocked"),
            sa.func.coalesce(sa.func.sum(u.latency_ms), 0.0).label("latency_sum"),
        )
        .where(u.ts >= since, u.ts < until)
        .group_by(*keys)
        .order_by(*keys)
    )
    if route is not None:
        q = q.where(u.route == route)
    if model is not None:
        q = q.where(u.model == model)
    with ctx.database.read() as conn:
        rows = conn.execute(q).mappings().all()
    out = []
    for r in rows:
        n = int(r["requests"])
        hits, misses = int(r["cache_hits"] or 0), int(r["cache_misses"] or 0)
        point: dict[str, Any] = {
            "t": int(r["t"]),
            **{g: r[g] for g in groups},
            "source": "gateway",
            "requests": n,
            "errors": int(r["errors"] or 0),
            "input_tokens": int(r["input_tokens"]),
            "output_tokens": int(r["output_tokens"]),
            "cost": int(r["cost_micros"]) / 1e6,
            "cache_hits": hits,
            "cache_misses": misses,
            "cache_hit_rate": hits / (hits + misses) if hits + misses else None,
            "guardrail_hits": int(r["guardrail_hits"] or 0),
            "guardrail_blocks": int(r["blocked"] or 0),
            "latency_mean": float(r["latency_sum"]) / n if n else None,
        }
        out.append(point)
    return out
