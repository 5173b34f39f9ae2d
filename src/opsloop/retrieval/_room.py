"""The retrieval room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Room

ROOM = Room(
    name="retrieval",
    doc="The embedded vector index, the MiniLM embedder and collection indexing.",
    cli_groups=("opsloop.retrieval.cli:app",),
)
