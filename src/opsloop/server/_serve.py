"""Running the server under uvicorn: ``opsloop server`` and ``opsloop quickstart`` use this.

One worker serves the app object built here. Several workers need uvicorn to
import the app in each worker process, so the parent passes its settings to
``app_from_env`` through one environment variable: that is the only place
opsloop moves configuration through the environment, because uvicorn gives
no other channel to spawned workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from opsloop.errors import InvalidArgument, Unavailable
from opsloop.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

SETTINGS_ENV = "_OPSLOOP_SERVE_SETTINGS"
FACTORY = "opsloop.server._serve:app_from_env"


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker, built from the settings its parent passed on."""
    import json

    from opsloop.server._app import create_app

    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings(**json.loads(raw)) if raw else Settings()
    return create_app(settings)


def server_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def prepare_database(settings: Settings) -> bool:
    """Create the schema in an empty database; raise ``SchemaOutOfDate`` for an old one.

    Returns True when the schema was just created.
    """
    from opsloop.store import Database

    db = Database(settings.resolved_database_url)
    try:
        created = db.current_revision() is None and db.is_empty()
        db.ensure_schema(create_if_empty=True)
        return created
    finally:
        db.dispose()


def check_port_free(host: str, port: int) -> None:
    """Raise ``Unavailable`` now, with a useful message, if uvicorn could not bind."""
    if not 0 < port < 65536:
        raise InvalidArgument(f"port must be between 1 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # The same option uvicorn sets, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise Unavailable(
                f"cannot listen on {server_url(host, port)}: {exc.strerror or exc}; "
                "pick another --port or stop the program using it"
            ) from None


@contextlib.contextmanager
def _quiet_signal_reraise() -> Iterator[None]:
    """Make a SIGINT/SIGTERM that stopped the server end the command normally.

    uvicorn shuts down gracefully on these signals and then re-raises them to
    the handlers it found; no-op handlers here turn that into a clean return
    (exit 0) instead of a KeyboardInterrupt traceback or death by SIGTERM.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, lambda *_: None)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the API and UI until SIGINT/SIGTERM, then shut down gracefully and return.

    Checks the schema first (``SchemaOutOfDate`` for an old one; an empty
    database is initialised) and that the port is free (``Unavailable``).
    ``on_ready`` gets the server's URL just before uvicorn starts.
    """
    import uvicorn

    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
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
        from opsloop.server._app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(settings), **common))  # type: ignore[arg-type]
        if on_ready is not None:
            on_ready(server_url(host, port))
        with _quiet_signal_reraise():
            server.run()
        if not server.started:
            raise Unavailable(f"the server could not start on {server_url(host, port)}")
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    try:
        if on_ready is not None:
            on_ready(server_url(host, port))
        with _quiet_signal_reraise():
            uvicorn.run(FACTORY, factory=True, workers=workers, **common)  # type: ignore[arg-type]
    finally:
        os.environ.pop(SETTINGS_ENV, None)
