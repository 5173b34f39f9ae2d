"""The selection room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room, UiRoute

ROOM = Room(
    name="selection",
    doc="`opsloop select`: candidate LLMs scored on your data.",
    cli_commands=(("select", "opsloop.selection.cli:select_command"),),
    ui_routes=(UiRoute("selections/:id", "pages/selection.js", "renderSelection"),),
)
