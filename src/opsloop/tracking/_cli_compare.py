"""``opsloop runs compare``: runs side by side, differing params and best metrics marked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    HomeOption,
    esc,
    fmt_value,
    out,
    print_json,
)
from opsloop.tracking._cli_util import command_tracking

if TYPE_CHECKING:
    from opsloop.tracking.entities import RunComparison


_SHORT = {"maximize": "max", "minimize": "min"}


def best_by_goal(comparison: RunComparison) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """Per metric: its goal as the service gives it (``min``/``max``) and the best runs.

    The direction is the service's (set on the experiment or inferred there from
    the name); here only ties are added: they all count as best, and a metric
    where every run has the same value, only one run has a value, or that has no
    goal (system metrics) has no best run.
    """
    goals: dict[str, str | None] = {}
    best: dict[str, list[str]] = {}
    for key, per_run in comparison.metrics.items():
        goal = _SHORT.get(comparison.goals.get(key) or "")
        goals[key] = goal
        values = {rid: v for rid, v in per_run.items() if v is not None and not math.isnan(v)}
        if goal is None or len(values) < 2 or len(set(values.values())) == 1:
            best[key] = []
            continue
        target = min(values.values()) if goal == "min" else max(values.values())
        best[key] = [rid for rid in per_run if values.get(rid) == target]
    return goals, best


def compare(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str],
        typer.Argument(metavar="RUN_ID", help="Two or more run ids.", show_default=False),
    ],
    system: Annotated[
        bool, typer.Option("--system", help="Also show system metrics (cpu, memory, ...).")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    home: HomeOption = None,
) -> None:
    """Compare runs side by side: params (differing ones highlighted) and latest metrics.

    The best run per metric is marked with a star, by the metric's goal: the one
    set on the experiment (`client.set_metric_goal(exp, "f1", "maximize")`), else
    lowest for loss-like names (`loss`, `error`, `mse`, `latency`, ...) and
    highest otherwise. In `--json`, `goals` gives each metric's direction
    (`min`/`max`) and `best` its best run ids (ties included).

    Examples:

        opsloop runs compare 3f2a9c0d... 8b1e4f7a... 0c9d2e6b...
        opsloop runs compare RUN_A RUN_B --json
    """
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids", param_hint="RUN_IDS")
    with command_tracking(ctx, home) as client:
        comparison = client.compare_runs(run_ids)
    goals, best = best_by_goal(comparison)
    if json_:
        data: dict[str, Any] = comparison.model_dump(mode="json")
        data["goals"] = goals
        data["best"] = best
        print_json(data)
        return
    runs = comparison.runs
    table = Table(title=f"Comparing {len(runs)} runs", title_justify="left", show_lines=False)
    table.add_column("", style="bold", no_wrap=True)
    for r in runs:
        table.add_column(f"{esc(r.name)}\n[dim]{r.id[:8]}[/]", justify="right")
    table.add_row("[dim]status[/]", *[r.status.value for r in runs])
    differing = set(comparison.differing_params)
    if comparison.param_keys:
        table.add_section()
    for key in comparison.param_keys:
        values = [r.params.get(key) for r in runs]
        if key in differing:
            label = f"[yellow]≠ params.{esc(key)}[/]"
            cells = [f"[yellow]{esc(fmt_value(v))}[/]" for v in values]
        else:
            label = f"[dim]  params.{esc(key)}[/]"
            cells = [f"[dim]{esc(fmt_value(v))}[/]" for v in values]
        table.add_row(label, *cells)
    keys = [k for k in comparison.metric_keys if system or not k.startswith("system/")]
    if keys:
        table.add_section()
    for key in keys:
        goal = goals.get(key)
        arrow = {"min": "↓", "max": "↑"}.get(goal or "", " ")
        cells = []
        for r in runs:
            text = esc(fmt_value(comparison.metrics[key].get(r.id)))
            cells.append(f"[bold green]★ {text}[/]" if r.id in best.get(key, []) else text)
        table.add_row(f"[cyan]{arrow} metrics.{esc(key)}[/]", *cells)
    out().print(table)
    out().print(
        "[dim]≠ param differs between runs · ★ best run for the metric (↓ lower is better, ↑ higher)[/]"
    )
