"""``DeploymentRecorder``: a model server records itself while it runs.

Started by ``opsloop serve`` (in the parent process, so several workers make
one record) and by the quickstart. It registers the deployment, heartbeats
from a daemon thread every ``interval_s`` with the version served now (so an
alias move shows), and marks the deployment stopped when stopped. Recording
is best effort: every failure is logged as a warning and never reaches the
server.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from opsloop.core import Context
from opsloop.deployments._client import Deployments
from opsloop.deployments._service import HEARTBEAT_INTERVAL_S
from opsloop.registry import Registry, parse_model_uri
from opsloop.tracking import Tracking

if TYPE_CHECKING:
    from opsloop.deployments.entities import Deployment
    from opsloop.settings import Settings

log = logging.getLogger("opsloop.deployments")

__all__ = ["DeploymentRecorder"]


class Served(Protocol):
    """What a model server reports it serves now (``opsloop.serving``'s ``Resolved``)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def uri(self) -> str: ...
    @property
    def flavor(self) -> str | None: ...


class DeploymentRecorder:
    """Register, heartbeat and stop one deployment of a ``models:/`` target; never raises."""

    def __init__(
        self,
        target: str,
        settings: Settings,
        *,
        url: str,
        workers: int = 1,
        current: Callable[[], Served | None] | None = None,
        interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.target = target
        self.settings = settings
        self.url = url
        self.workers = workers
        self.interval_s = interval_s
        self._current = current
        self._context: Context | None = None
        self._deployments: Deployments | None = None
        self.deployment: Deployment | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _served(self) -> tuple[Any, Any]:
        """The served model name and its (version, uri, flavor) now."""
        if self._current is not None:
            r = self._current()
            if r is not None:
                return r.name, (r.version, r.uri, r.flavor)
        assert self._context is not None
        # The registry client takes a client carrying the context (Tracking is one).
        registry = Registry(cast(Any, self._context.room(Tracking)))
        mv = registry.resolve(self.target)
        return mv.name, (mv.version, mv.uri, mv.flavor)

    def start(self) -> DeploymentRecorder:
        """Register the deployment and start heartbeating (a warning if that fails)."""
        try:
            self._context = Context(self.settings)
            self._deployments = Deployments(self._context)
            name, (version, uri, flavor) = self._served()
            self.deployment = self._deployments.register(
                name=self.target,
                model_uri=uri or self.target,
                model_name=name,
                version=version,
                alias=parse_model_uri(self.target).alias,
                url=self.url,
                host=socket.gethostname(),
                pid=os.getpid(),
                workers=self.workers,
                flavor=flavor,
            )
        except Exception as exc:
            log.warning("opsloop serve: could not record the deployment: %s", exc)
            self._close_client()
            return self
        self._thread = threading.Thread(
            target=self._beat, name="opsloop-deployment-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self) -> None:
        assert self.deployment is not None and self._deployments is not None
        while not self._stop.wait(self.interval_s):
            try:
                _, (version, uri, flavor) = self._served()
                self._deployments.heartbeat(
                    self.deployment.id, version=version, model_uri=uri or None, flavor=flavor
                )
            except Exception as exc:
                log.warning("opsloop serve: deployment heartbeat failed: %s", exc)

    def stop(self, *, failed: bool = False) -> None:
        """Stop heartbeating and mark the deployment stopped (or failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.deployment is not None and self._deployments is not None:
            try:
                self.deployment = self._deployments.stop(self.deployment.id, failed=failed)
            except Exception as exc:
                log.warning("opsloop serve: could not mark the deployment stopped: %s", exc)
        self._close_client()

    def _close_client(self) -> None:
        if self._context is not None:
            try:
                self._context.close()
            except Exception as exc:  # closing must not mask the server's own outcome
                log.warning("opsloop serve: closing the deployment client failed: %s", exc)
            self._context = None

    def __enter__(self) -> DeploymentRecorder:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        failed = exc_type is not None and not issubclass(exc_type, KeyboardInterrupt | SystemExit)
        self.stop(failed=failed)
