"""``Deployments(client)``: the deployments SDK, the same embedded or against a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.deployments._service import DeploymentService
from opsloop.deployments.entities import Deployment

if TYPE_CHECKING:
    from opsloop.sdk import Client


def _q(deployment_id: str) -> str:
    return quote(deployment_id, safe="")


class Deployments:
    """Register, heartbeat, stop and list model servers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        backend: Any = client.backend
        if hasattr(backend, "db"):
            self._svc: DeploymentService | None = DeploymentService(backend.db)
            self._rest: Any = None
        else:
            self._svc = None
            self._rest = backend

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
        kw: dict[str, Any] = {
            "name": name,
            "model_uri": model_uri,
            "model_name": model_name,
            "url": url,
            "version": version,
            "alias": alias,
            "host": host,
            "pid": pid,
            "workers": workers,
            "flavor": flavor,
        }
        if self._svc is not None:
            return self._svc.register(**kw)
        data = self._rest._json("POST", "/deployments", json=kw, idempotent=False)
        return Deployment.model_validate(data)

    def get(self, deployment_id: str) -> Deployment:
        if self._svc is not None:
            return self._svc.get(deployment_id)
        return Deployment.model_validate(
            self._rest._json("GET", f"/deployments/{_q(deployment_id)}")
        )

    def list(
        self, *, model_name: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Deployment]:
        """Deployments newest first (``status`` may be ``lost``)."""
        if self._svc is not None:
            return self._svc.list(model_name=model_name, status=status, limit=limit)
        params: dict[str, Any] = {"limit": limit}
        if model_name:
            params["model_name"] = model_name
        if status:
            params["status"] = status
        data = self._rest._json("GET", "/deployments", params=params)
        return [Deployment.model_validate(d) for d in data["deployments"]]

    def heartbeat(
        self,
        deployment_id: str,
        *,
        version: int | None = None,
        model_uri: str | None = None,
        flavor: str | None = None,
    ) -> Deployment:
        if self._svc is not None:
            return self._svc.heartbeat(
                deployment_id, version=version, model_uri=model_uri, flavor=flavor
            )
        body = {"version": version, "model_uri": model_uri, "flavor": flavor}
        data = self._rest._json(
            "POST", f"/deployments/{_q(deployment_id)}/heartbeat", json=body, idempotent=True
        )
        return Deployment.model_validate(data)

    def stop(self, deployment_id: str, *, failed: bool = False) -> Deployment:
        if self._svc is not None:
            return self._svc.stop(deployment_id, failed=failed)
        data = self._rest._json(
            "POST",
            f"/deployments/{_q(deployment_id)}/stop",
            json={"failed": failed},
            idempotent=True,
        )
        return Deployment.model_validate(data)
