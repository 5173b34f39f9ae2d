"""``opsloop finetune``: train LoRA adapters (SFT, DPO) on a registered model; list, cancel, resume, merge."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    HomeOption,
    JsonOpt,
    command_context,
    err,
    esc,
    fmt_time,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.finetune._client import Finetune
from opsloop.finetune.entities import FinetuneJob

app = room_app(
    "finetune",
    "Fine-tuning jobs: LoRA SFT and DPO on a registered base model from a dataset version.",
)

_STYLE = {
    "validating": "magenta",
    "queued": "magenta",
    "running": "bold cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "yellow",
}


@contextlib.contextmanager
def _finetune(ctx: typer.Context, home: Path | None) -> Iterator[Finetune]:
    with command_context(ctx, home) as context:
        yield context.room(Finetune)


def _state(job: FinetuneJob) -> str:
    style = _STYLE.get(job.state, "")
    return f"[{style}]{job.state}[/]" if style else job.state


def _show(job: FinetuneJob, as_json: bool) -> None:
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    o = out()
    o.print(f"[bold]job[/] {job.id}  {_state(job)}  ({job.method})")
    o.print(
        f"  run: {job.run_id or '-'}   step {job.step}/{job.max_steps}   attempts {job.attempts}"
    )
    o.print(f"  base: {esc(job.spec.get('base_model'))}   data: {esc(job.spec.get('dataset'))}")
    if job.checkpoint_step is not None:
        o.print(f"  last checkpoint: step {job.checkpoint_step}")
    if job.resumed_from_step is not None:
        o.print(f"  resumed from: step {job.resumed_from_step}")
    o.print(f"  wall time: {job.elapsed_s:.1f}s   created {fmt_time(job.created_at)}")
    if job.result_uri:
        o.print(f"  result: [bold]{esc(job.result_uri)}[/] (adapter)")
    if job.error:
        o.print(f"  [red]error:[/] {esc(job.error.splitlines()[0])}")


def _parse_set(items: list[str] | None) -> dict[str, Any]:
    out_: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--set takes KEY=VALUE, got {item!r}")
        try:
            out_[key] = json.loads(value)
        except ValueError:
            out_[key] = value
    return out_


@app.command("run")
def run_command(
    ctx: typer.Context,
    base: Annotated[str, typer.Option("--base", help="Base model: models:/NAME[/VERSION|@ALIAS].")],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset version: NAME[@VERSION].")],
    method: Annotated[
        str, typer.Option(help="sft (prompt -> completion) or dpo (chosen/rejected).")
    ] = "sft",
    output: Annotated[
        str | None,
        typer.Option("--output", help="Registered name of the adapter (default BASE-METHOD)."),
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.", min=1)] = 100,
    batch_size: Annotated[int, typer.Option(help="Rows per step.", min=1)] = 2,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-4,
    max_length: Annotated[int, typer.Option(help="Tokens per row, at most.", min=8)] = 256,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.", min=1)] = 8,
    checkpoint_every: Annotated[
        int, typer.Option(help="Save a checkpoint every N steps.", min=1)
    ] = 50,
    prompt_column: Annotated[str, typer.Option(help="Prompt column.")] = "prompt",
    completion_column: Annotated[
        str | None, typer.Option(help="SFT answer column (default: completion, else response).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any other JobSpec field, KEY=VALUE (JSON values), repeatable."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Start a worker process and return at once.")
    ] = False,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Train an adapter: here with a progress bar, or in a worker process with `--detach`."""
    spec: dict[str, Any] = {
        "base_model": base,
        "dataset": dataset,
        "method": method,
        "output_model": output,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_length": max_length,
        "lora_r": lora_r,
        "checkpoint_every": checkpoint_every,
        "prompt_column": prompt_column,
        "completion_column": completion_column,
    }
    spec = {k: v for k, v in spec.items() if v is not None}
    spec.update(_parse_set(set_))
    with _finetune(ctx, home) as ft:
        job = ft.submit(spec) if detach else _foreground(ft, spec, quiet=json_)
    _show(job, json_)
    if job.state == "failed":
        raise typer.Exit(1)


def _foreground(ft: Finetune, spec: dict[str, Any], *, quiet: bool) -> FinetuneJob:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]training[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=err(),
        transient=True,
        disable=quiet,
    ) as bar:
        task = bar.add_task("train", total=int(spec.get("max_steps", 100)), info="")

        def progress(step: int, total: int, metrics: dict[str, float]) -> None:
            parts = []
            if "loss" in metrics:
                parts.append(f"loss {metrics['loss']:.3f}")
            if "tokens_per_second" in metrics:
                parts.append(f"{metrics['tokens_per_second']:.0f} tok/s")
            bar.update(task, completed=step, total=total, info="  ".join(parts))

        return ft.run(spec, progress=progress)


@app.command("distill")
def distill_command(
    ctx: typer.Context,
    teacher: Annotated[
        str, typer.Option(help="Teacher: local:smollm2, models:/NAME@ALIAS or openai:MODEL.")
    ],
    prompts: Annotated[str, typer.Option(help="Dataset version holding the prompts.")],
    base: Annotated[str, typer.Option("--base", help="The student: models:/NAME[@ALIAS].")],
    prompt_column: Annotated[str, typer.Option(help="Prompt column.")] = "prompt",
    max_tokens: Annotated[int, typer.Option(help="Teacher answer length, at most.", min=1)] = 128,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.", min=1)] = 100,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any other JobSpec field, KEY=VALUE (JSON values), repeatable."),
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """The teacher answers the prompts (a new dataset version); the student trains on them (detached)."""
    options = {"max_steps": max_steps, **_parse_set(set_)}
    with _finetune(ctx, home) as ft:
        job = ft.distill(
            teacher, prompts, base_model=base, prompt_column=prompt_column,
            max_tokens=max_tokens, **options,
        )  # fmt: skip
    _show(job, json_)
    if job.state == "failed":
        raise typer.Exit(1)


@app.command("list")
def list_command(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="Only jobs registering this model.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 100,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List jobs, newest first."""
    with _finetune(ctx, home) as ft:
        jobs = ft.list(state=state, output_model=output, limit=limit)
    if json_:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    table = Table(title=f"{len(jobs)} job(s)", title_justify="left")
    for col in ("ID", "Method", "State", "Step", "Base", "Dataset", "Result", "Created"):
        table.add_column(col, no_wrap=col == "ID")
    for j in jobs:
        table.add_row(
            j.id[:12],
            j.method,
            _state(j),
            f"{j.step}/{j.max_steps}",
            esc(j.spec.get("base_model", "")),
            esc(j.spec.get("dataset", "")),
            esc(j.result_uri or ""),
            fmt_time(j.created_at),
        )
    out().print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Job id.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Show one job: state, progress, checkpoint, result or error."""
    with _finetune(ctx, home) as ft:
        job = ft.get(job_id)
    _show(job, json_)


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Job id.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Cancel an unfinished job; its worker stops after the current step."""
    with _finetune(ctx, home) as ft:
        job = ft.cancel(job_id)
    _show(job, json_)


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Job id.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Restart a failed job, or one whose worker died, from its last checkpoint (in a worker)."""
    with _finetune(ctx, home) as ft:
        job = ft.resume(job_id)
    _show(job, json_)


@app.command("merge")
def merge_command(
    ctx: typer.Context,
    adapter: Annotated[str, typer.Argument(help="Adapter version: models:/NAME[/VERSION|@ALIAS].")],
    name: Annotated[str, typer.Argument(help="Register the merged model under this name.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Merge an adapter into its base model and register the full model as a new version."""
    with _finetune(ctx, home) as ft:
        mv = ft.merge(adapter, name)
    if json_:
        print_json(mv.model_dump(mode="json"))
        return
    out().print(f"registered [bold]{esc(mv.uri)}[/] ({mv.flavor}, {len(mv.files)} files)")
