"""Running the server under uvicorn: ``opsloop server`` and ``opsloop quickstart`` use this.

One worker serves the app object built here. Several workers need uvicorn to
import the app in each worker process, so the parent passes its settings to
``app_from_env`` through one environment variable: that is the only place
opsloop moves configuration through the environment, because uvicorn gives
no other channel to spawned workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from opsloop.core.serve import (
    check_not_open,
    check_port_free,
    prepare_database,
    quiet_signal_reraise,
    server_url,
)
from opsloop.errors import InvalidArgument, Unavailable
from opsloop.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

SETTINGS_ENV = "_OPSLOOP_SERVE_SETTINGS"
FACTORY = "opsloop.server._serve:app_from_env"


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker, built from the settings its parent passed on."""

    from opsloop.server._app import create_app  # lazy: loads fastapi and every room's router

    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings(**json.loads(raw)) if raw else Settings()
    return create_app(settings)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
    allow_open: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the API and UI until SIGINT/SIGTERM, then shut down gracefully and return.

    Checks the schema first (``SchemaOutOfDate`` for an old one; an empty
    database is initialised) and that the port is free (``Unavailable``).
    ``on_ready`` gets the server's URL just before uvicorn starts. Without
    ``settings.auth`` it serves only on a loopback address unless ``allow_open``
    (``InvalidArgument`` otherwise).
    """
    import uvicorn

    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
    check_not_open(settings, host, allow_open=allow_open)
    prepare_database(settings)
    check_port_free(host, port)
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": 10,
        "lifespan": "on",
    }
    if workers == 1:
        from opsloop.server._app import create_app  # lazy: loads fastapi and every room's router

        server = uvicorn.Server(uvicorn.Config(create_app(settings), **common))  # type: ignore[arg-type]
        if on_ready is not None:
            on_ready(server_url(host, port))
        with quiet_signal_reraise():
            server.run()
        if not server.started:
            raise Unavailable(f"the server could not start on {server_url(host, port)}")
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    try:
        if on_ready is not None:
            on_ready(server_url(host, port))
        with quiet_signal_reraise():
            uvicorn.run(FACTORY, factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        os.environ.pop(SETTINGS_ENV, None)
