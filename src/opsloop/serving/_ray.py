"""``opsloop serve MODEL --on ray``: the same model server as Ray Serve replicas.

Each replica runs the app a local ``opsloop serve`` runs (``create_serving_app``:
the same routes, micro-batching, fast predict path, continuous batching for
language models, alias watching), wrapped by Ray Serve's ``serve.ingress``.
Ray Serve's proxy spreads requests over the replicas; every replica loads its
own copy of the model, batches its own requests and swaps in a moved alias on
its own poll, so an alias move reaches every replica without failing a request.

A replica reports itself started only once its model is loaded, so Ray routes
nothing to a replica that would answer 503 (at start, on scale-up, after a
crash). Each replica records itself as a deployment and heartbeats, as a local
server does. Shutting the application down lets requests in flight finish
(``graceful_shutdown_timeout_s``), then drains each replica's batchers.

Replicas on other machines need opsloop and the model's libraries installed
there, and settings that reach the same registry (an opsloop server's
``tracking_uri``, or a shared database and artifact store).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsloop.core.serve import server_url
from opsloop.serving._app import create_serving_app
from opsloop.serving._options import ServeOptions
from opsloop.serving._run import check_target, record_deployment
from opsloop.settings import Settings

__all__ = ["RayOptions", "ReplicaApp", "deploy_on_ray", "ray_application", "serve_on_ray"]

Scope = dict[str, Any]
Message = dict[str, Any]


class RayOptions(BaseModel):
    """How the Ray Serve application is laid out.

    - ``replicas``: a fixed number of replicas; or ``min_replicas``..``max_replicas``
      with ``target_ongoing_requests`` per replica for Ray's autoscaler, which
      averages the requests in flight over ``look_back_period_s`` (longer than
      the 10 s at which replicas report, unless Ray's
      ``RAY_SERVE_*_AUTOSCALING_METRIC_PUSH_INTERVAL_S`` say otherwise) and adds replicas
      after ``upscale_delay_s`` above the target (removes them after
      ``downscale_delay_s`` below it).
    - ``max_ongoing_requests``: requests Ray sends one replica at once (they share
      its batches, so this is far above Ray's default of 5).
    - ``replica_cpus`` / ``replica_gpus``: what Ray reserves for each replica.
    - ``direct_port``: each replica also answers HTTP itself on this port (the
      replicas of one node share it through ``SO_REUSEPORT``, the kernel spreading
      connections over them), so requests skip Ray's proxy and its hop into the
      replica. Linux only; put a load balancer over the nodes. Ray's autoscaler
      does not see direct traffic: give a fixed ``replicas`` with it.
    """

    model_config = ConfigDict(extra="forbid")

    app_name: str = Field(default="opsloop", min_length=1, max_length=64)
    replicas: int | None = Field(default=None, ge=1, le=1024)
    min_replicas: int = Field(default=1, ge=0, le=1024)
    max_replicas: int | None = Field(default=None, ge=1, le=1024)
    target_ongoing_requests: float = Field(default=32.0, gt=0)
    upscale_delay_s: float = Field(default=30.0, ge=0)
    downscale_delay_s: float = Field(default=600.0, ge=0)
    look_back_period_s: float = Field(default=30.0, gt=0)
    max_ongoing_requests: int = Field(default=256, ge=1)
    replica_cpus: float = Field(default=1.0, ge=0)
    replica_gpus: float = Field(default=0.0, ge=0)
    graceful_shutdown_timeout_s: float = Field(default=30.0, ge=0)
    direct_port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _check(self) -> RayOptions:
        if self.max_replicas is not None:
            if self.replicas is not None:
                raise ValueError("give either replicas or min/max replicas (autoscaling), not both")
            if self.max_replicas < max(self.min_replicas, 1):
                raise ValueError("max_replicas must be at least min_replicas (and 1)")
            if self.direct_port is not None:
                raise ValueError(
                    "Ray's autoscaler does not see traffic on the direct port: "
                    "give a fixed number of replicas with it"
                )
        return self

    def deployment_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.replica_cpus, "num_gpus": self.replica_gpus},
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "graceful_shutdown_wait_loop_s": 0.5,
        }
        if self.max_replicas is not None:
            opts["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "initial_replicas": max(self.min_replicas, 1),
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
                "look_back_period_s": self.look_back_period_s,
            }
        else:
            opts["num_replicas"] = self.replicas or 1
        return opts


class ReplicaApp:
    """The ASGI app of one replica: built inside the replica from what pickles small.

    ``lifespan`` startup builds ``create_serving_app``, waits for the model to load
    (a load error fails the replica's start), and starts the deployment record;
    shutdown stops the record after the app drained.
    """

    def __init__(
        self,
        target: str,
        settings: Settings,
        options: ServeOptions,
        url: str,
        direct: tuple[str, int] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.options = options
        self.url = url
        self.direct = direct
        self._app: Any = None

    def _build(self) -> Any:
        return create_serving_app(self.target, self.settings, options=self.options)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        if scope["type"] != "lifespan":
            await self._app(scope, receive, send)
            return
        holder = self._app.state.holder
        recorder: Any = None
        direct: Any = None

        async def send_after_load(message: Message) -> None:
            nonlocal recorder, direct
            if message["type"] == "lifespan.startup.complete":
                while holder.current is None and holder.load_error is None:
                    await asyncio.sleep(0.05)
                if holder.current is None:
                    await send({"type": "lifespan.startup.failed", "message": holder.load_error})
                    return
                if self.direct is not None:
                    direct = await _DirectServer.start(self._app, *self.direct)
                recorder = await asyncio.to_thread(self._start_recorder, holder)
            await send(message)

        async def receive_then_stop_direct() -> Message:
            message: Message = await receive()
            if message["type"] == "lifespan.shutdown" and direct is not None:
                await direct.stop()  # its requests in flight finish before the app drains
            return message

        try:
            await self._app(scope, receive_then_stop_direct, send_after_load)
        finally:
            if recorder is not None:
                await asyncio.to_thread(recorder.__exit__, None, None, None)

    def _start_recorder(self, holder: Any) -> Any:
        rec = record_deployment(
            self.target,
            self.settings,
            self.url,
            1,
            lambda: holder.current and holder.current.resolved,
        )
        rec.__enter__()
        return rec


class _DirectServer:
    """opsloop's own HTTP server (uvicorn, the fast predict path) inside a replica,
    on a port the replicas of this node share."""

    def __init__(self, server: Any, task: asyncio.Task[None]) -> None:
        self.server = server
        self.task = task

    @classmethod
    async def start(cls, app: Any, host: str, port: int) -> _DirectServer:
        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        config = uvicorn.Config(
            app,
            lifespan="off",  # Ray drives the app's lifespan
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
        )
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises why it could not start
        return cls(server, task)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


class OpsloopReplica:
    """The deployment class Ray Serve instantiates per replica (the ASGI app does the work)."""


def ray_application(
    target: str,
    settings: Settings,
    options: ServeOptions,
    ray_options: RayOptions,
    url: str,
    host: str = "127.0.0.1",
) -> Any:
    """The Ray Serve application (bound deployment) serving ``target``.

    ``host``: where each replica listens with ``direct_port`` (on its own node).
    """
    from ray import serve

    direct = None
    if ray_options.direct_port is not None:
        direct = (host, ray_options.direct_port)
    replica_app = ReplicaApp(target, settings, options, url, direct)
    ingress = serve.ingress(replica_app)(OpsloopReplica)
    deployment = serve.deployment(name="opsloop-model", **ray_options.deployment_options())(ingress)
    return deployment.bind()


def deploy_on_ray(
    target: str,
    settings: Settings,
    options: ServeOptions,
    ray_options: RayOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> str:
    """Deploy onto the Ray cluster this process is connected to; returns the URL
    (the replicas' own port with ``direct_port``, else Ray Serve's proxy).

    Returns once every replica has loaded the model. Deploying the same
    ``app_name`` again replaces the application in place (Ray rolls replicas).
    """
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    url = server_url(host, port)
    if ray_options.direct_port is not None:
        url = server_url(host, ray_options.direct_port)
    serve.run(
        ray_application(target, settings, options, ray_options, url, host),
        name=ray_options.app_name,
        route_prefix="/",
        blocking=False,
    )
    return url


def serve_on_ray(
    target: str,
    settings: Settings,
    *,
    options: ServeOptions,
    ray_options: RayOptions,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Deploy ``target`` on Ray until SIGINT/SIGTERM (or ``stop``), then delete it gracefully.

    ``address``: an existing cluster (``ray://host:10001`` or ``host:6379``);
    without one a local Ray instance starts and stops with the command.
    """
    import ray
    from ray import serve

    check_target(target, settings, options)  # a wrong URI fails before Ray starts
    connected = not ray.is_initialized()
    if connected:
        ray.init(address=address or "local", logging_level=logging.WARNING, log_to_driver=False)
    # Serve and the instance go with the command only when the command started them.
    owns_cluster = connected and address is None
    stop = stop or threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
        if threading.current_thread() is threading.main_thread()
    }
    try:
        url = deploy_on_ray(target, settings, options, ray_options, host=host, port=port)
        if on_ready is not None:
            on_ready(url)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            serve.delete(ray_options.app_name)  # replicas finish what they hold first
        finally:
            if owns_cluster:
                serve.shutdown()  # type: ignore[no-untyped-call]
            if connected:
                # A cluster at --address keeps running; this only disconnects.
                ray.shutdown()
