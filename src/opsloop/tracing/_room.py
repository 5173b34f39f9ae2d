"""The tracing room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="tracing",
    doc="LLM traces: record, ingest (OTLP), search and read span trees.",
    tables=("opsloop.tracing._tables",),
    routers=("opsloop.tracing.api:router",),
    root_routers=("opsloop.tracing.api:otlp_router",),  # OTLP/HTTP at its standard /v1/traces
    cli_groups=(("traces", "opsloop.tracing.cli:app"),),
    client=ClientProperty("tracing", "opsloop.tracing:Tracing"),
    nav=(Nav("traces", "Traces", order=70),),
    ui_routes=(
        UiRoute("traces", "pages/traces.js", "renderTraces"),
        UiRoute("traces/:id", "pages/trace.js", "renderTrace"),
    ),
    ui_modules=("pages/trace_span.js", "pages/trace_fmt.js"),
    ui_styles=("traces.css",),
    # Retention (run by the governance room on the server): old traces, old span bodies.
    hooks=(
        ("governance.retention.traces", "opsloop.tracing._retention:purge_traces"),
        ("governance.retention.bodies", "opsloop.tracing._retention:empty_span_bodies"),
    ),
)
