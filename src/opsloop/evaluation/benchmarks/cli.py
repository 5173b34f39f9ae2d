"""``opsloop bench``: run standard benchmarks on a model, list the shipped tasks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    out,
    print_json,
    room_app,
)
from opsloop.evaluation.benchmarks._task import list_tasks

if TYPE_CHECKING:
    from opsloop.evaluation.benchmarks._runner import BenchmarkResult

app = room_app(
    "bench",
    help="Standard benchmarks (HellaSwag, PIQA, ARC, MMLU, ...): score a model, record a run.",
)


@app.command("tasks")
def tasks_command(json_: JsonOpt = False) -> None:
    """List the shipped benchmark tasks."""
    specs = list_tasks()
    if json_:
        print_json(
            [
                {
                    "name": s.name,
                    "output_type": s.output_type,
                    "num_fewshot": s.num_fewshot,
                    "metrics": list(s.metrics),
                    "source": s.source,
                    "description": s.description,
                }
                for s in specs
            ]
        )
        return
    cols = [
        Col("task", key=True),
        Col("type", drop=2),
        Col("shots", drop=1),
        Col("metrics", drop=0),
        Col("description", drop=3, min_width=16),
    ]
    rows = [
        [esc(s.name), s.output_type, str(s.num_fewshot), ", ".join(s.metrics), esc(s.description)]
        for s in specs
    ]
    out().print(fit_table(cols, rows, title="benchmark tasks", title_justify="center"))


@app.command("run")
def run_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="`local:smollm2`, `local:gemma3`, a `models:/` URI or a saved model folder.",
            show_default=False,
        ),
    ],
    tasks: Annotated[
        str,
        typer.Option(
            "--tasks", "-t", help="Comma-separated task names or YAML files.", show_default=False
        ),
    ],
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many examples per task.")
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, help="Requests (context, choice) per forward pass."),
    ] = 16,
    num_fewshot: Annotated[
        int | None,
        typer.Option("--num-fewshot", min=0, max=64, help="Override every task's shots."),
    ] = None,
    chat_template: Annotated[
        bool,
        typer.Option("--chat-template/--no-chat-template", help="Wrap each prompt as a user turn."),
    ] = False,
    sample_seed: Annotated[
        int | None,
        typer.Option(
            "--sample-seed", help="With --limit: a seeded random sample instead of the first N."
        ),
    ] = None,
    max_gen_toks: Annotated[
        int | None,
        typer.Option("--max-gen-toks", min=1, max=4096, help="Override generation length."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Benchmark data folder. Default: `$OPSLOOP_BENCHDATA`; without one, the "
            "standard set from the Hugging Face hub (with `datasets` installed), else the "
            "16 records per task shipped with opsloop (with `--limit 16` or less).",
        ),
    ] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="Experiment of the run.")
    ] = "benchmarks",
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Model cache (converted GGUF weights).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda.")] = None,
    share_context: Annotated[
        bool,
        typer.Option(
            "--share-context/--no-share-context",
            help="Score a question's choices from one run of its context.",
        ),
    ] = True,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Score a model on benchmark tasks and record the scores as a run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from opsloop.evaluation.benchmarks._runner import run_benchmark  # lazy: loads sqlalchemy

    with command_context(ctx, home) as context:
        bars: dict[str, Any] = {}
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=out() if not json_ else None, disable=json_, transient=True,
        ) as prog:  # fmt: skip

            def progress(task: str, n: int, total: int) -> None:
                if task not in bars:
                    bars[task] = prog.add_task(task, total=total)
                prog.advance(bars[task], n)

            result = run_benchmark(
                model, tasks, limit=limit, batch_size=batch_size, num_fewshot=num_fewshot,
                client=context, experiment=experiment, data_dir=data_dir,
                chat_template=chat_template, sample_seed=sample_seed, max_gen_toks=max_gen_toks,
                cache_dir=cache_dir, device=device, progress=progress, share_context=share_context,
            )  # fmt: skip
    if json_:
        print_json(result.to_dict())
        return
    _print_result(result)


def _print_result(result: BenchmarkResult) -> None:
    table = Table(title=f"{esc(result.model_id)} ({esc(result.model)})")
    for col in ("task", "n", "shots", "metric", "value", "± stderr"):
        table.add_column(col, justify="right" if col not in ("task", "metric") else "left")
    for name, t in result.tasks.items():
        for i, key in enumerate(k for k in t.metrics if k in ("acc", "acc_norm", "exact_match")):
            table.add_row(
                esc(name) if i == 0 else "", str(t.n) if i == 0 else "",
                str(t.num_fewshot) if i == 0 else "", key,
                f"{100 * t.metrics[key]:.2f}", f"{100 * t.metrics[key + '_stderr']:.2f}",
            )  # fmt: skip
    console = out()
    console.print(table)
    notes = {"excerpt": "the excerpt shipped with opsloop", "hub": "the Hugging Face hub",
             "hub-cache": "the hub copy kept in the home"}  # fmt: skip
    for name, t in result.tasks.items():
        if t.data in notes:
            console.print(f"{esc(name)}: data from {notes[t.data]}")
    console.print(
        f"{result.examples} examples in {result.seconds:.1f}s "
        f"({result.examples_per_s:.2f} examples/s), run {result.run_id}"
    )
