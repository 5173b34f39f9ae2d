"""The datasets room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="datasets",
    doc="Versioned datasets, validation, splits, diffs and lineage.",
    tables=("opsloop.datasets._tables",),
    routers=("opsloop.datasets.api:router",),
    cli_groups=(("datasets", "opsloop.datasets.cli:app"),),
    client=ClientProperty("datasets", "opsloop.datasets:Datasets"),
    nav=(Nav("datasets", "Datasets", order=20),),
    ui_routes=(
        UiRoute("datasets", "pages/datasets.js", "renderDatasets"),
        UiRoute("datasets/:name", "pages/datasets.js", "renderDataset"),
        UiRoute("datasets/:name/diff", "pages/datasets_diff.js", "renderDatasetDiff"),
    ),
    ui_modules=(
        "pages/datasets_profile.js",
        "pages/datasets_rows.js",
        "pages/datasets_lineage.js",
    ),
)
