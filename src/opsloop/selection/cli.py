"""``opsloop select``: evaluate candidate models on one dataset, show the leaderboard, register the pick."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import HomeOption, command_context, err, esc, out, print_json
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    from opsloop.selection._types import LeaderboardRow, Selection


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "n/a" if v is None else format(v, spec)


def _split_candidates(values: list[str]) -> list[str]:
    out_: list[str] = []
    for v in values:
        # Endpoint URLs contain no commas, so a comma always separates candidates.
        out_.extend(p.strip() for p in v.split(",") if p.strip())
    if not out_:
        raise InvalidArgument("--candidates names no candidate")
    return out_


def _objectives(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    objs: dict[str, str] = {}
    for v in values:
        name, sep, direction = v.partition("=")
        if not sep:
            raise InvalidArgument(f"--objective {v!r} must look like quality=max or memory_mb=min")
        objs[name.strip()] = direction.strip()
    return objs


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(candidate: str, done: int, total: int) -> None:
            if candidate not in tasks:
                tasks[candidate] = bar.add_task(esc(candidate), total=total)
            bar.update(tasks[candidate], completed=done)

        yield update


def leaderboard_table(s: Selection) -> Table:
    t = Table(title="Leaderboard", title_justify="left")
    t.add_column("#", justify="right")
    t.add_column("candidate")
    t.add_column("quality (95% CI)", justify="right")
    for m in s.metrics[1:]:
        t.add_column(m, justify="right")
    for col in ("p50 ms", "p95 ms", "tok/s", "$ / 1k req", "memory MB", "errors"):
        t.add_column(col, justify="right")
    t.add_column("")
    for i, r in enumerate(s.leaderboard.rows, 1):
        t.add_row(str(i), esc(r.candidate), _quality(r), *_cells(r, s), _mark(r, s))
    return t


def _quality(r: LeaderboardRow) -> str:
    q = _fmt(r.quality)
    if r.quality_ci is not None:
        q += f" ({r.quality_ci[0]:.2f}-{r.quality_ci[1]:.2f})"
    return q


def _cells(r: LeaderboardRow, s: Selection) -> list[str]:
    return [
        *(_fmt(r.metrics.get(m)) for m in s.metrics[1:]),
        _fmt(r.p50_latency_ms, ".0f"),
        _fmt(r.p95_latency_ms, ".0f"),
        _fmt(r.tokens_per_s, ".1f"),
        _fmt(r.cost_per_1k_usd, ".4g"),
        _fmt(r.memory_mb, ".0f"),
        f"{r.errors}/{r.examples}",
    ]


def _mark(r: LeaderboardRow, s: Selection) -> str:
    marks = []
    if r.candidate == s.recommendation.candidate:
        marks.append("[bold green]★ recommended[/]")
    if r.pareto:
        marks.append("[cyan]pareto[/]")
    if r.violations:
        marks.append("[red]" + esc("; ".join(r.violations)) + "[/]")
    return " ".join(marks)


def select_command(
    ctx: typer.Context,
    candidates: Annotated[
        list[str],
        typer.Option(
            "--candidates",
            "-c",
            metavar="SPECS",
            help="Comma-separated candidates (repeatable): `local:smollm2`, `local:gemma3`, "
            "`models:/NAME@ALIAS`, `openai:MODEL@http://host:port/v1`.",
            show_default=False,
        ),
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            metavar="NAME@VERSION",
            help="Evaluation dataset version. With --rows: the dataset the file is stored "
            "into first (a new version, or the same one for the same content).",
            show_default=False,
        ),
    ] = None,
    rows: Annotated[
        Path | None,
        typer.Option("--rows", metavar="FILE.jsonl", help="Evaluation rows as JSON lines."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="Metric name (repeatable); the first is the quality metric."
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            help="Template with {{column}} placeholders, or a prompts:/ URI. "
            "Default: the input column is the user's message.",
        ),
    ] = None,
    input_column: Annotated[str, typer.Option("--input-column")] = "question",
    target_column: Annotated[str, typer.Option("--target-column")] = "answer",
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 64,
    max_p95_ms: Annotated[float | None, typer.Option("--max-p95-ms")] = None,
    max_cost_per_1k: Annotated[
        float | None, typer.Option("--max-cost-per-1k", help="USD per 1,000 requests.")
    ] = None,
    max_memory_mb: Annotated[float | None, typer.Option("--max-memory-mb")] = None,
    min_quality: Annotated[float | None, typer.Option("--min-quality")] = None,
    objective: Annotated[
        list[str] | None,
        typer.Option(
            "--objective",
            help="Pareto objective as COLUMN=max|min (repeatable). "
            "Default: quality=max, p95_latency_ms=min, cost_per_1k_usd=min.",
        ),
    ] = None,
    register: Annotated[
        str | None,
        typer.Option("--register", metavar="NAME", help="Register the recommended model."),
    ] = None,
    experiment: Annotated[str, typer.Option("--experiment")] = "model-selection",
    warmup: Annotated[int, typer.Option("--warmup", help="Unmeasured requests first.")] = 1,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Converted model weights.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Evaluate candidate models on one dataset: quality, latency, throughput, cost and memory.

    Prints a leaderboard with the Pareto front and the recommendation (the best
    quality meeting the limits), records everything as runs, and with
    `--register` registers the recommended model.
    """
    from opsloop.registry import Registry  # lazy: loads sqlalchemy
    from opsloop.selection._candidates import parse_candidate  # lazy: loads the registry
    from opsloop.selection._data import datasets_of, read_jsonl  # lazy: loads sqlalchemy
    from opsloop.selection._select import select_model  # lazy: loads sqlalchemy and numpy

    specs = _split_candidates(candidates)
    for spec in specs:
        parse_candidate(spec)  # a typo is named before anything is read or stored
    if rows is None and dataset is None:
        raise InvalidArgument("give --dataset NAME@VERSION, --rows FILE.jsonl, or both")
    constraints = {
        "max_p95_latency_ms": max_p95_ms,
        "max_cost_per_1k_usd": max_cost_per_1k,
        "max_memory_mb": max_memory_mb,
        "min_quality": min_quality,
    }
    with command_context(ctx, home) as context:
        for spec in specs:
            if spec.startswith("models:/"):
                context.room(Registry).resolve(spec)  # NotFound before any row is stored
        data: Any = dataset
        if rows is not None and dataset is None:
            data = read_jsonl(rows)
        elif rows is not None and dataset is not None:
            read_jsonl(rows)  # the same clear errors for a bad file, before anything is stored
            name = dataset.split("@", 1)[0]
            msg = f"from {rows.name} by opsloop select"
            data = datasets_of(context).create(name, rows, message=msg, format="jsonl").id
        with _progress(not json_) as update:
            s = select_model(
                specs,
                data,
                metrics=metric or ["exact_match"],
                prompt=prompt,
                input_column=input_column,
                target_column=target_column,
                max_tokens=max_tokens,
                constraints={k: v for k, v in constraints.items() if v is not None},
                objectives=_objectives(objective),
                register_as=register,
                client=context,
                progress=update,
                warmup=warmup,
                experiment=experiment,
                cache_dir=cache_dir,
            )
    if json_:
        print_json(s.to_dict())
    else:
        con = out()
        con.print(leaderboard_table(s))
        rec = s.recommendation
        if rec.candidate is not None:
            con.print(f"[bold green]recommended[/]: {esc(rec.reason)}")
        else:
            con.print(f"[bold red]no recommendation[/]: {esc(rec.reason)}")
        if s.registered_uri:
            con.print(f"registered: [bold]{esc(s.registered_uri)}[/]")
        con.print(f"selection run: {s.run_id} (UI: /ui/#/selections/{s.run_id})")
    if register is not None and s.registered is None:
        err().print("[red]nothing registered: no candidate met the constraints[/]")
        raise typer.Exit(1)
