"""The gateway room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from opsloop.gateway._service import GatewayService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.gateway.entities import (
        CreatedKey,
        Limits,
        Route,
        RouteSpec,
        Team,
        UsageReport,
        VirtualKey,
    )

__all__ = ["EmbeddedGateway", "GatewayBackend", "gateway_service"]


class GatewayBackend(Protocol):
    """What the ``Gateway`` client needs, embedded or over HTTP."""

    def set_route(self, name: str, spec: RouteSpec | dict[str, Any]) -> Route: ...
    def get_route(self, name: str) -> Route: ...
    def list_routes(self) -> list[Route]: ...
    def delete_route(self, name: str) -> None: ...
    def set_team(self, name: str, limits: Limits | dict[str, Any]) -> Team: ...
    def get_team(self, name: str) -> Team: ...
    def list_teams(self) -> list[Team]: ...
    def create_key(
        self,
        name: str,
        *,
        routes: list[str] | None = None,
        team: str | None = None,
        owner: str = "",
        limits: Limits | dict[str, Any] | None = None,
        expires_at: int | None = None,
    ) -> CreatedKey: ...
    def get_key(self, key_id: str) -> VirtualKey: ...
    def list_keys(self, *, team: str | None = None) -> list[VirtualKey]: ...
    def revoke_key(self, key_id: str) -> VirtualKey: ...
    def set_key_limits(self, key_id: str, limits: Limits | dict[str, Any]) -> VirtualKey: ...
    def usage(
        self,
        *,
        group_by: str = "key",
        bucket: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> UsageReport: ...


def gateway_service(ctx: Context) -> GatewayService:
    """The context's ``GatewayService`` over its database (embedded)."""
    return GatewayService(ctx.database)


class EmbeddedGateway(GatewayService):
    """The gateway backend over the context's database."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database)
        self._actor = ctx.user

    def set_route(self, name: str, spec: RouteSpec | dict[str, Any], *, actor: str = "") -> Route:
        return super().set_route(name, spec, actor=actor or self._actor)
