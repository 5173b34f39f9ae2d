"""The evaluation room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="evaluation",
    doc="Evaluation runs, comparisons, promotion gates and standard benchmarks.",
    tables=("opsloop.evaluation._tables",),
    routers=("opsloop.evaluation.api:router",),
    cli_groups=(
        ("bench", "opsloop.evaluation.benchmarks.cli:app"),
        ("eval", "opsloop.evaluation.cli:app"),
    ),
    client=ClientProperty("evaluation", "opsloop.evaluation:Evaluation"),
    hooks=(("registry.alias_move", "opsloop.evaluation._gates:check_alias_move"),),
    nav=(Nav("evaluations", "Evaluations", order=60),),
    ui_routes=(
        UiRoute("evaluations", "pages/evaluations.js", "renderEvaluations"),
        UiRoute("evaluations/compare", "pages/evaluations.js", "renderEvalCompare"),
    ),
)
