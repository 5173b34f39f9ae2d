"""``opsloop loop run``: the loop on the quickstart's docs question-answering task.

The command lives in the CLI hub, not in the loop room, because its task (the
docs questions and the docs index) ships with the quickstart, a layer above
the rooms; the room's function, ``opsloop.loop.run_loop``, takes any task.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from opsloop.core.cli import HomeOption, JsonOpt, esc, out, print_json, resolve_settings, room_app

app = room_app(
    "loop",
    "Close the loop: serve a model, replay questions with feedback, fine-tune, evaluate, "
    "gate and promote.",
)

STAGE_LABELS = {
    "index": "Indexing opsloop's docs",
    "serve": "Serving version 1",
    "replay": "Replaying train questions (traced)",
    "feedback": "Feedback from the reference answers",
    "dataset": "Exporting the SFT dataset version",
    "finetune": "Fine-tuning (LoRA SFT)",
    "evaluate": "Evaluating v1 and v2 on held-out questions",
    "gate": "Gate and promotion",
}


class _Stages:
    """One progress line per stage, ticked as ``run_loop`` reports."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            for other, task in self.tasks.items():  # the previous stages are over
                t = self.progress.tasks[task].total or 1
                self.progress.update(
                    task, completed=t, total=t, description=f"[green]✓[/] {STAGE_LABELS[other]}"
                )
            self.tasks[stage] = self.progress.add_task(
                STAGE_LABELS.get(stage, stage), total=max(total, 1)
            )
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))

    def finish(self) -> None:
        for stage, task in self.tasks.items():
            t = self.progress.tasks[task].total or 1
            self.progress.update(
                task, completed=t, total=t, description=f"[green]✓[/] {STAGE_LABELS[stage]}"
            )


@app.command("run")
def run_command(
    ctx: typer.Context,
    home: HomeOption = None,
    model: Annotated[
        str, typer.Option(metavar="NAME", help="Registered model the loop serves and improves.")
    ] = "docs-qa-llm",
    alias: Annotated[
        str, typer.Option(metavar="ALIAS", help="Alias that serves it; the gate guards it.")
    ] = "prod",
    max_steps: Annotated[
        int | None, typer.Option("--steps", metavar="N", min=1, help="Training steps.")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", metavar="LR", help="Learning rate.")
    ] = None,
    lora_r: Annotated[int | None, typer.Option("--rank", metavar="R", min=1, help="LoRA rank.")] = (
        None
    ),
    train_limit: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Replay only the first N train questions."),
    ] = None,
    heldout_limit: Annotated[
        int | None,
        typer.Option(metavar="N", min=1, help="Evaluate on the first N held-out questions."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Run the loop once on the docs question-answering task shipped with the quickstart.

    Version 1 of MODEL (the bundled SmolLM2-135M-Instruct, registered and given
    ALIAS if MODEL has no ALIAS yet) answers the task's train questions through
    the quickstart's docs retrieval pipeline (one trace each); code feedback from
    the reference answers (thumbs and a correction) is exported as an SFT dataset
    version; a LoRA job fine-tunes version 1 on it and the adapter, merged, is
    version 2; both are evaluated on the held-out questions (`contains`, paired
    bootstrap); the gate moves ALIAS to version 2 only when the lower bound of
    the gain's 95% interval is above zero. Minutes to tens of minutes on a CPU.

    Exit codes: `0` promoted; `3` the gate refused (the alias did not move);
    `1` an opsloop error (`error [CODE]: message`).

    Examples:

        opsloop loop run
        opsloop loop run --home /tmp/loop --train-limit 10 --heldout-limit 10 --steps 4
    """
    from opsloop.loop import DEFAULT_TRAINING  # lazy: the loop loads the SDK's rooms

    training: dict[str, Any] = dict(DEFAULT_TRAINING)
    for key, value in (
        ("max_steps", max_steps),
        ("learning_rate", learning_rate),
        ("lora_r", lora_r),
    ):
        if value is not None:
            training[key] = value
    if lora_r is not None:
        training["lora_alpha"] = 2 * lora_r
    report = run_and_print(
        resolve_settings(home=home, ctx=ctx),
        model=model,
        alias=alias,
        train_limit=train_limit,
        heldout_limit=heldout_limit,
        training=training,
        as_json=json_,
    )
    if not report.promoted:
        raise typer.Exit(3)


def run_and_print(
    settings: Any,
    *,
    model: str = "docs-qa-llm",
    alias: str = "prod",
    train_limit: int | None = None,
    heldout_limit: int | None = None,
    training: dict[str, Any] | None = None,
    as_json: bool = False,
) -> Any:
    """Run the docs loop with a progress line per stage, then print its report."""
    import opsloop  # lazy: the SDK loads every room
    from opsloop.quickstart import run_docs_loop  # lazy: loads the LLM stack

    client = opsloop.Client(settings=settings)
    try:
        with Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True)),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out(),
            expand=True,
            disable=as_json,
        ) as progress:
            stages = _Stages(progress)
            report = run_docs_loop(
                client,
                model=model,
                alias=alias,
                train_limit=train_limit,
                heldout_limit=heldout_limit,
                training=training,
                progress=stages,
            )
            stages.finish()
    finally:
        client.close()
    if as_json:
        print_json(report.model_dump(mode="json"))
        return report
    table = Table(title=f"loop {esc(model)}@{esc(alias)}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, text in report.table():
        table.add_row(esc(label), esc(text))
    out().print(table)
    a = report.artifacts
    out().print(
        f"  loop run {a.loop_run_id}; dataset {esc(a.dataset)}; job {a.job_id}; "
        f"adapter {esc(a.adapter)}; evaluations {a.eval_run_v1} (v{a.v1}) and "
        f"{a.eval_run_v2} (v{a.v2})",
        soft_wrap=True,
    )
    out().print(f"  report and lineage graph in the UI: /ui/#/loop/{a.loop_run_id}", soft_wrap=True)
    return report
