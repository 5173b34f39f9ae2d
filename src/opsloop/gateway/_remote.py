"""``RemoteGateway``: the gateway backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.gateway.entities import (
    CreatedKey,
    Limits,
    Route,
    RouteSpec,
    Team,
    UsageReport,
    VirtualKey,
)

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteGateway"]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _dump(model: Any, value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, model) else value


class RemoteGateway:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def set_route(self, name: str, spec: RouteSpec | dict[str, Any]) -> Route:
        data = self._t.put(f"/gateway/routes/{_seg(name)}", _dump(RouteSpec, spec))
        return Route.model_validate(data)

    def get_route(self, name: str) -> Route:
        return Route.model_validate(self._t.get(f"/gateway/routes/{_seg(name)}"))

    def list_routes(self) -> list[Route]:
        return [Route.model_validate(r) for r in self._t.get("/gateway/routes")["routes"]]

    def delete_route(self, name: str) -> None:
        self._t.delete(f"/gateway/routes/{_seg(name)}")

    def set_team(self, name: str, limits: Limits | dict[str, Any]) -> Team:
        data = self._t.put(f"/gateway/teams/{_seg(name)}", _dump(Limits, limits))
        return Team.model_validate(data)

    def get_team(self, name: str) -> Team:
        return Team.model_validate(self._t.get(f"/gateway/teams/{_seg(name)}"))

    def list_teams(self) -> list[Team]:
        return [Team.model_validate(t) for t in self._t.get("/gateway/teams")["teams"]]

    def create_key(
        self,
        name: str,
        *,
        routes: list[str] | None = None,
        team: str | None = None,
        owner: str = "",
        limits: Limits | dict[str, Any] | None = None,
        expires_at: int | None = None,
    ) -> CreatedKey:
        body = {
            "name": name,
            "routes": routes or [],
            "team": team,
            "owner": owner,
            "limits": _dump(Limits, limits) if limits is not None else {},
            "expires_at": expires_at,
        }
        return CreatedKey.model_validate(self._t.post("/gateway/keys", body))

    def get_key(self, key_id: str) -> VirtualKey:
        return VirtualKey.model_validate(self._t.get(f"/gateway/keys/{_seg(key_id)}"))

    def list_keys(self, *, team: str | None = None) -> list[VirtualKey]:
        params = {"team": team} if team is not None else None
        return [VirtualKey.model_validate(k) for k in self._t.get("/gateway/keys", params)["keys"]]

    def revoke_key(self, key_id: str) -> VirtualKey:
        data = self._t.post(f"/gateway/keys/{_seg(key_id)}/revoke", {}, idempotent=True)
        return VirtualKey.model_validate(data)

    def set_key_limits(self, key_id: str, limits: Limits | dict[str, Any]) -> VirtualKey:
        data = self._t.put(f"/gateway/keys/{_seg(key_id)}/limits", _dump(Limits, limits))
        return VirtualKey.model_validate(data)

    def usage(
        self,
        *,
        group_by: str = "key",
        bucket: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> UsageReport:
        params: dict[str, Any] = {"group_by": group_by}
        for k, v in (("bucket", bucket), ("since", since), ("until", until)):
            if v is not None:
                params[k] = v
        return UsageReport.model_validate(self._t.get("/gateway/usage", params))
