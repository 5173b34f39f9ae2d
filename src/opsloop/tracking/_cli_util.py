"""What the tracking commands share: the command's ``Tracking`` and experiment lookup."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from opsloop.core.cli import command_context
from opsloop.errors import InvalidArgument, NotFound
from opsloop.tracking._client import Tracking
from opsloop.tracking.entities import Experiment


@contextlib.contextmanager
def command_tracking(ctx: typer.Context | None, home: Path | None) -> Iterator[Tracking]:
    """The tracking client for a command's ``--home`` (flushed and closed at the end)."""
    with command_context(ctx, home) as context:
        yield context.room(Tracking)


def resolve_experiment(client: Tracking, name_or_id: str) -> Experiment:
    """An experiment (deleted ones too) by name, else by id; ``NotFound`` otherwise."""
    with contextlib.suppress(NotFound, InvalidArgument):
        return client.get_experiment_by_name(name_or_id)
    with contextlib.suppress(NotFound, InvalidArgument):
        return client.get_experiment(name_or_id)
    raise NotFound(f"no experiment is named or has the id {name_or_id!r}")
