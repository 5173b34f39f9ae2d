"""Running the gateway under uvicorn (one process; run several, on one store and one Redis,
for replicas)."""

from __future__ import annotations

from collections.abc import Callable

from opsloop.core.serve import check_port_free, quiet_signal_reraise, server_url
from opsloop.gateway._app import create_gateway_app
from opsloop.settings import Settings

__all__ = ["run_gateway"]


def run_gateway(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 4000,
    redis_url: str | None = None,
    log_level: str = "info",
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the gateway until SIGINT/SIGTERM (requests in flight finish first)."""
    import uvicorn

    settings = settings or Settings()
    check_port_free(host, port)
    app = create_gateway_app(settings, redis_url=redis_url)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    )
    if on_ready is not None:
        on_ready(server_url(host, port))
    with quiet_signal_reraise():
        server.run()
