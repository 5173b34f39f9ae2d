"""``opsloop workflows``: run, list and show workflows; schedules, event triggers and the inbox."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_time,
    importable_cwd,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    from opsloop.workflows._client import Workflows

app = room_app(
    "workflows",
    "Workflows: step pipelines with a sound cache, retries and resume, schedules and triggers.",
)

WorkflowArg = Annotated[
    str,
    typer.Argument(
        metavar="WORKFLOW", help="module:attr of a @workflow, or a YAML file.", show_default=False
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="KEY=VALUE (the value is read as JSON when it parses)."),
]
ExecutorOpt = Annotated[str, typer.Option("--executor", "-e", help="inline, process or ray.")]


@contextlib.contextmanager
def _workflows(ctx: typer.Context, home: Path | None) -> Iterator[Workflows]:
    from opsloop.workflows._client import Workflows  # lazy: loads sqlalchemy

    importable_cwd()
    with command_context(ctx, home) as context:
        yield context.room(Workflows)


def _params(items: list[str] | None) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--param {item!r} must look like KEY=VALUE")
        try:
            got[key] = json.loads(value)
        except ValueError:
            got[key] = value
    return got


def _print_steps(steps: list[Any]) -> None:
    cols = [
        Col("step", key=True),
        Col("status"),
        Col("attempts", justify="right"),
        Col("seconds", justify="right"),
        Col("run", key=True, drop=2),
        Col("error", drop=3),
    ]
    rows = [
        [
            esc(s.name),
            s.status,
            str(s.attempts),
            f"{s.seconds:.3f}",
            s.run_id or "",
            esc(s.error[:200]),
        ]
        for s in steps
    ]
    out().print(fit_table(cols, rows))


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    workflow: WorkflowArg,
    param: ParamOpt = None,
    executor: ExecutorOpt = "inline",
    resume: Annotated[
        str | None, typer.Option("--resume", help="Resume this failed workflow run instead.")
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Run a workflow (a run with a child run per step; cached steps are not run again).

    opsloop workflows run my_steps:pipeline -p rows=100 -p alpha=0.5
    opsloop workflows run pipeline.yaml --executor process
    """
    from opsloop.workflows._errors import StepFailed  # lazy: with the client

    with _workflows(ctx, home) as wf:
        try:
            if resume:
                res = wf.resume(resume, executor=executor if executor != "inline" else None)
            else:
                res = wf.run(workflow, _params(param), executor=executor)
        except StepFailed as e:
            if e.result is not None and not as_json:
                _print_steps(e.result.steps)
            raise
        if as_json:
            print_json(res.model_dump(mode="json"))
            return
        _print_steps(res.steps)
        out().print(
            f"workflow [bold]{esc(res.workflow)}[/] {res.status.lower()}: run {res.run_id}, "
            f"{res.cache_hits}/{len(res.steps)} steps from the cache"
        )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only this one.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Workflow runs, newest first."""
    with _workflows(ctx, home) as wf:
        runs = wf.list_runs(workflow, limit=limit)
        if as_json:
            print_json([r.model_dump(mode="json") for r in runs])
            return
        cols = [
            Col("run", key=True),
            Col("workflow", key=True),
            Col("status"),
            Col("started", min_width=19),
            Col("trigger", drop=2),
        ]
        rows = [
            [
                r.id,
                esc(r.name),
                r.status.value,
                fmt_time(r.start_time),
                esc(r.tags.get("opsloop.workflow.trigger", "")),
            ]
            for r in runs
        ]
        out().print(fit_table(cols, rows, title="Workflow runs"))


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", show_default=False)],
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """A workflow run: its steps (cache hits shown), attempts and lineage."""
    with _workflows(ctx, home) as wf:
        shown = wf.show(run_id)
        if as_json:
            print_json(shown)
            return
        run = shown["run"]
        out().print(f"[bold]{esc(run['name'])}[/]  {run['status']}  run {run['id']}")
        cols = [
            Col("step", key=True),
            Col("status"),
            Col("cache"),
            Col("attempts"),
            Col("inputs", drop=2),
            Col("digest", drop=3),
        ]
        rows = [
            [
                esc(s["name"]),
                s["status"],
                s["cache"],
                str(len(s["attempts"])),
                esc(", ".join(s["inputs"])),
                (s["digest"] or "")[:19],
            ]
            for s in shown["steps"]
        ]
        out().print(fit_table(cols, rows))


@app.command("schedule")
def schedule_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    workflow: WorkflowArg,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Five-field cron (UTC), e.g. '0 3 * * *'.")
    ] = None,
    on: Annotated[
        str | None,
        typer.Option("--on", help="An event: registry.alias_moved, monitoring.alert, ..."),
    ] = None,
    match: Annotated[
        list[str] | None, typer.Option("--match", help="KEY=VALUE the event's payload must have.")
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Run on every Nth matching event.")] = 1,
    param: ParamOpt = None,
    executor: ExecutorOpt = "inline",
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Run a workflow on a schedule or on an event (while `opsloop server` runs).

    opsloop workflows schedule nightly my_steps:pipeline --cron "0 3 * * *"
    opsloop workflows schedule retrain my_steps:pipeline --on feedback.created --every 50
    """
    if (cron is None) == (on is None):
        raise InvalidArgument("give one of --cron and --on")
    with _workflows(ctx, home) as wf:
        if cron is not None:
            t = wf.schedule(name, workflow, cron, _params(param), executor=executor)
        else:
            t = wf.on(
                name,
                workflow,
                on or "",
                _params(param),
                match=_params(match),
                every=every,
                executor=executor,
            )
        if as_json:
            print_json(t.model_dump(mode="json"))
            return
        when = f"next at {fmt_time(t.next_at)}" if t.kind == "cron" else f"on {t.spec['event']}"
        out().print(f"trigger [bold]{esc(t.name)}[/] runs {esc(t.workflow)} {when}")


@app.command("triggers")
def triggers_cmd(ctx: typer.Context, as_json: JsonOpt = False, home: HomeOption = None) -> None:
    """Schedules and event triggers."""
    with _workflows(ctx, home) as wf:
        ts = wf.triggers()
        if as_json:
            print_json([t.model_dump(mode="json") for t in ts])
            return
        cols = [Col("name", key=True), Col("workflow"), Col("kind"), Col("when")]
        rows = [
            [
                esc(t.name),
                esc(t.workflow),
                t.kind,
                esc(t.spec.get("cron") or f"{t.spec.get('event')} x{t.spec.get('every', 1)}"),
            ]
            for t in ts
        ]
        out().print(fit_table(cols, rows, title="Triggers"))


@app.command("unschedule")
def unschedule_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    home: HomeOption = None,
) -> None:
    """Delete a schedule or event trigger."""
    with _workflows(ctx, home) as wf:
        wf.delete_trigger(name)
        out().print(f"deleted trigger {esc(name)}")


@app.command("events")
def events_cmd(
    ctx: typer.Context,
    trigger: Annotated[str | None, typer.Option("--trigger", "-t")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """The event inbox: each event received, its status and the run it started."""
    with _workflows(ctx, home) as wf:
        evs = wf.events(trigger=trigger, limit=limit)
        if as_json:
            print_json([e.model_dump(mode="json") for e in evs])
            return
        cols = [
            Col("id", justify="right"),
            Col("event"),
            Col("status"),
            Col("run", key=True),
            Col("key", drop=2),
            Col("error", drop=3),
        ]
        rows = [
            [str(e.id), esc(e.event), e.status, e.run_id or "", esc(e.key), esc(e.error[:120])]
            for e in evs
        ]
        out().print(fit_table(cols, rows, title="Events"))


@app.command("emit")
def emit_cmd(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", show_default=False)],
    key: Annotated[str, typer.Option("--key", help="Idempotency key (once per key).")],
    param: Annotated[list[str] | None, typer.Option("--data", "-d", help="KEY=VALUE")] = None,
    home: HomeOption = None,
) -> None:
    """Record an event, e.g. a monitor's alert: `opsloop workflows emit monitoring.alert --key a1`."""
    with _workflows(ctx, home) as wf:
        n = wf.emit(event, key, _params(param))
        out().print(f"{event}: {n} trigger(s) reached")
