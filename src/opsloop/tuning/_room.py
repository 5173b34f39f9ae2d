"""The tuning room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Room

ROOM = Room(
    name="tuning",
    doc="Hyperparameter studies whose trials are child runs.",
    tables=("opsloop.tuning._tables",),
    routers=("opsloop.tuning.api:router",),
    cli_groups=(("tune", "opsloop.tuning.cli:app"),),
    client=ClientProperty("tuning", "opsloop.tuning:Tuning"),
)
