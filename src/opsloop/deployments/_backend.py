"""The deployments room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from opsloop.deployments._service import DeploymentService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.deployments.entities import Deployment

__all__ = ["DeploymentsBackend", "EmbeddedDeployments", "deployment_service"]


class DeploymentsBackend(Protocol):
    """What the ``Deployments`` client needs, embedded or over HTTP."""

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
    ) -> Deployment: ...

    def get(self, deployment_id: str) -> Deployment: ...

    def list(
        self, *, model_name: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Deployment]: ...

    def heartbeat(
        self,
        deployment_id: str,
        *,
        version: int | None = None,
        model_uri: str | None = None,
        flavor: str | None = None,
    ) -> Deployment: ...

    def stop(self, deployment_id: str, *, failed: bool = False) -> Deployment: ...


def deployment_service(ctx: Context) -> DeploymentService:
    """The context's ``DeploymentService`` over its database (embedded)."""
    return DeploymentService(ctx.database)


class EmbeddedDeployments(DeploymentService):
    """The deployments backend over the context's database."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database)
