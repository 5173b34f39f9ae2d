"""Running a model server under uvicorn: one process, or several workers.

Several workers need uvicorn to import the app in each worker process, so the
parent passes the target, settings and options to ``app_from_env`` through
one environment variable (uvicorn offers no other channel to its workers).
Each worker loads its own copy of the model and batches its own requests.

Shutdown on SIGINT/SIGTERM is graceful: uvicorn stops accepting connections,
lets requests in flight (streams included) finish for up to
``graceful_timeout_s``, then the app finishes what its batchers hold and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opsloop.core.serve import check_port_free, quiet_signal_reraise, server_url
from opsloop.errors import InvalidArgument
from opsloop.serving._app import create_serving_app
from opsloop.serving._options import ServeOptions
from opsloop.serving._source import source_for
from opsloop.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from opsloop.serving._source import Resolved

__all__ = ["app_from_env", "check_target", "record_deployment", "serve"]

SERVE_ENV = "_OPSLOOP_SERVE_MODEL"
FACTORY = "opsloop.serving._run:app_from_env"


def app_from_env() -> FastAPI:
    """The app for one uvicorn worker, built from what its parent passed on."""
    raw = json.loads(os.environ[SERVE_ENV])
    return create_serving_app(
        raw["target"], Settings(**raw["settings"]), options=ServeOptions(**raw["options"])
    )


def check_target(target: Any, settings: Settings, options: ServeOptions) -> Resolved:
    """Resolve ``target`` now, so a wrong URI or folder fails before the server starts."""
    source = source_for(target, settings, options)
    try:
        return source.resolve()
    finally:
        source.close()


def serve(
    target: Any,
    settings: Settings | None = None,
    *,
    options: ServeOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
    graceful_timeout_s: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``target`` until SIGINT/SIGTERM, then shut down gracefully and return.

    Raises ``NotFound``/``InvalidArgument`` for a target that does not resolve
    and ``Unavailable`` when the port is taken, before anything starts; with
    one worker the model is loaded first too, so load errors (untrusted
    types, a broken file) end the call before the server listens.
    """
    import uvicorn

    settings = settings or Settings()
    options = options or ServeOptions()
    if workers < 1:
        raise InvalidArgument(f"workers must be at least 1, got {workers}")
    if workers > 1 and not isinstance(target, str | os.PathLike):
        raise InvalidArgument("several workers need a models:/ URI or a folder, not an object")
    check_port_free(host, port)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": graceful_timeout_s,
        "lifespan": "on",
    }
    if workers == 1:
        # One process: load here, so a model that cannot load fails the command at once.
        source = source_for(target, settings, options)
        resolved = source.resolve()
        model = source.load(resolved)
        app = create_serving_app(source, settings, options=options, preloaded=(resolved, model))
        server = uvicorn.Server(uvicorn.Config(app, **common))
        if on_ready is not None:
            on_ready(server_url(host, port))
        holder = app.state.holder
        with (
            record_deployment(
                target,
                settings,
                server_url(host, port),
                1,
                lambda: holder.current and holder.current.resolved,
            ),
            quiet_signal_reraise(),
        ):
            server.run()
        return
    # Each worker loads its own copy; check here that the target resolves at all.
    check_target(target, settings, options)
    payload = {
        "target": os.fspath(target),
        "settings": json.loads(settings.model_dump_json()),
        "options": json.loads(options.model_dump_json()),
    }
    os.environ[SERVE_ENV] = json.dumps(payload)
    try:
        if on_ready is not None:
            on_ready(server_url(host, port))
        # The parent records the deployment once for all its workers.
        with (
            record_deployment(target, settings, server_url(host, port), workers, None),
            quiet_signal_reraise(),
        ):
            uvicorn.run(FACTORY, factory=True, workers=workers, **common)
    finally:
        os.environ.pop(SERVE_ENV, None)


def record_deployment(
    target: Any,
    settings: Settings,
    url: str,
    workers: int,
    current: Callable[[], Resolved | None] | None,
) -> contextlib.AbstractContextManager[Any]:
    """Record a ``models:/`` target as a deployment while the server runs (best effort)."""
    if not (isinstance(target, str) and target.startswith("models:/")):
        return contextlib.nullcontext()
    from opsloop.deployments import DeploymentRecorder  # lazy: loads sqlalchemy

    return DeploymentRecorder(target, settings, url=url, workers=workers, current=current)
