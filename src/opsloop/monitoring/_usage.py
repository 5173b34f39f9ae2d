"""LLM usage as live metrics: cost, cache hits and guardrail hits per route and model.

The rows come from the rooms that implement the ``monitoring.usage`` hook
(``USAGE_HOOK``; the gateway room's usage log): this room calls them by name
and imports none of them, so the gateway and monitoring stay independent
siblings in the layers (see docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opsloop.core import hooks
from opsloop.errors import InvalidArgument
from opsloop.monitoring.entities import USAGE_HOOK

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["USAGE_GROUPS", "usage_points", "usage_totals"]

USAGE_GROUPS = ("route", "model")


def usage_points(
    ctx: Context,
    *,
    since: int,
    until: int,
    bucket_s: int = 300,
    by: Sequence[str] = USAGE_GROUPS,
    route: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Every implementation's points, oldest first (then by route and model)."""
    if not 60 <= bucket_s <= 30 * 86_400 or bucket_s % 60:
        raise InvalidArgument("bucket_s must be a multiple of 60 up to 2592000")
    if not set(by) <= set(USAGE_GROUPS):
        raise InvalidArgument(f"by must name some of {', '.join(USAGE_GROUPS)}")
    points: list[dict[str, Any]] = []
    for fn in hooks(USAGE_HOOK):
        points += fn(
            ctx, since=since, until=until, bucket_s=bucket_s, by=list(by), route=route, model=model
        )
    return sorted(points, key=lambda p: (p["t"], str(p.get("route")), str(p.get("model"))))


def usage_totals(ctx: Context, *, since: int, until: int) -> list[dict[str, Any]]:
    """One row per (route, model) over the whole window (for ``/metrics``)."""
    width = until - since
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for fn in hooks(USAGE_HOOK):
        # one bucket as wide as the window, aligned so the window falls in at most two
        for p in fn(ctx, since=since, until=until, bucket_s=max(1, width // 1000)):
            key = (str(p.get("route") or ""), str(p.get("model") or ""))
            acc = out.setdefault(key, {"route": key[0], "model": key[1]})
            for f in ("requests", "cost", "cache_hits", "cache_misses", "guardrail_hits"):
                acc[f] = acc.get(f, 0) + p[f]
    return list(out.values())
