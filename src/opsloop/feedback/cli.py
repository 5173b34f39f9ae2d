"""``opsloop feedback``: define scores, annotate, search traces by score, agreement, export."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fmt_time,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.feedback._client import Feedback
from opsloop.feedback.entities import Annotation, ScoreDefinition

app = room_app(
    "feedback",
    "Feedback on traces, spans, sessions and served predictions: scores, agreement, export.",
)


@contextlib.contextmanager
def _feedback(ctx: typer.Context, home: Path | None) -> Iterator[Feedback]:
    with command_context(ctx, home) as context:
        yield context.room(Feedback)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _value(d: ScoreDefinition, text: str) -> Any:
    """The command line's VALUE as the score's kind wants it."""
    if d.kind == "numeric":
        try:
            return float(text)
        except ValueError:
            raise InvalidArgument(
                f"score {d.name!r} is numeric: {text!r} is not a number"
            ) from None
    if d.kind == "boolean":
        low = text.lower()
        if low in ("true", "yes", "up", "1"):
            return True
        if low in ("false", "no", "down", "0"):
            return False
    return text


@app.command("define")
def define_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Score name (letters, digits, _).")],
    kind: Annotated[str, typer.Option(help="boolean, categorical, numeric or text.")],
    category: Annotated[
        list[str] | None, typer.Option(help="A category (categorical; repeat the option).")
    ] = None,
    min_value: Annotated[
        float | None, typer.Option("--min", help="Lowest value (numeric).")
    ] = None,
    max_value: Annotated[
        float | None, typer.Option("--max", help="Highest value (numeric).")
    ] = None,
    description: Annotated[str, typer.Option(help="What the score means.")] = "",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Define a score once; annotations are checked against it."""
    with _feedback(ctx, home) as fb:
        d = fb.define_score(
            name,
            kind,
            categories=category,
            min_value=min_value,
            max_value=max_value,
            description=description,
        )
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    out().print(f"defined score [bold]{esc(d.name)}[/] ({d.kind})")


@app.command("scores")
def scores_command(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """List score definitions (then the built-in thumbs, comment, correction, preference)."""
    with _feedback(ctx, home) as fb:
        items = fb.list_scores()
    if json_:
        print_json([d.model_dump(mode="json") for d in items])
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("name", "kind", "values", "description"):
        table.add_column(col)
    for d in items:
        if d.kind in ("categorical", "preference"):
            values = ", ".join(d.categories or [])
        elif d.kind == "numeric":
            values = f"[{_fmt(d.min_value) or '-inf'}, {_fmt(d.max_value) or 'inf'}]"
        else:
            values = "true/false" if d.kind == "boolean" else "text"
        table.add_row(
            esc(d.name) + (" [dim](built-in)[/]" if d.builtin else ""),
            d.kind,
            esc(values),
            esc(d.description),
        )
    out().print(table)


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Score name (or thumbs, comment, correction).")],
    value: Annotated[
        str, typer.Argument(help="The value (true/false, a number, a category, text).")
    ],
    trace: Annotated[str | None, typer.Option(help="Trace id.")] = None,
    span: Annotated[str | None, typer.Option(help="Span id (with --trace).")] = None,
    session: Annotated[str | None, typer.Option(help="Session id.")] = None,
    prediction: Annotated[
        str | None, typer.Option(help="A served prediction's response id.")
    ] = None,
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
    correction: Annotated[str | None, typer.Option(help="A corrected answer.")] = None,
    source: Annotated[str, typer.Option(help="human, llm_judge or code.")] = "human",
    author: Annotated[str | None, typer.Option(help="Who (default: the acting user).")] = None,
    key: Annotated[
        str | None, typer.Option(help="Upsert key: a retry updates, never adds.")
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Annotate a trace, span, session or served prediction."""
    with _feedback(ctx, home) as fb:
        d = fb.get_score(name)
        a = fb.annotate(
            name,
            _value(d, value),
            trace_id=trace,
            span_id=span,
            session_id=session,
            prediction_id=prediction,
            comment=comment,
            correction=correction,
            source=source,
            author=author,
            key=key,
        )
    if json_:
        print_json(a.model_dump(mode="json"))
        return
    out().print(
        f"{esc(a.author)} scored {esc(a.name)} = {esc(_fmt(a.value))} on "
        f"{a.target_kind} {esc(a.target_id)} [dim]({a.id})[/]"
    )


def f3(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _annotation_table(items: list[Annotation]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "target", "score", "value", "source", "author", "when", "comment"):
        table.add_column(col)
    for a in items:
        table.add_row(
            a.id[:12],
            f"{a.target_kind} {esc(a.target_id)}",
            esc(a.name),
            esc(_fmt(a.value))[:60],
            a.source,
            esc(a.author),
            fmt_time(a.updated_at),
            esc(a.comment or "")[:60],
        )
    return table


@app.command("list")
def list_command(
    ctx: typer.Context,
    trace: Annotated[str | None, typer.Option(help="On this trace (and its spans).")] = None,
    session: Annotated[str | None, typer.Option(help="On this session.")] = None,
    prediction: Annotated[str | None, typer.Option(help="On this served prediction.")] = None,
    name: Annotated[str | None, typer.Option(help="Of this score.")] = None,
    author: Annotated[str | None, typer.Option(help="By this author.")] = None,
    source: Annotated[str | None, typer.Option(help="From this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List annotations, oldest first."""
    with _feedback(ctx, home) as fb:
        items = fb.list(
            trace_id=trace,
            session_id=session,
            prediction_id=prediction,
            name=name,
            author=author,
            source=source,
            limit=limit,
        )
    if json_:
        print_json([a.model_dump(mode="json") for a in items])
        return
    out().print(_annotation_table(items) if items else "no annotations")


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    annotation_id: Annotated[str, typer.Argument(metavar="ID", help="Annotation id.")],
    home: HomeOption = None,
) -> None:
    """Delete one annotation."""
    with _feedback(ctx, home) as fb:
        fb.delete_annotation(annotation_id)
    out().print(f"deleted annotation {esc(annotation_id)}")


@app.command("traces")
def traces_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Score name.")],
    equals: Annotated[
        str | None, typer.Option(help="Value equal to (a category, true/false).")
    ] = None,
    min_value: Annotated[float | None, typer.Option("--min", help="Value at least.")] = None,
    max_value: Annotated[float | None, typer.Option("--max", help="Value at most.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only values from human, llm_judge or code.")
    ] = None,
    author: Annotated[str | None, typer.Option(help="Scored by this author.")] = None,
    missing: Annotated[bool, typer.Option("--missing", help="Traces without the score.")] = False,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help="More trace filter.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 25,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Traces by score (the same as `opsloop traces list -f 'score.NAME >= 4'`)."""
    with _feedback(ctx, home) as fb:
        page = fb.search_traces(
            name,
            equals=equals,
            min=min_value,
            max=max_value,
            source=source,
            author=author,
            missing=missing,
            filter=filter,
            limit=limit,
        )
    if json_:
        print_json(page.model_dump(mode="json"))
        return
    if not page.traces:
        out().print("no traces match")
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("id", "name", "status", "started"):
        table.add_column(col)
    for t in page.traces:
        table.add_row(t.id, esc(t.name), t.status, fmt_time(t.start_us // 1000))
    out().print(table)


@app.command("agreement")
def agreement_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Score name.")],
    source: Annotated[
        str, typer.Option(help="Whose agreement: human, llm_judge or code.")
    ] = "human",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Krippendorff's alpha, pairwise Cohen's kappa, and the LLM judge against humans."""
    with _feedback(ctx, home) as fb:
        ag = fb.agreement(name, source=source)
    if json_:
        print_json(ag.model_dump(mode="json"))
        return
    p = out().print
    p(
        f"[bold]{esc(ag.score)}[/] ({ag.kind}, {ag.level}); {len(ag.annotators)} {ag.source} annotator(s)"
    )
    p(f"Krippendorff's alpha: {f3(ag.alpha)} over {ag.items} item(s) scored by 2+")
    p(f"mean Cohen's kappa:   {f3(ag.mean_kappa)}")
    for pair in ag.pairwise:
        p(
            f"  {esc(pair.a)} / {esc(pair.b)}: kappa {f3(pair.kappa)}, agree {f3(pair.agreement)} on {pair.items}"
        )
    if ag.judge is not None:
        j = ag.judge
        p(
            f"LLM judge vs {ag.source}: {j.items} item(s), kappa {f3(j.kappa)}, alpha {f3(j.alpha)}, agree {f3(j.agreement)}"
            + ("" if j.mean_abs_error is None else f", MAE {j.mean_abs_error:.3f}")
        )


@app.command("export")
def export_command(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Dataset to add a version to.")],
    kind: Annotated[
        str, typer.Option(help="sft (prompt, response) or preference (prompt, chosen, rejected).")
    ] = "sft",
    accept: Annotated[
        str, typer.Option(help="SFT: the score that accepts a response as it is.")
    ] = "thumbs",
    min_value: Annotated[
        float | None, typer.Option(help="SFT: a numeric accept score's threshold.")
    ] = None,
    message: Annotated[str, typer.Option(help="Version message.")] = "",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Feedback becomes a dataset version (PII-masked, deduplicated, with lineage)."""
    with _feedback(ctx, home) as fb:
        res = fb.export(dataset, kind, accept=accept, min_value=min_value, message=message)
    if json_:
        print_json(res.model_dump(mode="json"))
        return
    out().print(
        f"wrote {res.rows} {res.kind} row(s) to [bold]{esc(res.ref)}[/] from {res.annotations} "
        f"annotation(s) on {res.traces} trace(s); {res.duplicates} duplicate(s) dropped, "
        f"{res.skipped} skipped"
    )


# ---------------------------------------------------------------- annotation queues

queue_app = room_app("queue", "Annotation queues: a rule fills them; annotators claim items.")
app.add_typer(queue_app, name="queue")


@queue_app.command("create")
def queue_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    filter: Annotated[
        str, typer.Option("--filter", "-f", help="Trace filter, e.g. 'score.thumbs = \"false\"'.")
    ],
    score: Annotated[list[str], typer.Option(help="A score annotators give (repeat).")],
    sample: Annotated[float, typer.Option(help="Share of matching traces queued (0-1].")] = 1.0,
    lock_ttl: Annotated[int, typer.Option(help="Seconds a claimed item stays locked.")] = 600,
    fill: Annotated[bool, typer.Option(help="Apply the rule now.")] = True,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Create a queue (and fill it from its rule)."""
    with _feedback(ctx, home) as fb:
        q = fb.create_queue(
            name, filter=filter, scores=score, sample_ratio=sample, lock_ttl_s=lock_ttl
        )
        added = fb.fill_queue(name) if fill else 0
    if json_:
        print_json({**q.model_dump(mode="json"), "added": added})
        return
    out().print(f"created queue [bold]{esc(q.name)}[/] with {added} item(s)")


@queue_app.command("fill")
def queue_fill(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    home: HomeOption = None,
) -> None:
    """Apply the queue's rule: add the matching traces it does not hold yet."""
    with _feedback(ctx, home) as fb:
        added = fb.fill_queue(name)
    out().print(f"added {added} item(s) to {esc(name)}")


@queue_app.command("list")
def queue_list(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """List queues with their progress."""
    with _feedback(ctx, home) as fb:
        rows = [(q, fb.queue_progress(q.name)) for q in fb.list_queues()]
    if json_:
        print_json([{**q.model_dump(mode="json"), "progress": p.model_dump()} for q, p in rows])
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("queue", "rule", "scores", "done", "skipped", "pending", "locked"):
        table.add_column(col)
    for q, p in rows:
        table.add_row(
            esc(q.name),
            esc(q.filter) + ("" if q.sample_ratio >= 1 else f" ({q.sample_ratio:.0%})"),
            esc(", ".join(q.scores)),
            str(p.done),
            str(p.skipped),
            str(p.pending),
            str(p.locked),
        )
    out().print(table)


@queue_app.command("progress")
def queue_progress(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Items by state, and per annotator."""
    with _feedback(ctx, home) as fb:
        p = fb.queue_progress(name)
    if json_:
        print_json(p.model_dump(mode="json"))
        return
    out().print(
        f"{esc(name)}: {p.done} done, {p.skipped} skipped, {p.pending} pending "
        f"({p.locked} locked) of {p.total}"
    )
    for a in p.annotators:
        out().print(f"  {esc(a.annotator)}: {a.done} done, {a.skipped} skipped, {a.locked} locked")


@queue_app.command("next")
def queue_next(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    annotator: Annotated[str | None, typer.Option(help="Who (default: the acting user).")] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Claim the next item (locked to you); prints its trace id."""
    with _feedback(ctx, home) as fb:
        item = fb.claim(name, annotator)
    if json_:
        print_json(None if item is None else item.model_dump(mode="json"))
        return
    out().print("nothing left to annotate" if item is None else item.trace_id)


@queue_app.command("done")
def queue_done(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Queue name.")],
    trace_id: Annotated[str, typer.Argument(metavar="TRACE_ID")],
    skip: Annotated[bool, typer.Option("--skip", help="Skip it instead.")] = False,
    annotator: Annotated[str | None, typer.Option(help="Who (default: the acting user).")] = None,
    home: HomeOption = None,
) -> None:
    """Mark a claimed item done (or skipped)."""
    with _feedback(ctx, home) as fb:
        item = (fb.skip_item if skip else fb.complete_item)(name, trace_id, annotator)
    out().print(f"{esc(item.trace_id)}: {item.status}")
