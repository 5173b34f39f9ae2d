"""``opsloop experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.core.cli import (
    Col,
    HomeOption,
    esc,
    fit_table,
    fmt_time,
    out,
    print_json,
)
from opsloop.tracking._cli_util import command_tracking, resolve_experiment

app = typer.Typer(
    name="experiments",
    help="Experiments: named groups of runs.",
    no_args_is_help=True,
)

ExperimentArg = Annotated[
    str, typer.Argument(metavar="EXPERIMENT", help="Experiment id or name.", show_default=False)
]


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """List experiments with their run counts.

    Examples:

        opsloop experiments list
        opsloop experiments list --all --json
    """
    with command_tracking(ctx, home) as client:
        exps = client.list_experiments(include_deleted=all_)
    if json_:
        print_json([e.model_dump(mode="json") for e in exps])
        return
    if not exps:
        out().print("No experiments yet. Create one: opsloop experiments create NAME")
        return
    cols = [
        Col("ID", key=True, style="dim"),
        Col("Name", key=True, style="bold"),
        Col("Runs", justify="right", drop=0),
        *([Col("Stage", drop=0)] if all_ else []),
        Col("Created", drop=1, min_width=19),
        Col("Description", drop=2),
    ]
    rows = []
    for e in exps:
        stage = ["[red]deleted[/]" if e.lifecycle_stage == "deleted" else "active"] if all_ else []
        runs = "-" if e.run_count is None else str(e.run_count)
        rows.append([e.id, esc(e.name), runs, *stage, fmt_time(e.created_at), esc(e.description)])
    out().print(fit_table(cols, rows, title="Experiments"))


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A unique name.", show_default=False)],
    description: Annotated[
        str, typer.Option(metavar="TEXT", help="What the experiment is for.")
    ] = "",
    home: HomeOption = None,
) -> None:
    """Create an experiment and print its id.

    Examples:

        opsloop experiments create churn-model --description "Weekly churn classifier"
    """
    with command_tracking(ctx, home) as client:
        exp = client.create_experiment(name, description)
    out().print(f"created experiment [bold]{esc(exp.name)}[/] (id {exp.id})")


@app.command("rename")
def rename(
    ctx: typer.Context,
    experiment: ExperimentArg,
    new_name: Annotated[
        str, typer.Argument(metavar="NEW_NAME", help="The new name.", show_default=False)
    ],
    home: HomeOption = None,
) -> None:
    """Rename an experiment (its runs stay with it).

    Examples:

        opsloop experiments rename churn-model churn-model-v1
    """
    with command_tracking(ctx, home) as client:
        exp = resolve_experiment(client, experiment)
        updated = client.update_experiment(exp.id, name=new_name)
    out().print(f"renamed experiment {esc(exp.name)} to [bold]{esc(updated.name)}[/]")


@app.command("delete")
def delete(ctx: typer.Context, experiment: ExperimentArg, home: HomeOption = None) -> None:
    """Delete an experiment (soft: `opsloop experiments restore` brings it back).

    Examples:

        opsloop experiments delete churn-model
    """
    with command_tracking(ctx, home) as client:
        exp = resolve_experiment(client, experiment)
        client.delete_experiment(exp.id)
    out().print(
        f"deleted experiment {esc(exp.name)} (id {exp.id}); "
        f"undo with: opsloop experiments restore {exp.id}"
    )


@app.command("restore")
def restore(ctx: typer.Context, experiment: ExperimentArg, home: HomeOption = None) -> None:
    """Restore a deleted experiment.

    Examples:

        opsloop experiments restore churn-model
    """
    with command_tracking(ctx, home) as client:
        exp = resolve_experiment(client, experiment)
        client.restore_experiment(exp.id)
    out().print(f"restored experiment [bold]{esc(exp.name)}[/] (id {exp.id})")
