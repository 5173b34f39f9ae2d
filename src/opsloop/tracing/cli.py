"""``opsloop traces``: list and search traces, show one as a timed tree, stats and prices."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

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
from opsloop.errors import InvalidArgument
from opsloop.tracing._client import Tracing

if TYPE_CHECKING:
    from opsloop.tracing.entities import SpanNode, TraceDetail

app = room_app(
    "traces", "LLM traces: list and search them, show one as a timed tree, stats, model prices."
)
prices_app = room_app("prices", "The model price table (USD per 1M tokens).")
app.add_typer(prices_app, name="prices")

TraceArg = Annotated[
    str, typer.Argument(metavar="TRACE_ID", help="Trace id (32 hex digits).", show_default=False)
]

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_STATUS_STYLE = {"OK": "green", "ERROR": "bold red", "UNSET": "dim"}
_KIND_STYLE = {
    "llm": "magenta",
    "chain": "cyan",
    "retriever": "yellow",
    "tool": "blue",
    "embedding": "bright_magenta",
    "agent": "bold cyan",
    "other": "white",
}


def parse_when(value: str | None) -> int | None:
    """Epoch ms from ``30m``/``2h``/``7d`` (that long ago), ``2025-01-31[T12:00]`` or epoch ms."""
    if value is None:
        return None
    v = value.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", v)
    if m:
        return int(time.time() * 1000 - float(m.group(1)) * _UNITS[m.group(2)])
    if v.isdigit():
        return int(v)
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise InvalidArgument(
            f"cannot read the time {value!r}: use 30m, 2h, 7d, an ISO date or epoch milliseconds"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@contextlib.contextmanager
def _tracing(ctx: typer.Context, home: Path | None) -> Iterator[Tracing]:
    with command_context(ctx, home) as context:
        yield context.room(Tracing)


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def fmt_cost(usd: float | None) -> str:
    if usd is None:
        return "-"
    if usd == 0:
        return "$0"
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def _when(us: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6))


@app.command("list")
def list_traces(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Exact trace name.")] = None,
    contains: Annotated[str | None, typer.Option(help="Text in the trace name.")] = None,
    status: Annotated[str | None, typer.Option(help="OK or ERROR.")] = None,
    user: Annotated[str | None, typer.Option(help="User id.")] = None,
    session: Annotated[str | None, typer.Option(help="Session id.")] = None,
    model: Annotated[str | None, typer.Option(help="Model used by some span.")] = None,
    min_latency: Annotated[
        float | None, typer.Option(metavar="MS", help="At least this long.")
    ] = None,
    max_latency: Annotated[
        float | None, typer.Option(metavar="MS", help="At most this long.")
    ] = None,
    min_cost: Annotated[
        float | None, typer.Option(metavar="USD", help="Costing at least this.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Started after: 30m, 2h, 7d, a date or epoch ms.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Started before (same forms as --since).")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Carrying this tag.")] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", "-f", help="Filter string, e.g. 'status = \"error\" and cost > 0.01'."
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            help="Sort key: start_time, latency_ms, cost, tokens, input_tokens, "
            "output_tokens, spans, errors or name."
        ),
    ] = "start_time",
    ascending: Annotated[bool, typer.Option("--asc", help="Smallest first.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Traces per page.")] = 25,
    page_token: Annotated[str | None, typer.Option(help="Continue from an earlier page.")] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """List traces, newest first (or by --sort), with filters."""
    with _tracing(ctx, home) as tr:
        page = tr.list_traces(
            limit=limit,
            page_token=page_token,
            sort=sort,
            order="asc" if ascending else "desc",
            name=name,
            name_contains=contains,
            status=status,
            user_id=user,
            session_id=session,
            model=model,
            min_latency_ms=min_latency,
            max_latency_ms=max_latency,
            min_cost=min_cost,
            since_ms=parse_when(since),
            until_ms=parse_when(until),
            tag=tag,
            filter=filter,
        )
    if json_:
        print_json(page.model_dump(mode="json"))
        return
    if not page.traces:
        out().print("no traces match")
        return
    cols = [
        Col("id", key=True),
        Col("name", key=True),
        Col("started", drop=3, min_width=19),
        Col("latency", justify="right", drop=0),
        Col("status", drop=0),
        Col("spans", justify="right", drop=4),
        Col("tokens in/out", justify="right", drop=2),
        Col("cost", justify="right", drop=1),
        Col("models", drop=5),
        Col("user", drop=6),
    ]
    rows = []
    for t in page.traces:
        rows.append(
            [
                t.id,
                esc(t.name),
                _when(t.start_us),
                fmt_ms(t.duration_ms),
                f"[{_STATUS_STYLE.get(t.status, 'white')}]{t.status}[/]",
                str(t.span_count),
                f"{t.input_tokens:,}/{t.output_tokens:,}",
                fmt_cost(t.total_cost),
                esc(", ".join(t.models)),
                esc(t.user_id or "-"),
            ]
        )
    out().print(fit_table(cols, rows, show_edge=False, header_style="bold"))
    if page.next_page_token:
        out().print(f"[dim]more: --page-token {page.next_page_token}[/]")


def _bar(node: SpanNode, total_ms: float, width: int = 24) -> str:
    if total_ms <= 0:
        return "▏"
    start = int(node.offset_ms / total_ms * width)
    length = max(1, round(node.duration_ms / total_ms * width))
    start = min(start, width - 1)
    length = min(length, width - start)
    return "·" * start + "█" * length + "·" * (width - start - length)


def _preview(v: Any, n: int = 100) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _label(node: SpanNode, total_ms: float, io: bool) -> Text:
    t = Text()
    t.append(_bar(node, total_ms), style="dim cyan")
    t.append(f" {node.name}", style="bold")
    t.append(f" [{node.kind}]", style=_KIND_STYLE.get(node.kind, "white"))
    t.append(f"  {fmt_ms(node.duration_ms)}", style="bold")
    t.append(f"  +{fmt_ms(node.offset_ms)}", style="dim")
    if node.status == "ERROR":
        t.append(f"  ERROR {node.status_message or ''}", style="bold red")
    if node.model:
        t.append(f"  {node.model}", style="magenta")
    if node.input_tokens is not None or node.output_tokens is not None:
        t.append(f"  {node.input_tokens or 0}→{node.output_tokens or 0} tok", style="dim")
    if node.cost:
        t.append(f"  {fmt_cost(node.cost)}", style="green")
    if io:
        if node.inputs is not None:
            t.append(f"\n  in:  {_preview(node.inputs)}", style="dim")
        if node.outputs is not None:
            t.append(f"\n  out: {_preview(node.outputs)}", style="dim")
    return t


def render_tree(trace: TraceDetail, *, io: bool = False) -> Tree:
    """A rich tree of the trace's spans with waterfall bars and timings."""
    head = Text()
    head.append(f"{trace.name}", style="bold")
    head.append(f"  {trace.id}", style="dim")
    head.append(f"  {fmt_ms(trace.duration_ms)}", style="bold")
    head.append(f"  {trace.status}", style=_STATUS_STYLE.get(trace.status, "white"))
    head.append(f"  {trace.span_count} spans")
    if trace.input_tokens or trace.output_tokens:
        head.append(f"  {trace.input_tokens:,}→{trace.output_tokens:,} tok")
    head.append(f"  {fmt_cost(trace.total_cost)}", style="green")
    if trace.user_id:
        head.append(f"  user {trace.user_id}", style="cyan")
    if trace.session_id:
        head.append(f"  session {trace.session_id}", style="cyan")
    tree = Tree(head)
    stack: list[tuple[Tree, SpanNode]] = [(tree, n) for n in reversed(trace.spans)]
    while stack:  # iterative: deep agent loops must not hit the recursion limit
        parent, node = stack.pop()
        branch = parent.add(_label(node, trace.duration_ms, io))
        stack.extend((branch, c) for c in reversed(node.children))
    return tree


@app.command("show")
def show(
    ctx: typer.Context,
    trace_id: TraceArg,
    io: Annotated[
        bool, typer.Option("--io", help="Also show each span's inputs and outputs.")
    ] = False,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Show a trace as a tree of spans with timings, tokens and cost."""
    with _tracing(ctx, home) as tr:
        trace = tr.get_trace(trace_id)
    if json_:
        print_json(trace.model_dump(mode="json"))
        return
    out().print(render_tree(trace, io=io))


@app.command("stats")
def stats(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Started after: 30m, 2h, 7d, a date or epoch ms.")
    ] = "7d",
    until: Annotated[str | None, typer.Option(help="Started before.")] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Trace counts, latency percentiles, tokens and cost per day and per model."""
    with _tracing(ctx, home) as tr:
        st = tr.stats(since_ms=parse_when(since), until_ms=parse_when(until))
    if json_:
        print_json(st.model_dump(mode="json"))
        return
    out().print(
        f"[bold]{st.traces:,} traces[/], {st.errors:,} with errors, p50 {fmt_ms(st.p50_ms)}, "
        f"p95 {fmt_ms(st.p95_ms)}, {st.input_tokens:,}→{st.output_tokens:,} tokens, {fmt_cost(st.cost)}"
    )
    if st.by_day:
        t = Table("day", "traces", "errors", "p50", "p95", "tokens in/out", "cost", show_edge=False)
        for d in st.by_day:
            t.add_row(
                d.day,
                f"{d.traces:,}",
                f"{d.errors:,}",
                fmt_ms(d.p50_ms),
                fmt_ms(d.p95_ms),
                f"{d.input_tokens:,}/{d.output_tokens:,}",
                fmt_cost(d.cost),
            )
        out().print(t)
    if st.by_model:
        t = Table("model", "calls", "p50", "p95", "tokens in/out", "cost", show_edge=False)
        for m in st.by_model:
            t.add_row(
                esc(m.model),
                f"{m.calls:,}",
                fmt_ms(m.p50_ms),
                fmt_ms(m.p95_ms),
                f"{m.input_tokens:,}/{m.output_tokens:,}",
                fmt_cost(m.cost),
            )
        out().print(t)


@app.command("delete")
def delete(ctx: typer.Context, trace_id: TraceArg, home: HomeOption = None) -> None:
    """Delete a trace and its spans."""
    with _tracing(ctx, home) as tr:
        tr.delete_trace(trace_id)
    out().print(f"deleted trace {trace_id}")


@prices_app.command("list")
def prices_list(ctx: typer.Context, json_: JsonOpt = False, home: HomeOption = None) -> None:
    """Show the price table and where each price comes from (default, file, custom)."""
    with _tracing(ctx, home) as tr:
        prices = tr.list_prices()
    if json_:
        print_json([p.model_dump(mode="json") for p in prices])
        return
    cols = [
        Col("model", key=True),
        Col("input $/1M", drop=0),
        Col("output $/1M", drop=0),
        Col("source", drop=1),
    ]
    rows = [
        [esc(p.model), f"{p.input_per_mtok:g}", f"{p.output_per_mtok:g}", p.source] for p in prices
    ]
    out().print(fit_table(cols, rows, show_edge=False))


@prices_app.command("set")
def prices_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name (prefix of versioned names).")],
    input_price: Annotated[float, typer.Argument(metavar="INPUT", help="USD per 1M input tokens.")],
    output_price: Annotated[
        float, typer.Argument(metavar="OUTPUT", help="USD per 1M output tokens.")
    ],
    home: HomeOption = None,
) -> None:
    """Set a model's price; spans stored from now on use it."""
    with _tracing(ctx, home) as tr:
        p = tr.set_price(model, input_price, output_price)
    out().print(
        f"{esc(p.model)}: ${p.input_per_mtok:g} in, ${p.output_per_mtok:g} out per 1M tokens"
    )


@prices_app.command("delete")
def prices_delete(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    home: HomeOption = None,
) -> None:
    """Remove a custom price (the price file's or the default applies again)."""
    with _tracing(ctx, home) as tr:
        tr.delete_price(model)
    out().print(f"removed the custom price of {esc(model)}")
