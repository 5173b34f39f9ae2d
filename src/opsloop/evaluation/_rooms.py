"""The other rooms' clients an evaluation uses, built once per context."""

from __future__ import annotations

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets import Datasets
from opsloop.prompts import Prompts
from opsloop.tracing import Tracing
from opsloop.tracking import Tracking

__all__ = ["datasets_of", "prompts_of", "tracing_of", "tracking_of"]


def tracking_of(client: Context | HasContext | None) -> Tracking:
    """Where runs are logged: the user's ``Client`` when one exists on the context."""
    return context_of(client).room(Tracking)


def datasets_of(client: Context | HasContext | None) -> Datasets:
    return context_of(client).room(Datasets)


def prompts_of(client: Context | HasContext | None) -> Prompts:
    return context_of(client).room(Prompts)


def tracing_of(client: Context | HasContext | None) -> Tracing:
    return context_of(client).room(Tracing)
