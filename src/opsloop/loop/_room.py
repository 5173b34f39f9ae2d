"""The loop room's declaration (read by the hubs through ``opsloop.rooms``).

The room has no tables, routes or client property of its own: a loop run is a
tracking run (experiment ``loop``) whose tags name every artifact it made, and
each artifact lives in the room that owns it. Its command, ``opsloop loop run``,
is mounted by the CLI hub (``opsloop/cli/_loop.py``) because its default task,
the docs question set, ships with the quickstart, a layer above the rooms.
Its UI page, ``#/loop/RUN_ID``, shows a loop run's report and lineage graph.
"""

from opsloop.core import Room, UiRoute

ROOM = Room(
    name="loop",
    doc="Close the loop: serve, collect feedback, fine-tune, evaluate, gate, promote.",
    ui_routes=(UiRoute("loop/:id", "pages/loop.js", "renderLoop"),),
)
