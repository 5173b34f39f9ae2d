"""``opsloop server``: the REST API and web UI under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.core.cli import HomeOption, out, resolve_settings


def print_address(url: str) -> None:
    out().print(
        f"[bold]opsloop server:[/] [link={url}/ui/]{url}[/]  (UI at /ui/, API docs at /api/v1/docs)"
    )


def server(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Address to listen on (`0.0.0.0` for all).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port.", min=1, max=65535)] = 5000,
    workers: Annotated[
        int,
        typer.Option(
            metavar="N", help="Worker processes (each serves requests in parallel).", min=1
        ),
    ] = 1,
    home: HomeOption = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="SQLAlchemy URL of the metadata database, e.g. "
            "`postgresql+psycopg://user@host/db`. Default: SQLite in the home folder.",
            show_default=False,
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="Where artifacts go: a folder or `s3://bucket/prefix`. Default: `HOME/artifacts`.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            metavar="LEVEL", help="uvicorn log level: critical, error, warning, info, debug."
        ),
    ] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Authenticate every request with an API token (`opsloop tokens create`) and "
            "check each route's permission rule; also `OPSLOOP_AUTH=1`. Records the audit trail.",
        ),
    ] = False,
    allow_open: Annotated[
        bool,
        typer.Option(
            "--allow-open",
            help="Serve without authentication on a non-loopback address (refused otherwise).",
        ),
    ] = False,
) -> None:
    """Run the opsloop server: the REST API (`/api/v1`) and the web UI (`/ui/`).

    Without `--auth` the server is open: anyone who reaches it can read and change
    everything, so it refuses a non-loopback `--host` unless `--allow-open`.

    An empty database gets the schema on first start. A database with an older
    schema is left alone and the server refuses to start (exit code 2): back
    it up and run `opsloop db upgrade`. Stops gracefully on Ctrl-C or SIGTERM.

    Examples:

        opsloop server
        opsloop server --home ./team-home --port 8080
        opsloop server --host 0.0.0.0 --auth --workers 4 --database-url postgresql+psycopg://me@db/opsloop
    """
    from opsloop.server import serve  # lazy: loads fastapi

    settings = resolve_settings(
        home=home, database_url=database_url, artifact_uri=artifact_uri, ctx=ctx
    )
    if auth:
        settings = settings.model_copy(update={"auth": True})
    serve(
        settings,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        access_log=access_log,
        allow_open=allow_open,
        on_ready=print_address,
    )
    out().print("opsloop server: stopped")
