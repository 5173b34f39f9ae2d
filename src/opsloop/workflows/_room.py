"""The workflows room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="workflows",
    doc="Step pipelines with a sound cache, retries and resume, schedules and event triggers.",
    tables=("opsloop.workflows._tables",),
    routers=("opsloop.workflows.api:router",),
    cli_groups=(("workflows", "opsloop.workflows.cli:app"),),
    client=ClientProperty("workflows", "opsloop.workflows:Workflows"),
    background=("opsloop.workflows._dispatch:start_dispatcher",),
    nav=(Nav("workflows", "Workflows", order=58),),
    ui_routes=(
        UiRoute("workflows", "pages/workflows.js", "renderWorkflows"),
        UiRoute("workflows/:id", "pages/workflows.js", "renderWorkflowRun"),
    ),
)
