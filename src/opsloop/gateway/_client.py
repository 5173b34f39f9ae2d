"""``Gateway(context)``: the gateway's routes, teams, keys and usage, embedded or remote."""

from __future__ import annotations

from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.gateway._backend import EmbeddedGateway, GatewayBackend
from opsloop.gateway._remote import RemoteGateway
from opsloop.gateway.entities import (
    CreatedKey,
    Limits,
    Route,
    RouteSpec,
    Team,
    UsageReport,
    VirtualKey,
)

__all__ = ["Gateway"]


def _embedded(ctx: Context) -> GatewayBackend:
    return EmbeddedGateway(ctx)


def _remote(ctx: Context) -> GatewayBackend:
    return RemoteGateway(ctx)


class Gateway:
    """Manage what ``opsloop gateway serve`` enforces: routes, teams, virtual keys; read usage."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: GatewayBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    def set_route(
        self, name: str, spec: RouteSpec | dict[str, Any] | None = None, **fields: Any
    ) -> Route:
        """Create or replace route ``name`` (the ``model`` clients send), from a ``RouteSpec``,
        a dict, or keyword fields: ``set_route("chat", upstreams=[{"url": ".../v1"}])``."""
        return self._backend.set_route(name, spec if spec is not None else fields)

    def get_route(self, name: str) -> Route:
        return self._backend.get_route(name)

    def list_routes(self) -> list[Route]:
        return self._backend.list_routes()

    def delete_route(self, name: str) -> None:
        self._backend.delete_route(name)

    def set_team(
        self, name: str, limits: Limits | dict[str, Any] | None = None, **fields: Any
    ) -> Team:
        """Create a team or replace its limits (every key of the team shares them)."""
        return self._backend.set_team(name, limits if limits is not None else fields)

    def get_team(self, name: str) -> Team:
        return self._backend.get_team(name)

    def list_teams(self) -> list[Team]:
        return self._backend.list_teams()

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
        """A new virtual key; ``.secret`` is shown this once (only its hash is stored)."""
        return self._backend.create_key(
            name, routes=routes, team=team, owner=owner, limits=limits, expires_at=expires_at
        )

    def get_key(self, key_id: str) -> VirtualKey:
        return self._backend.get_key(key_id)

    def list_keys(self, *, team: str | None = None) -> list[VirtualKey]:
        return self._backend.list_keys(team=team)

    def revoke_key(self, key_id: str) -> VirtualKey:
        return self._backend.revoke_key(key_id)

    def set_key_limits(
        self, key_id: str, limits: Limits | dict[str, Any] | None = None, **fields: Any
    ) -> VirtualKey:
        return self._backend.set_key_limits(key_id, limits if limits is not None else fields)

    def usage(
        self,
        *,
        group_by: str = "key",
        bucket: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> UsageReport:
        """Requests, errors, tokens, cost, cache hits per ``key``/``team``/``route``/``model``
        (or ``none``), per ``hour`` or ``day`` when ``bucket`` is given."""
        return self._backend.usage(group_by=group_by, bucket=bucket, since=since, until=until)
