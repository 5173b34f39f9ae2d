"""The other rooms' clients an evaluation uses, built once per context."""

from __future__ import annotations

from typing import Any, cast

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets import Datasets
from opsloop.prompts import Prompts
from opsloop.tracing import Tracing
from opsloop.tracking import Tracking

__all__ = ["datasets_of", "prompts_of", "tracing_of", "tracking_of"]


def tracking_of(client: Context | HasContext | None) -> Tracking:
    """Where runs are logged: the user's ``Client`` when one exists on the context."""
    return context_of(client).room(Tracking)


# TODO(rooms): Datasets and Prompts take a Context once their rooms are converted; until
# then they take a client, and the context's run-logging client (the user's ``Client`` when
# one exists) has every attribute they read. The casts go with that change.
def _datasets(ctx: Context) -> Datasets:
    return Datasets(cast(Any, ctx.room(Tracking)))


def _prompts(ctx: Context) -> Prompts:
    return Prompts(cast(Any, ctx.room(Tracking)))


def _tracing(ctx: Context) -> Tracing:
    return Tracing(ctx.room(Tracking))


def datasets_of(client: Context | HasContext | None) -> Datasets:
    return context_of(client).room(_datasets)


def prompts_of(client: Context | HasContext | None) -> Prompts:
    return context_of(client).room(_prompts)


def tracing_of(client: Context | HasContext | None) -> Tracing:
    return context_of(client).room(_tracing)
