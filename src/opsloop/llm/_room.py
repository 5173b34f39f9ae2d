"""The llm room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room

ROOM = Room(
    name="llm",
    doc="LLM providers (local and OpenAI-compatible) and stored secrets.",
    cli_groups=(("llm", "opsloop.llm.cli:app"), ("secrets", "opsloop.llm.cli:secrets_app")),
)
