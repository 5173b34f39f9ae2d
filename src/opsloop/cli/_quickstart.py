"""``opsloop quickstart``: train a real sweep, show the best runs, then serve the UI."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

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

from opsloop.cli._server import print_address
from opsloop.core.cli import HomeOption, esc, fmt_value, out, resolve_settings
from opsloop.core.serve import check_not_open
from opsloop.selection.cli import leaderboard_table as selection_table

if TYPE_CHECKING:
    from opsloop.quickstart import QuickstartResult


class RichReporter:
    """Draws the quickstart's steps as rich progress bars (one line per step)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.label = ""

    def begin(self, step: str, total: int | None = None) -> None:
        self._close()
        self.label = step
        self.task = self.progress.add_task(step, total=total)

    def advance(self, amount: int = 1, detail: str = "") -> None:
        if self.task is not None:
            desc = f"{self.label}  [dim]{esc(detail)}[/]" if detail else self.label
            self.progress.update(self.task, advance=amount, description=desc)

    def end(self, step: str, message: str = "") -> None:
        if self.task is not None:
            total = self.progress.tasks[self.task].total
            desc = f"[green]✓[/] {self.label}" + (f"  [dim]{esc(message)}[/]" if message else "")
            self.progress.update(
                self.task, completed=total or 1, total=total or 1, description=desc
            )
        self.task = None

    def _close(self) -> None:
        if self.task is not None:
            self.end(self.label)


_SUMMARY_COLUMNS = (
    ("val_f1", "F1"),
    ("val_accuracy", "Acc"),
    ("val_roc_auc", "ROC AUC"),
    ("val_loss", "Loss"),
)


def _summary(result: QuickstartResult, top: int = 5) -> Table:
    from opsloop.quickstart import RANK_METRIC  # lazy: loads sklearn

    table = Table(
        title=f"Best runs of {len(result.trials)} (validation scores, ranked by {RANK_METRIC})",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("Run", style="bold", no_wrap=True)
    for _, header in _SUMMARY_COLUMNS:
        table.add_column(header, justify="right", style="cyan")
    table.add_column("Epochs", justify="right")
    table.add_column("Time", justify="right")
    for i, t in enumerate(result.trials[:top], start=1):
        table.add_row(
            str(i),
            esc(t.name),
            *[fmt_value(t.metrics.get(key)) for key, _ in _SUMMARY_COLUMNS],
            str(t.epochs),
            f"{t.seconds:.1f}s",
            style="bold green" if i == 1 else None,
        )
    return table


def _front(result: QuickstartResult) -> Table:
    table = Table(
        title=f"Tuning study {result.tuning_study}: the F1 / latency Pareto front",
        title_justify="left",
    )
    for header in ("Trial", "Model", "F1", "Latency ms", "Params"):
        table.add_column(header, justify="left" if header in ("Model", "Params") else "right")
    for p in result.tuning_front:
        params = dict(p.get("params", {}))
        model = str(params.pop("model", ""))
        f1, latency = [*p.get("values", []), None, None][:2]
        table.add_row(
            str(p.get("number")),
            esc(model),
            fmt_value(f1),
            fmt_value(latency),
            esc(", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(params.items()))),
        )
    return table


def _answers(result: QuickstartResult) -> Table:
    table = Table(
        title=f"{result.docs_pipeline_uri}: questions about opsloop, answered from its docs",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("Question", ratio=1)
    table.add_column("Answer", ratio=2)
    table.add_column("Sources", ratio=1)
    table.add_column("Trace", no_wrap=True)
    for a in result.docs_answers:
        sources = ", ".join(
            sorted({str(c.get("path") or c.get("title") or "") for c in a.get("citations", [])})
        )
        answer = " ".join(str(a.get("answer", "")).split())
        if len(answer) > 280:
            answer = answer[:279] + "…"
        table.add_row(
            esc(a["question"]),
            esc(answer),
            esc(sources),
            esc(str(a.get("trace_id") or "")),
        )
    return table


def quickstart(
    ctx: typer.Context,
    home: HomeOption = None,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Train and report, but do not start the server.")
    ] = False,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Address the server listens on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port the server listens on.", min=1, max=65535)
    ] = 5000,
    trials: Annotated[
        int,
        typer.Option(
            metavar="N", help="How many configs of the sweep to train (1 to 12).", min=1, max=12
        ),
    ] = 8,
    tuning_trials: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Trials of the F1-vs-latency tuning study after the sweep (0 skips it).",
            min=0,
            max=200,
        ),
    ] = 12,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm/--no-llm",
            help="Also choose between the two bundled LLMs and build, serve and trace a "
            "question-answering pipeline over opsloop's docs (minutes on a CPU).",
        ),
    ] = True,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop/--no-loop",
            help="Then close the loop on the docs questions (`opsloop loop run`: replay, "
            "feedback, fine-tune SmolLM2, evaluate, gate; tens of minutes on a CPU).",
        ),
    ] = False,
    allow_open: Annotated[
        bool,
        typer.Option(
            "--allow-open",
            help="Serve without authentication on a non-loopback `--host` (refused otherwise).",
        ),
    ] = False,
) -> None:
    """Train a small real sweep, log everything, then open the UI on it.

    Trains scikit-learn models (SGD logistic regression, an MLP, gradient
    boosting) on the breast-cancer data bundled with scikit-learn, epoch by
    epoch, into the experiment `quickstart`: a parent run for the sweep and a
    child run per config, with params, per-epoch metrics (loss, accuracy, F1,
    ROC AUC), artifacts (confusion matrix, classification report, per-epoch
    metrics, feature importances, a learning-curve PNG) and system metrics.
    Registers the best model as `quickstart-classifier@champion`, then runs a
    multi-objective Optuna study (experiment `quickstart-tuning`: maximise F1,
    minimise prediction latency; each trial a child run, the Pareto front
    drawn on the study's run). With `--llm` (the default) it then scores the
    two bundled LLMs (SmolLM2-135M-Instruct, Gemma 3 270M) on a small
    question-answering set (`opsloop select`: quality, latency, tokens/s,
    memory; the recommended one registered as `quickstart-llm`), indexes
    opsloop's docs with the bundled MiniLM, registers a retrieval QA pipeline
    with citations as `quickstart-docs-qa@prod` and asks it a few questions
    (each a trace: see Traces in the UI). Then prints the results and serves
    the UI, the model and the pipeline (unless `--no-serve`).
    Needs the `quickstart` extra: `pip install 'opsloop[quickstart]'`.

    Examples:

        opsloop quickstart
        opsloop quickstart --home /tmp/demo --trials 4 --tuning-trials 0 --no-llm --no-serve
    """
    from opsloop.quickstart import run_quickstart  # lazy: loads sklearn

    settings = resolve_settings(home=home, ctx=ctx)
    if not no_serve:  # before the training, not after it
        check_not_open(settings, host, allow_open=allow_open)
    if settings.is_remote:
        out().print(f"Logging to the server at {esc(settings.tracking_uri)}", soft_wrap=True)
    else:
        out().print(f"opsloop home: {esc(settings.home)}", soft_wrap=True)
    with Progress(
        SpinnerColumn(finished_text=" "),
        # The description takes what is left, so counts and times are never cut.
        TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True)),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out(),
        expand=True,
    ) as progress:
        result = run_quickstart(
            settings,
            trials=trials,
            reporter=RichReporter(progress),
            tuning_trials=tuning_trials,
            llm=llm,
        )
    out().print(_summary(result))
    if result.tuning_study:
        out().print(_front(result))
    if result.selection is not None:
        out().print(selection_table(result.selection))
        if result.selection.run_id:
            out().print(
                f"  in the UI: /ui/#/selections/{result.selection.run_id} "
                "(leaderboard and Pareto chart)",
                soft_wrap=True,
            )
    if result.docs_answers:
        out().print(_answers(result))
        out().print("  in the UI: /ui/#/traces (each question's span tree)", soft_wrap=True)
    if loop:
        from opsloop.cli._loop import run_and_print  # lazy: loads the LLM stack

        run_and_print(settings)
    best = result.best
    out().print(
        f"Done in {result.seconds:.1f}s: trained {len(result.trials)} models. "
        f"Best: [bold green]{esc(best.name)}[/] (val_f1 {best.metrics['val_f1']:.4f})."
    )
    where = "" if settings.is_remote else f" --home {esc(settings.home)}"
    out().print("Look around from the terminal:")
    # soft_wrap: long command lines stay one line, so they can be copied.
    out().print(
        f'  opsloop runs list{where} --experiment quickstart --order-by "metrics.val_f1 DESC"',
        soft_wrap=True,
    )
    out().print(f"  opsloop runs show{where} {best.run_id}", soft_wrap=True)
    if no_serve or settings.is_remote:
        if not settings.is_remote:
            out().print(f"  opsloop server{where}", soft_wrap=True)
        return
    from opsloop.server import serve  # lazy: loads fastapi

    if result.model_uri is None:
        serve(
            settings,
            host=host,
            port=port,
            log_level="warning",
            allow_open=allow_open,
            on_ready=print_address,
        )
        out().print("opsloop server: stopped")
        return

    from opsloop.quickstart import serve_model_in_thread  # lazy: loads sklearn and fastapi

    # The model (and the docs QA pipeline) on the next ports, in this process,
    # while the UI server runs.
    with contextlib.ExitStack() as stack:
        model_url = stack.enter_context(
            serve_model_in_thread(
                result.model_uri,
                settings,
                host=host,
                port=port + 1 if port < 65535 else port - 1,
                trusted_types=result.trusted_types,
            )
        )
        out().print(
            f"Registered [bold]{esc(result.model_uri)}[/]; model served at "
            f"{model_url}/v1/predict  (see `opsloop deployments list{where}`)",
            soft_wrap=True,
        )
        if result.docs_pipeline_uri is not None and port + 2 <= 65535:
            qa_url = stack.enter_context(
                serve_model_in_thread(result.docs_pipeline_uri, settings, host=host, port=port + 2)
            )
            out().print(
                f"Docs QA pipeline [bold]{esc(result.docs_pipeline_uri)}[/] served at "
                f"{qa_url}/v1/predict  (each request is a trace: /ui/#/traces)",
                soft_wrap=True,
            )
        serve(
            settings,
            host=host,
            port=port,
            log_level="warning",
            allow_open=allow_open,
            on_ready=print_address,
        )
    out().print("opsloop server: stopped")
