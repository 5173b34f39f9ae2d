"""The workflows room's backend seam: the cache index and the trigger inbox, embedded or remote."""

from __future__ import annotations

from typing import Any

from opsloop.core import Context
from opsloop.workflows._cache import CacheService
from opsloop.workflows._triggers import TriggerService

__all__ = ["EmbeddedWorkflows", "cache_service", "trigger_service"]


def cache_service(ctx: Context) -> CacheService:
    return CacheService(ctx.database)


def trigger_service(ctx: Context) -> TriggerService:
    return TriggerService(ctx.database)


class EmbeddedWorkflows:
    """Both services on the context's database."""

    def __init__(self, ctx: Context) -> None:
        self.cache: Any = ctx.room(cache_service)
        self.triggers: Any = ctx.room(trigger_service)
