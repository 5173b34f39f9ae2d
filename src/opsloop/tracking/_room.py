"""The tracking room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import Nav, Room, UiRoute

ROOM = Room(
    name="tracking",
    doc="Experiments, runs, params, metrics, tags and artifacts.",
    tables=("opsloop.tracking._tables",),
    routers=("opsloop.tracking.api:router",),
    cli_groups=(
        ("experiments", "opsloop.tracking.cli:experiments_app"),
        ("runs", "opsloop.tracking.cli:runs_app"),
    ),
    nav=(Nav("experiments", "Experiments", order=10),),
    ui_routes=(
        UiRoute("experiments", "pages/experiments.js", "renderExperiments"),
        UiRoute("experiments/:id", "pages/runs.js", "renderRuns"),
        UiRoute("runs/:id", "pages/run.js", "renderRun"),
        UiRoute("compare", "pages/compare.js", "renderCompare"),
    ),
    ui_modules=(
        "charts.js",
        "parcoords.js",
        "pages/runs_table.js",
        "pages/artifacts.js",
        "lineage.js",
    ),
)
