"""``Deployments(context)``: the deployments SDK, the same embedded or against a server."""

from __future__ import annotations

from opsloop.core import Context, HasContext, context_of
from opsloop.deployments._backend import DeploymentsBackend, EmbeddedDeployments
from opsloop.deployments._remote import RemoteDeployments
from opsloop.deployments.entities import Deployment

__all__ = ["Deployments"]


def _embedded(ctx: Context) -> DeploymentsBackend:
    return EmbeddedDeployments(ctx)


def _remote(ctx: Context) -> DeploymentsBackend:
    return RemoteDeployments(ctx)


class Deployments:
    """Register, heartbeat, stop and list model servers."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: DeploymentsBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    def register(
        self,
        *,
        name: str,
        model_uri: str,
        model_name: str,
        url: str,
        version: int | None = None,
        alias: str | None = None,
        host: str = "",
        pid: int | None = None,
        workers: int = 1,
        flavor: str | None = None,
    ) -> Deployment:
        """Record a server that just started (status ``running``)."""
        return self._backend.register(
            name=name,
            model_uri=model_uri,
            model_name=model_name,
            url=url,
            version=version,
            alias=alias,
            host=host,
            pid=pid,
            workers=workers,
            flavor=flavor,
        )

    def get(self, deployment_id: str) -> Deployment:
        return self._backend.get(deployment_id)

    def list(
        self, *, model_name: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Deployment]:
        """Deployments newest first (``status`` may be ``lost``)."""
        return self._backend.list(model_name=model_name, status=status, limit=limit)

    def heartbeat(
        self,
        deployment_id: str,
        *,
        version: int | None = None,
        model_uri: str | None = None,
        flavor: str | None = None,
    ) -> Deployment:
        return self._backend.heartbeat(
            deployment_id, version=version, model_uri=model_uri, flavor=flavor
        )

    def stop(self, deployment_id: str, *, failed: bool = False) -> Deployment:
        return self._backend.stop(deployment_id, failed=failed)
