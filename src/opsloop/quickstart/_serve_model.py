"""Serve the quickstart's registered model from a thread, next to the main ``opsloop server``.

The quickstart runs one process: the UI server in the main thread (it owns
Ctrl-C) and the model server here, a ``uvicorn.Server`` in a daemon thread
(uvicorn installs signal handlers only in the main thread). The model
server records itself as a deployment while it runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from opsloop.core.serve import check_port_free, server_url
from opsloop.errors import Unavailable
from opsloop.settings import Settings


@contextlib.contextmanager
def serve_model_in_thread(
    model_uri: str,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 5001,
    trusted_types: list[str] | None = None,
    heartbeat_interval_s: float | None = None,
    poll_interval_s: float = 5.0,
) -> Iterator[str]:
    """Serve ``model_uri`` at ``http://host:port`` until the block exits; yields the URL.

    The model is loaded before the server listens, so a model that cannot load
    raises here. Raises ``Unavailable`` when the port is taken or the server
    does not come up within 30 s. On exit the server shuts down gracefully and
    its deployment is marked stopped.
    """
    import uvicorn

    from opsloop.deployments import (  # lazy: loads sqlalchemy
        HEARTBEAT_INTERVAL_S,
        DeploymentRecorder,
    )
    from opsloop.serving import (  # lazy: loads fastapi and the serving stack
        ServeOptions,
        create_serving_app,
        source_for,
    )

    check_port_free(host, port)
    options = ServeOptions(trusted_types=list(trusted_types or []), poll_interval_s=poll_interval_s)
    source = source_for(model_uri, settings, options)
    resolved = source.resolve()
    app = create_serving_app(
        source, settings, options=options, preloaded=(resolved, source.load(resolved))
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="opsloop-quickstart-model", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise Unavailable(f"the model server could not start on {server_url(host, port)}")
        time.sleep(0.02)
    url = server_url(host, port)
    holder: Any = app.state.holder
    recorder = DeploymentRecorder(
        model_uri,
        settings,
        url=url,
        current=lambda: holder.current and holder.current.resolved,
        interval_s=heartbeat_interval_s or HEARTBEAT_INTERVAL_S,
    ).start()
    failed = False
    try:
        yield url
    except BaseException:
        failed = True
        raise
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        recorder.stop(failed=failed)
