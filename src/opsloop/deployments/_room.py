"""The deployments room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="deployments",
    doc="Running model servers recorded by `opsloop serve`.",
    tables=("opsloop.deployments._tables",),
    routers=("opsloop.deployments.api:router",),
    cli_groups=(("deployments", "opsloop.deployments.cli:app"),),
    client=ClientProperty("deployments", "opsloop.deployments:Deployments"),
    nav=(Nav("deployments", "Deployments", order=50),),
    ui_routes=(UiRoute("deployments", "pages/deployments.js", "renderDeployments"),),
)
