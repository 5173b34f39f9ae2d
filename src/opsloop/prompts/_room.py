"""The prompts room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="prompts",
    doc="Versioned prompt templates with labels, diffs and a TTL cache.",
    routers=("opsloop.prompts.api:router",),
    cli_groups=(("prompts", "opsloop.prompts.cli:app"),),
    client=ClientProperty("prompts", "opsloop.prompts:Prompts"),
    nav=(Nav("prompts", "Prompts", order=40),),
    ui_routes=(
        UiRoute("prompts", "pages/prompts.js", "renderPrompts"),
        UiRoute("prompts/:name", "pages/prompts.js", "renderPrompt"),
    ),
    ui_styles=("prompts.css",),
)
