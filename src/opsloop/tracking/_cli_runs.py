"""``opsloop runs``: list, show, compare, delete and restore runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from opsloop.core.cli import (
    Col,
    HomeOption,
    esc,
    fit_table,
    fmt_bytes,
    fmt_duration,
    fmt_time,
    fmt_value,
    out,
    print_json,
    styled_status,
)
from opsloop.tracking._cli_util import command_tracking, resolve_experiment

app = typer.Typer(
    name="runs",
    help="Runs: search them, look at one, compare several, delete and restore.",
    no_args_is_help=True,
)

RunArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id.", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

_AUTO_METRICS = 4
_AUTO_PARAMS = 3

if TYPE_CHECKING:
    from opsloop.tracking.entities import Run


def _auto_columns(runs: list[Run], order_by: list[str]) -> tuple[list[str], list[str]]:
    """Columns worth showing when none were asked for.

    Metrics: the sorted-by ones, then held-out scores (``val``/``test``/``eval``
    in the name), then the rest; system metrics never. Params: those that
    differ between the runs, the ones every run has first.
    """
    metrics: list[str] = []
    for item in order_by:
        field = item.strip().split()[0] if item.strip() else ""
        for prefix in ("metrics.", "metric.", "m."):
            if field.startswith(prefix):
                metrics.append(field[len(prefix) :].strip('`"'))
    held_out = ("val", "test", "eval")
    seen = sorted(
        {k for r in runs for k in r.metrics if not k.startswith("system/")},
        key=lambda k: (not any(h in k.lower() for h in held_out), k),
    )
    metrics += [k for k in seen if k not in metrics]
    keys = {k for r in runs for k in r.params}
    present = {k: sum(k in r.params for r in runs) for k in keys}
    differing = sorted(
        (k for k in keys if len({r.params.get(k) for r in runs}) > 1),
        key=lambda k: (-present[k], k),
    )
    return metrics[:_AUTO_METRICS], differing[:_AUTO_PARAMS]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME_OR_ID",
            help="Experiment name or id (repeatable). Default: all.",
        ),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="EXPR",
            help='Filter, e.g. `metrics.val_f1 > 0.9 and params.model = "mlp"`.',
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="KEY [ASC|DESC]",
            help='Sort key (repeatable), e.g. `"metrics.val_f1 DESC"`.',
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", metavar="N", help="At most this many runs.", min=1)
    ] = 50,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="KEY", help="Param column to show (repeatable)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", metavar="KEY", help="Metric column to show (repeatable)."),
    ] = None,
    parent: Annotated[
        str | None,
        typer.Option(
            metavar="RUN_ID", help="Only the child runs of this run id.", show_default=False
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted runs.")] = False,
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Search runs: filter, sort and show chosen params and metrics as columns.

    Without `--param`/`--metric`, shows a few metrics (the sorted-by ones
    first) and the params that differ between the listed runs. Metric
    columns show each run's latest value.

    Examples:

        opsloop runs list --experiment quickstart --order-by "metrics.val_f1 DESC" --max 5
        opsloop runs list -f 'params.model = "mlp" and metrics.val_f1 > 0.95' -m val_f1 -m val_loss
        opsloop runs list --experiment quickstart --json
    """
    order = list(order_by or [])
    with command_tracking(ctx, home) as client:
        exp_ids = [resolve_experiment(client, e).id for e in experiment or []]
        page = client.search_runs(
            exp_ids or None,
            filter=filter_,
            order_by=order,
            max_results=max_results,
            include_deleted=all_,
            parent_run_id=parent,
        )
        names = {e.id: e.name for e in client.list_experiments(include_deleted=True)}
    if json_:
        print_json(
            {
                "runs": [r.model_dump(mode="json") for r in page.runs],
                "total": page.total,
                "next_page_token": page.next_page_token,
            }
        )
        return
    if not page.runs:
        out().print("No runs match.")
        return
    explicit = bool(metric or param)
    metrics, params = (list(metric or []), list(param or []))
    if not explicit:
        metrics, params = _auto_columns(page.runs, order)
    total = page.total if page.total is not None else len(page.runs)
    table = _runs_table(
        page.runs,
        names,
        params,
        metrics,
        width=out().width,
        keep_all=explicit,
        title=f"Runs ({len(page.runs)} of {total})",
    )
    out().print(table)
    if page.next_page_token:
        out().print(f"[dim]{total - len(page.runs)} more: raise --max or narrow --filter[/]")


def _runs_table(
    runs: list[Run],
    exp_names: dict[str, str],
    params: list[str],
    metrics: list[str],
    *,
    width: int,
    keep_all: bool,
    title: str,
) -> Table:
    """The runs table, dropping optional columns that would not fit in ``width``.

    Run ids and names are never cut. Asked-for params and metrics always stay
    (``keep_all``); auto-chosen ones, the experiment, start time and duration
    go, least useful first, when the terminal is too narrow to show them.
    """

    def name(r: Run) -> str:
        text = ("↳ " if r.parent_run_id else "") + esc(r.name)
        return text + (" [red](deleted)[/]" if r.lifecycle_stage != "active" else "")

    many_experiments = len({r.experiment_id for r in runs}) > 1
    # Lower drops first; ``keep_all`` pins the asked-for params and metrics.
    cols = [
        Col("Run ID", key=True, style="dim"),
        Col("Name", key=True, style="bold"),
        Col("Status", drop=0),
        *([Col("Experiment", drop=1000)] if many_experiments else []),
        Col("Started", drop=9, min_width=19),
        Col("Duration", justify="right", drop=900),
        *[
            Col(f"[yellow]{esc(p)}[/]", style="yellow", drop=0 if keep_all else 500 + i)
            for i, p in enumerate(params)
        ],
        *[
            Col(
                f"[cyan]{esc(m)}[/]",
                style="cyan",
                justify="right",
                drop=0 if keep_all else (8 if i == 0 else 100 + i),
            )
            for i, m in enumerate(metrics)
        ],
    ]
    rows = [
        [
            r.id,
            name(r),
            styled_status(r.status.value),
            *([esc(exp_names.get(r.experiment_id, r.experiment_id))] if many_experiments else []),
            fmt_time(r.start_time),
            fmt_duration(r.duration_ms),
            *[esc(r.params.get(p, "-")) for p in params],
            *[fmt_value(r.metrics[m].value if m in r.metrics else None) for m in metrics],
        ]
        for r in runs
    ]
    return fit_table(cols, rows, width=width, title=title)


@app.command("show")
def show(
    ctx: typer.Context, run_id: RunArg, json_: JsonOption = False, home: HomeOption = None
) -> None:
    """Show one run: info, params, tags, metrics (latest, min, max, count) and artifacts.

    Examples:

        opsloop runs show 3f2a9c0d5e6b4a7c8d9e0f1a2b3c4d5e
        opsloop runs show 3f2a9c0d5e6b4a7c8d9e0f1a2b3c4d5e --json
    """
    with command_tracking(ctx, home) as client:
        run = client.get_run(run_id)
        artifacts = client.list_artifacts(run_id, recursive=True)
        exp_name = client.get_experiment(run.experiment_id).name
    if json_:
        print_json(
            {
                "run": run.model_dump(mode="json"),
                "experiment_name": exp_name,
                "artifacts": [a.model_dump(mode="json") for a in artifacts],
            }
        )
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    info.add_row("Run ID", run.id)
    info.add_row("Name", esc(run.name))
    info.add_row("Experiment", f"{esc(exp_name)} [dim]({run.experiment_id})[/]")
    info.add_row("Status", styled_status(run.status.value))
    if run.lifecycle_stage != "active":
        info.add_row("Lifecycle", f"[red]{esc(run.lifecycle_stage)}[/]")
    info.add_row("Started", fmt_time(run.start_time))
    info.add_row("Ended", fmt_time(run.end_time))
    info.add_row("Duration", fmt_duration(run.duration_ms))
    if run.parent_run_id:
        info.add_row("Parent run", run.parent_run_id)
    if run.user:
        info.add_row("User", esc(run.user))
    if run.notes:
        info.add_row("Notes", esc(run.notes))
    parts: list[object] = [info]

    if run.params:
        t = Table(title="Params", title_justify="left", show_edge=False)
        t.add_column("Key", style="yellow")
        t.add_column("Value")
        for k, v in sorted(run.params.items()):
            t.add_row(esc(k), esc(v))
        parts.append(t)
    if run.tags:
        t = Table(title="Tags", title_justify="left", show_edge=False)
        t.add_column("Key", style="magenta")
        t.add_column("Value")
        for k, v in sorted(run.tags.items()):
            shown = v if len(v) <= 200 else v[:200] + " …"
            t.add_row(esc(k), esc(shown))
        parts.append(t)
    if run.metrics:
        t = Table(title="Metrics", title_justify="left", show_edge=False)
        t.add_column("Key", style="cyan")
        for col in ("Latest", "Step", "Min", "Max", "Count"):
            t.add_column(col, justify="right")
        # Training metrics first, then system metrics.
        for k in sorted(run.metrics, key=lambda k: (k.startswith("system/"), k)):
            m = run.metrics[k]
            t.add_row(
                esc(k),
                fmt_value(m.value),
                str(m.step),
                fmt_value(m.min),
                fmt_value(m.max),
                str(m.count),
            )
        parts.append(t)
    files = [a for a in artifacts if not a.is_dir]
    if files:
        t = Table(title="Artifacts", title_justify="left", show_edge=False)
        t.add_column("Path", style="green")
        t.add_column("Size", justify="right")
        t.add_column("Type")
        for a in files:
            t.add_row(esc(a.path), fmt_bytes(a.size), esc(a.media_type or "-"))
        parts.append(t)
    spaced: list[object] = []
    for part in parts:
        spaced += [part, ""]
    out().print(Panel(Group(*spaced[:-1]), title=f"Run {esc(run.name)}", title_align="left"))  # type: ignore[arg-type]


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_id: RunArg,
    purge: Annotated[
        bool, typer.Option(help="Remove the run and its data for good (cannot be undone).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    home: HomeOption = None,
) -> None:
    """Delete a run. Soft by default (`opsloop runs restore` undoes it); `--purge` is final.

    `--purge` asks for confirmation unless `--yes` is given. Child runs of a
    purged run are kept and lose their parent link.

    Examples:

        opsloop runs delete 3f2a9c0d5e6b4a7c8d9e0f1a2b3c4d5e
        opsloop runs delete 3f2a9c0d5e6b4a7c8d9e0f1a2b3c4d5e --purge --yes
    """
    with command_tracking(ctx, home) as client:
        run = client.get_run(run_id)
        if purge and not yes:
            typer.confirm(
                f"Purge run {run.name!r} ({run.id}) with its params, metrics and artifacts? "
                "This cannot be undone",
                abort=True,
            )
        client.delete_run(run.id, purge=purge)
    if purge:
        out().print(f"purged run {esc(run.name)} ({run.id})")
    else:
        out().print(
            f"deleted run {esc(run.name)} ({run.id}); undo with: opsloop runs restore {run.id}"
        )


@app.command("restore")
def restore(ctx: typer.Context, run_id: RunArg, home: HomeOption = None) -> None:
    """Restore a soft-deleted run.

    Examples:

        opsloop runs restore 3f2a9c0d5e6b4a7c8d9e0f1a2b3c4d5e
    """
    with command_tracking(ctx, home) as client:
        run = client.restore_run(run_id)
    out().print(f"restored run [bold]{esc(run.name)}[/] ({run.id})")
