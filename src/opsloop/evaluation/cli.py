"""``opsloop eval``: run an evaluation, list evaluations, compare them, manage promotion gates."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from opsloop.core import Context
from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_time,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    from opsloop.evaluation._client import Evaluation

app = room_app(
    "eval", "Evaluation runs with bootstrap intervals, side-by-side comparison, promotion gates."
)
gate_app = room_app("gate", "A model's promotion gate.")
app.add_typer(gate_app)


def _evaluation(context: Context) -> Evaluation:
    from opsloop.evaluation._client import Evaluation  # lazy: loads sqlalchemy

    return context.room(Evaluation)


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _p(v: float | None) -> str:
    if v is None:
        return "-"
    text = f"{v:.3g}"
    return f"[bold green]{text}[/]" if v < 0.05 else text


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    candidate: Annotated[
        str,
        typer.Option(
            "--candidate",
            help="models:/NAME@ALIAS or /VERSION, a saved-model folder, or a provider spec (local:smollm2).",
        ),
    ],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset version, NAME@VERSION.")],
    metric: Annotated[list[str], typer.Option("--metric", help="Metric name (repeatable).")],
    target: Annotated[
        str | None, typer.Option("--target", help="Target column (default: guessed).")
    ] = None,
    input_column: Annotated[
        list[str] | None, typer.Option("--input", help="Input column (repeatable; default: all).")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", help="Prompt template with {{column}} placeholders, or prompts:/ URI."
        ),
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="For LLM candidates.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name.")] = None,
    experiment: Annotated[str, typer.Option("--experiment")] = "evaluations",
    n_bootstrap: Annotated[int, typer.Option("--n-bootstrap")] = 1000,
    confidence: Annotated[float, typer.Option("--confidence")] = 0.95,
    workers: Annotated[int, typer.Option("--workers", help="Parallel calls.")] = 1,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            metavar="TYPE",
            help="Trust this type name in a skops model file (repeatable), "
            "e.g. `sklearn.tree._tree.Tree` for tree models.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Evaluate a candidate on a dataset version and store the result as a run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from opsloop.evaluation._evaluate import evaluate  # lazy: loads sqlalchemy

    options = {"max_tokens": max_tokens} if max_tokens is not None else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        command_context(ctx, home) as context,
        Progress(
            *columns, TimeElapsedColumn(), console=out(), transient=True, disable=as_json
        ) as bar,
    ):
        task = bar.add_task("evaluating", total=None)
        res = evaluate(
            candidate, dataset, metrics=metric, target_column=target, input_columns=input_column,
            prompt=prompt, name=name, experiment=experiment, client=context,
            n_bootstrap=n_bootstrap, confidence=confidence, max_workers=workers,
            progress=lambda d, t: bar.update(task, completed=d, total=t), options=options,
            trusted_types=trust,
        )  # fmt: skip
    if as_json:
        print_json(res.model_dump(mode="json", exclude={"examples"}))
        return
    c = out()
    c.print(
        f"evaluation run [cyan]{res.run_id}[/] ({res.n_examples} examples, {res.n_errors} errors)"
    )
    t = Table("metric", "value", f"{res.confidence:.0%} CI")
    for key in res.metric_names:
        v, lo, hi = res.ci(key)
        t.add_row(esc(key), _num(v), f"[{_num(lo)}, {_num(hi)}]")
    for key in ("latency_p50_ms", "latency_p99_ms", "tokens_per_example", "cost_usd_total"):
        if key in res.metrics:
            t.add_row(key, _num(res.metrics[key]), "")
    c.print(t)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Option("--experiment")] = None,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """List evaluation runs with their aggregates."""
    with command_context(ctx, home) as context:
        client = _evaluation(context)
        runs = client.list(experiment=experiment)
    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    cols = [
        Col("run", key=True),
        Col("name", key=True),
        Col("candidate", drop=3),
        Col("dataset", drop=2),
        Col("started", drop=1, min_width=19),
        Col("metrics", drop=0, min_width=16),
    ]
    rows = []
    for r in runs:
        names = [n for n in r.params.get("metrics", "").split(",") if n]
        shown = ", ".join(f"{n}={_num(r.metrics[n].value)}" for n in names if n in r.metrics)
        rows.append([
            r.id, esc(r.name), esc(r.params.get("candidate", "")),
            esc(r.params.get("dataset", "")), fmt_time(r.start_time), esc(shown),
        ])  # fmt: skip
    out().print(fit_table(cols, rows))


@app.command("compare")
def compare_cmd(
    ctx: typer.Context,
    runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Evaluation run ids.")],
    metric: Annotated[str, typer.Option("--metric", help="Metric to compare on.")],
    baseline: Annotated[int, typer.Option("--baseline", help="Index of the baseline run.")] = 0,
    examples: Annotated[
        int, typer.Option("--examples", help="Show this many differing examples.")
    ] = 10,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Compare evaluation runs: aggregates, wins/losses vs the baseline, paired p-values."""
    if len(runs) < 2:
        raise InvalidArgument("give at least two evaluation run ids")
    with command_context(ctx, home) as context:
        client = _evaluation(context)
        cmp = client.compare(runs, metric=metric, baseline=baseline)
    if as_json:
        print_json(cmp.model_dump(mode="json"))
        return
    c = out()
    c.print(
        f"[bold]{esc(cmp.metric)}[/] on {cmp.n_common} common examples "
        f"(per example: {cmp.per_example_basis}; baseline: {cmp.candidates[cmp.baseline].run_id})"
    )
    t = Table("run", "candidate", "value", "CI", "Δ vs base", "Δ CI", "W/L/T",
              "p boot", "p perm", "p sign", "p McNemar")  # fmt: skip
    for i, cc in enumerate(cmp.candidates):
        is_base = i == cmp.baseline
        t.add_row(
            cc.run_id + (" (base)" if is_base else ""), esc(cc.candidate), _num(cc.value),
            f"[{_num(cc.ci_low)}, {_num(cc.ci_high)}]",
            "" if is_base else f"{cc.delta:+.4g}",
            "" if is_base else f"[{_num(cc.delta_ci_low)}, {_num(cc.delta_ci_high)}]",
            "" if is_base else f"{cc.wins}/{cc.losses}/{cc.ties}",
            "" if is_base else _p(cc.p_value_bootstrap),
            "" if is_base else _p(cc.p_value_permutation),
            "" if is_base else _p(cc.p_value_sign),
            "" if is_base else _p(cc.p_value_mcnemar),
        )  # fmt: skip
    c.print(t)
    differing = [e for e in cmp.examples if any(d not in (0, None) for d in e.diffs)]
    if examples > 0 and differing:
        et = Table("id", "reference", *[f"output {i}" for i in range(len(cmp.candidates))])
        for e in differing[:examples]:
            et.add_row(esc(e.id), esc(_short(e.reference)), *[esc(_short(o)) for o in e.outputs])
        c.print(f"{len(differing)} examples differ; the first {min(examples, len(differing))}:")
        c.print(et)


def _short(v: Any, n: int = 60) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


@gate_app.command("set")
def gate_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    rule: Annotated[
        list[str],
        typer.Option(
            "--rule",
            help='A rule as JSON, e.g. \'{"metric": "f1", "min_delta_vs": "champion", "tolerance": 0.005}\'.',
        ),
    ],
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Alias it guards (repeatable; default all).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Set (replace) a model's promotion gate."""
    try:
        rules = [json.loads(r) for r in rule]
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--rule must be JSON: {exc}") from None
    with command_context(ctx, home) as context:
        client = _evaluation(context)
        g = client.set_gate(model, rules, aliases=alias or None)
    out().print(f"gate of {esc(model)}: {len(g.rules)} rules")


@gate_app.command("show")
def gate_show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    home: HomeOption = None,
) -> None:
    """Show a model's promotion gate."""
    with command_context(ctx, home) as context:
        client = _evaluation(context)
        g = client.get_gate(model)
    print_json(g.model_dump(mode="json"))


@gate_app.command("delete")
def gate_delete(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    home: HomeOption = None,
) -> None:
    """Delete a model's promotion gate."""
    with command_context(ctx, home) as context:
        client = _evaluation(context)
        client.delete_gate(model)
    out().print(f"deleted the gate of {esc(model)}")
