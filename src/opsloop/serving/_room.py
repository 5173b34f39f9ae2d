"""The serving room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room

ROOM = Room(
    name="serving",
    doc="`opsloop serve`: micro-batched predict and OpenAI-compatible endpoints.",
    cli_commands=(("serve", "opsloop.serving.cli:serve_command"),),
)
