"""``opsloop deployments``: list and show model servers recorded by ``opsloop serve``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_time,
    out,
    print_json,
    room_app,
)
from opsloop.deployments._client import Deployments

app = room_app(
    "deployments",
    "Model servers started with `opsloop serve`: what they serve, where, and whether they run.",
)

_STYLE = {"running": "green", "stopped": "dim", "failed": "red", "lost": "yellow"}


@contextlib.contextmanager
def _deployments(ctx: typer.Context, home: Path | None) -> Iterator[Deployments]:
    with command_context(ctx, home) as context:
        yield context.room(Deployments)


@app.command("list")
def list_command(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Only deployments of this registered model.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: running, stopped, failed or lost.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 100,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List deployments, newest first (a server silent for 3 heartbeats shows `lost`)."""
    with _deployments(ctx, home) as deps:
        items = deps.list(model_name=model, status=status, limit=limit)
    if json_:
        print_json([d.model_dump(mode="json") for d in items])
        return
    cols = [
        Col("ID", key=True),
        Col("Serves", key=True),
        Col("Version", drop=3),
        Col("URL", drop=0),
        Col("Status", drop=0),
        Col("Started", drop=2, min_width=19),
        Col("Last heartbeat", drop=1, min_width=19),
    ]
    rows = []
    for d in items:
        style = _STYLE.get(d.status, "")
        rows.append(
            [
                d.id,
                esc(d.name),
                "" if d.version is None else str(d.version),
                esc(d.url),
                f"[{style}]{d.status}[/]" if style else d.status,
                fmt_time(d.started_at),
                fmt_time(d.last_heartbeat_at),
            ]
        )
    out().print(fit_table(cols, rows, title=f"{len(items)} deployment(s)"))


@app.command("show")
def show_command(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(metavar="ID", help="Deployment id.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Show one deployment."""
    with _deployments(ctx, home) as deps:
        d = deps.get(deployment_id)
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    for key, value in d.model_dump().items():
        if key.endswith("_at"):
            value = fmt_time(value) if value else ""
        out().print(f"[bold]{key}[/]: {esc('' if value is None else value)}")
