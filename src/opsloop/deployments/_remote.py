"""``RemoteDeployments``: the deployments backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.deployments.entities import Deployment

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteDeployments"]


class RemoteDeployments:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def _path(self, deployment_id: str, tail: str = "") -> str:
        return f"/deployments/{quote(deployment_id, safe='')}{tail}"

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
        body: dict[str, Any] = {
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
        return Deployment.model_validate(self._t.post("/deployments", body))

    def get(self, deployment_id: str) -> Deployment:
        return Deployment.model_validate(self._t.get(self._path(deployment_id)))

    def list(
        self, *, model_name: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Deployment]:
        params: dict[str, Any] = {"limit": limit}
        if model_name:
            params["model_name"] = model_name
        if status:
            params["status"] = status
        data = self._t.get("/deployments", params)
        return [Deployment.model_validate(d) for d in data["deployments"]]

    def heartbeat(
        self,
        deployment_id: str,
        *,
        version: int | None = None,
        model_uri: str | None = None,
        flavor: str | None = None,
    ) -> Deployment:
        body = {"version": version, "model_uri": model_uri, "flavor": flavor}
        data = self._t.post(self._path(deployment_id, "/heartbeat"), body, idempotent=True)
        return Deployment.model_validate(data)

    def stop(self, deployment_id: str, *, failed: bool = False) -> Deployment:
        data = self._t.post(self._path(deployment_id, "/stop"), {"failed": failed}, idempotent=True)
        return Deployment.model_validate(data)
