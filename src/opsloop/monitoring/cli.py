"""``opsloop monitoring``: live metrics, drift, monitors and alerts from the command line."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

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
from opsloop.monitoring._client import Monitoring

app = room_app(
    "monitoring",
    "Served models' prediction log, live metrics, drift, monitors and alerts.",
)


@contextlib.contextmanager
def _monitoring(ctx: typer.Context, home: Path | None) -> Iterator[Monitoring]:
    with command_context(ctx, home) as context:
        yield context.room(Monitoring)


def _ms(v: float | None, unit: str = "ms") -> str:
    return "" if v is None else f"{v:.1f} {unit}"


@app.command("summary")
def summary_command(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment (the served model's name).")],
    minutes: Annotated[int, typer.Option(help="The window: the last N minutes.", min=1)] = 5,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Request rate, errors and latency percentiles of a deployment over the last minutes."""
    with _monitoring(ctx, home) as mon:
        now = int(time.time() * 1000)
        s = mon.summary(deployment, since=now - minutes * 60_000, until=now)
    if json_:
        print_json(s)
        return
    out().print(
        f"{esc(deployment)}: {s['requests']} requests ({s['request_rate']:.2f}/s), "
        f"error rate {s['error_rate']:.2%}, latency p50 {_ms(s['latency_p50'])}, "
        f"p95 {_ms(s['latency_p95'])}, p99 {_ms(s['latency_p99'])}"
    )


@app.command("monitors")
def monitors_command(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """List monitors."""
    with _monitoring(ctx, home) as mon:
        items = mon.monitors()
    if json_:
        print_json([m.model_dump(mode="json") for m in items])
        return
    cols = [
        Col("Name", key=True),
        Col("Kind"),
        Col("Deployment", key=True),
        Col("Check", drop=1),
        Col("Every", drop=2),
        Col("Webhook", drop=0),
    ]
    rows = [
        [
            esc(m.name),
            m.kind,
            esc(m.deployment),
            esc(
                f"{m.metric} {m.op} {m.threshold}"
                if m.kind == "metric"
                else f"drift vs {m.reference}"
                if m.kind == "drift"
                else f"{m.text} embeddings vs {m.reference}"
            ),
            f"{m.interval_s}s / {m.window_s}s",
            esc(m.webhook_url or ""),
        ]
        for m in items
    ]
    out().print(fit_table(cols, rows, title=f"{len(items)} monitor(s)"))


@app.command("alerts")
def alerts_command(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's alerts.")] = None,
    state: Annotated[str | None, typer.Option(help="firing or resolved.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 50,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Alert history, newest first."""
    with _monitoring(ctx, home) as mon:
        items = mon.alerts(monitor=monitor, state=state, limit=limit)
    if json_:
        print_json([a.model_dump(mode="json") for a in items])
        return
    cols = [
        Col("ID", key=True),
        Col("Monitor", key=True),
        Col("State"),
        Col("Message"),
        Col("Opened", drop=1, min_width=19),
        Col("Resolved", drop=0, min_width=19),
    ]
    rows = [
        [
            a.id[:12],
            esc(a.monitor),
            "[red]firing[/]" if a.state == "firing" else "[green]resolved[/]",
            esc(a.message),
            fmt_time(a.opened_at),
            fmt_time(a.resolved_at),
        ]
        for a in items
    ]
    out().print(fit_table(cols, rows, title=f"{len(items)} alert(s)"))


@app.command("run")
def run_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Check a monitor now, on its last closed window (the server also runs it on schedule)."""
    with _monitoring(ctx, home) as mon:
        run = mon.run_monitor(name)
    if json_:
        print_json(run.model_dump(mode="json"))
        return
    verdict = run.skipped or ("breached" if run.breached else "ok")
    change = f"; alert {run.alert.change}" if run.alert else ""
    out().print(f"{esc(name)}: {verdict} (value {run.value}){change}")


@app.command("scores")
def scores_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The score (e.g. thumbs, or a judge's score).")],
    hours: Annotated[int, typer.Option(help="The window: the last N hours.", min=1)] = 24,
    bucket: Annotated[int, typer.Option(help="Bucket size in seconds.", min=60)] = 3600,
    by: Annotated[
        str, typer.Option(help="Group by: prompt, model, or both (comma-separated).")
    ] = "prompt,model",
    source: Annotated[
        str | None, typer.Option(help="Only annotations from human, llm_judge or code.")
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Score trends of traced LLM apps: count and mean per time bucket, prompt version, model."""
    with _monitoring(ctx, home) as mon:
        now = int(time.time() * 1000)
        groups = [g.strip() for g in by.split(",") if g.strip()]
        points = mon.scores(
            name,
            since=now - hours * 3_600_000,
            until=now,
            bucket_s=bucket,
            by=groups,
            source=source,
        )
    if json_:
        print_json(points)
        return
    cols = [
        Col("Time", key=True, min_width=19),
        Col("Prompt", key=True),
        Col("Model", key=True),
        Col("Count"),
        Col("Mean"),
    ]
    rows = [
        [
            fmt_time(p["t"]),
            esc(p.get("prompt") or ""),
            esc(p.get("model") or ""),
            str(p["count"]),
            f"{p['mean']:.3f}",
        ]
        for p in points
    ]
    out().print(fit_table(cols, rows, title=f"{esc(name)}: {len(points)} point(s)"))


@app.command("usage")
def usage_command(
    ctx: typer.Context,
    route: Annotated[str | None, typer.Option(help="Only this gateway route.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this upstream model.")] = None,
    minutes: Annotated[int, typer.Option(help="The window: the last N minutes.", min=1)] = 60,
    bucket: Annotated[int, typer.Option(help="Bucket size in seconds (x60).", min=60)] = 300,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """The LLM gateway's cost, cache hits and guardrail hits per time bucket, route and model."""
    with _monitoring(ctx, home) as mon:
        now = int(time.time() * 1000)
        points = mon.usage(
            route=route, model=model, since=now - minutes * 60_000, until=now, bucket_s=bucket
        )
    if json_:
        print_json(points)
        return
    cols = [
        Col("Time", key=True, min_width=19),
        Col("Route", key=True),
        Col("Model", key=True),
        Col("Requests"),
        Col("Cost ($)"),
        Col("Cache hits", drop=1),
        Col("Guardrail hits", drop=0),
    ]
    rows = [
        [
            fmt_time(p["t"]),
            esc(p.get("route") or ""),
            esc(p.get("model") or ""),
            str(p["requests"]),
            f"{p['cost']:.6f}",
            f"{p['cache_hits']}/{p['cache_hits'] + p['cache_misses']}",
            str(p["guardrail_hits"]),
        ]
        for p in points
    ]
    out().print(fit_table(cols, rows, title=f"gateway usage: {len(points)} point(s)"))
