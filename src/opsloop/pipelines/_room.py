"""The pipelines room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room

ROOM = Room(
    name="pipelines",
    doc="LLM pipelines: steps in Python or YAML, registered and served.",
    cli_groups=(("pipelines", "opsloop.pipelines.cli:app"),),
)
