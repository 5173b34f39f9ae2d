"""The monitoring room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="monitoring",
    doc="Monitoring: prediction log, live metrics, drift, delayed-label performance, alerts.",
    tables=("opsloop.monitoring._tables",),
    routers=("opsloop.monitoring.api:router",),
    root_routers=("opsloop.monitoring.api:root_router",),
    cli_groups=(("monitoring", "opsloop.monitoring.cli:app"),),
    client=ClientProperty("monitoring", "opsloop.monitoring:Monitoring"),
    nav=(Nav("monitoring", "Monitoring", order=80),),
    ui_routes=(UiRoute("monitoring", "pages/monitoring.js", "renderMonitoring"),),
    hooks=(
        # Every predict answer of `opsloop serve` (serving calls it; it never imports this room).
        ("serving.observer", "opsloop.monitoring._observer:serving_observer"),
        # Retention (run by the governance room on the server): old rows, old bodies.
        ("governance.retention.predictions", "opsloop.monitoring._retention:purge_predictions"),
        ("governance.retention.bodies", "opsloop.monitoring._retention:empty_prediction_bodies"),
    ),
    # The server's background work: the monitor scheduler.
    background=("opsloop.monitoring._alerts:start_scheduler",),
)
