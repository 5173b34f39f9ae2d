"""The gateway room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="gateway",
    doc="The LLM gateway: routes, virtual keys, limits and budgets, usage.",
    tables=("opsloop.gateway._tables",),
    routers=("opsloop.gateway.api:router",),
    cli_groups=(("gateway", "opsloop.gateway.cli:app"),),
    client=ClientProperty("gateway", "opsloop.gateway:Gateway"),
    nav=(Nav("gateway", "Gateway", order=55),),
    ui_routes=(UiRoute("gateway", "pages/gateway.js", "renderGateway"),),
    ui_styles=("gateway.css",),
    hooks=(
        # The usage log as live metrics for the monitoring room (it never imports this room).
        ("monitoring.usage", "opsloop.gateway._live:usage_series"),
    ),
)
