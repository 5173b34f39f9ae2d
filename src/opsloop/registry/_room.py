"""The registry room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="registry",
    doc="Registered models, versions, aliases, cards and lineage.",
    tables=("opsloop.registry._tables",),
    routers=("opsloop.registry.api:router",),
    cli_groups=(("models", "opsloop.registry.cli:app"),),
    client=ClientProperty("registry", "opsloop.registry:Registry"),
    nav=(Nav("models", "Models", order=30),),
    ui_routes=(
        UiRoute("models", "pages/models.js", "renderModels"),
        UiRoute("models/:name", "pages/models.js", "renderModel"),
    ),
    ui_modules=("pages/models_version.js", "pages/models_card.js", "pages/models_markdown.js"),
)
