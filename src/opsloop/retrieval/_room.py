"""The retrieval room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="retrieval",
    doc="The vector index (FAISS, BM25, hybrid), the MiniLM embedder and collection indexing.",
    routers=("opsloop.retrieval.api:router",),
    cli_groups=(("index", "opsloop.retrieval.cli:app"),),
    client=ClientProperty("indexes", "opsloop.retrieval:Indexes"),
    nav=(Nav("indexes", "Indexes", order=45),),
    ui_routes=(
        UiRoute("indexes", "pages/indexes.js", "renderIndexes"),
        UiRoute("indexes/:name", "pages/indexes.js", "renderIndex"),
    ),
)
