"""``opsloop tune``: run a study from a YAML spec, show its best trials and Pareto front, list studies."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
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
    fmt_duration,
    fmt_time,
    fmt_value,
    global_options,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.tuning._spec import load_study_spec

if TYPE_CHECKING:
    from opsloop.tuning._client import Tuning
    from opsloop.tuning.entities import StudySummary

app = room_app(
    "tune",
    "Hyperparameter tuning: run studies (every trial a run), show best trials and Pareto fronts.",
)

StudyArg = Annotated[str, typer.Argument(metavar="STUDY", help="Study name.", show_default=False)]


@contextlib.contextmanager
def _tuning(ctx: typer.Context, home: Path | None) -> Iterator[Tuning]:
    from opsloop.tuning._client import Tuning  # lazy: loads sqlalchemy

    with command_context(ctx, home) as context:
        yield context.room(Tuning)


def load_objective(ref: str) -> Any:
    """``package.module:function`` or ``path/to/file.py:function`` to the function itself."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise InvalidArgument(
            f"--objective {ref!r} must look like module:function or file.py:function"
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise InvalidArgument(f"objective file {path} does not exist")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise InvalidArgument(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        sys.path.insert(0, str(path.resolve().parent))
        spec.loader.exec_module(module)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # a module next to the spec, like `python -m`
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InvalidArgument(f"cannot import objective module {target!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InvalidArgument(f"{target} has no function {attr!r}")
    return fn


@app.command("run")
def run(
    ctx: typer.Context,
    spec: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC", help="YAML or JSON study spec (or just a space).", show_default=False
        ),
    ],
    objective: Annotated[
        str | None,
        typer.Option(
            "--objective",
            "-o",
            metavar="MODULE:FUNCTION",
            help="The objective (default: the spec's).",
        ),
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials",
            "-n",
            min=1,
            help="Finished trials the study should hold (default: the spec's).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", metavar="NAME", help="Study name (default: the spec's or file name)."
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", metavar="local|processes|ray", help="Where trials run.")
    ] = "local",
    n_jobs: Annotated[
        int,
        typer.Option(
            "--n-jobs",
            "-j",
            help="Parallel trials (threads, processes or Ray tasks; -1: all CPUs).",
        ),
    ] = 1,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.001, help="Stop after this many seconds.")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="Ray cluster to join (default: start one here).",
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", metavar="URL", help="Optuna storage (default: next to opsloop's database)."
        ),
    ] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Run (or resume) a study: every trial becomes a child run of the study's run.

    Re-running the same command after a crash continues the study.

    Examples:

        opsloop tune run space.yaml --objective train:objective --n-trials 50
        opsloop tune run space.yaml -o opsloop.tuning.examples:quadratic -n 20 --backend ray -j 4
    """
    import optuna

    # Optuna's line per trial would drown the summary (the trials are runs anyway),
    # and its import set its level back to INFO: quiet again unless --verbose.
    if not global_options(ctx).get("verbose"):
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    s = load_study_spec(spec)
    ref = objective or s.objective
    if not ref:
        raise InvalidArgument(
            "no objective: pass --objective module:function or set 'objective:' in the spec"
        )
    fn = load_objective(ref)
    study_name = name or s.name or spec.stem
    with _tuning(ctx, home) as tuning:
        study = tuning.create_study(
            study_name,
            directions=s.directions,
            objectives=s.objectives,
            search_space=s.space,
            sampler=s.sampler,
            pruner=s.pruner,
            experiment=s.experiment,
            storage=storage,
        )
        target = n_trials or s.n_trials
        with _trial_progress(study, target, backend, enabled=not json_) as counted:
            summary = study.optimize(
                counted(fn),
                n_trials=target,
                timeout=timeout or s.timeout,
                n_jobs=n_jobs,
                backend=backend,
                ray_address=ray_address,
            )
    if json_:
        print_json(summary.model_dump(mode="json"))
        return
    _print_summary(summary, trials=False)


@contextlib.contextmanager
def _trial_progress(
    study: Any, target: int | None, backend: str, *, enabled: bool
) -> Iterator[Callable[[Any], Any]]:
    """A progress bar of finished trials; yields a wrapper that counts the objective's calls.

    Trials run here (``local``) are counted as they finish; on other backends
    the objective runs elsewhere, so the bar shows the elapsed time only.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out(),
        transient=True,
        disable=not enabled,
    ) as bar:
        done = study.runner.finished_count()
        where = "" if backend == "local" else f" on {backend} (counted at the end)"
        task = bar.add_task(f"trials{where}", total=target, completed=done)

        def counted(fn: Any) -> Any:
            if backend != "local":
                return fn  # pickled to other processes: left as it is

            @functools.wraps(fn)
            def objective(trial: Any) -> Any:
                try:
                    return fn(trial)
                finally:
                    bar.advance(task)

            return objective

        yield counted


@app.command("show")
def show(
    ctx: typer.Context,
    study: StudyArg,
    trials: Annotated[bool, typer.Option("--trials", help="Also list every trial.")] = False,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Show a study: trial counts, the best trial (one objective) or the Pareto front (several).

    Examples:

        opsloop tune show iris-rf
        opsloop tune show iris-rf --trials --json
    """
    with _tuning(ctx, home) as tuning:
        summary = tuning.summary(study)
    if json_:
        data = summary.model_dump(mode="json")
        if not trials:
            data.pop("trials")
        print_json(data)
        return
    _print_summary(summary, trials=trials)


@app.command("list")
def list_studies(ctx: typer.Context, json_: JsonOpt = False, home: HomeOption = None) -> None:
    """List tuning studies.

    Examples:

        opsloop tune list
    """
    with _tuning(ctx, home) as tuning:
        studies = tuning.list_studies()
    if json_:
        print_json([s.model_dump(mode="json") for s in studies])
        return
    if not studies:
        out().print(
            "No studies yet. Run one: opsloop tune run spec.yaml --objective module:function"
        )
        return
    cols = [
        Col("Name", key=True),
        Col("Objectives", drop=1),
        Col("Run", key=True),
        Col("Created", drop=2, min_width=19),
        Col("Storage", drop=3),
    ]
    rows = []
    for s in studies:
        objs = ", ".join(
            f"{o} ({'max' if d == 'maximize' else 'min'})"
            for d, o in zip(s.directions, s.objectives, strict=True)
        )
        rows.append(
            [esc(s.name), esc(objs), s.run_id or "-", fmt_time(s.created_at), esc(s.storage)]
        )
    out().print(fit_table(cols, rows, title="Tuning studies"))


def _print_summary(s: StudySummary, *, trials: bool) -> None:
    st = s.study
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(s.counts.items())) or "no trials"
    out().print(f"[bold]{esc(st.name)}[/]  ({counts})  run {st.run_id}")
    params = sorted({k for t in s.trials for k in t.params})
    if len(st.directions) == 1:
        if not s.best:
            out().print("No complete trial yet.")
        else:
            b = s.best[0]
            out().print(
                f"Best trial {b.number}: {esc(st.objectives[0])} = {fmt_value(b.values[0] if b.values else None)}"
                f"  (run {b.run_id})"
            )
            for k, v in b.params.items():
                out().print(f"  {esc(k)} = {esc(fmt_value(v))}")
    else:
        table = Table(title=f"Pareto front ({len(s.pareto_front)} trials)", title_justify="left")
        table.add_column("Trial", justify="right")
        for d, o in zip(st.directions, st.objectives, strict=True):
            table.add_column(f"{o} {'↑' if d == 'maximize' else '↓'}", justify="right")
        for k in params:
            table.add_column(esc(k))
        for p in s.pareto_front:
            table.add_row(
                str(p.number),
                *(fmt_value(v) for v in p.values),
                *(esc(fmt_value(p.params.get(k))) for k in params),
            )
        out().print(table)
    if trials:
        table = Table(title="Trials", title_justify="left")
        table.add_column("Trial", justify="right")
        table.add_column("State")
        for o in st.objectives:
            table.add_column(esc(o), justify="right")
        table.add_column("Duration", justify="right")
        for k in params:
            table.add_column(esc(k))
        for t in s.trials:
            vals = t.values or [None] * len(st.objectives)
            dur = None if t.end_time is None or t.start_time is None else t.end_time - t.start_time
            table.add_row(
                str(t.number),
                t.state,
                *(fmt_value(v) for v in vals),
                fmt_duration(dur),
                *(esc(fmt_value(t.params.get(k))) for k in params),
            )
        out().print(table)
