"""``opsloop datasets``: create versions, list them, show schema/profile/sample, diff, split.

Thin commands over ``opsloop.datasets.Datasets``; versions are named
``NAME@VERSION`` (``NAME`` alone is the latest).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    Col,
    HomeOption,
    command_context,
    esc,
    fit_table,
    fmt_bytes,
    fmt_time,
    out,
    print_json,
    room_app,
)
from opsloop.datasets._client import Datasets
from opsloop.datasets._split import parse_fractions
from opsloop.datasets.entities import DatasetVersion
from opsloop.errors import InvalidArgument

app = room_app(
    "datasets",
    "Datasets: versioned, validated, profiled data; diffs, splits and lineage.",
    rich_markup_mode="markdown",
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RefArg = Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="A dataset version.")]


@contextlib.contextmanager
def _datasets(ctx: typer.Context, home: Path | None) -> Iterator[Datasets]:
    with command_context(ctx, home) as context:
        yield context.room(Datasets)


STATUS = {"valid": "[green]valid[/]", "flagged": "[bold yellow]flagged[/]"}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


@app.command("list")
def list_datasets(ctx: typer.Context, json_: JsonOption = False, home: HomeOption = None) -> None:
    """List datasets with their kind and latest version."""
    with _datasets(ctx, home) as ds:
        items = ds.list()
    if json_:
        print_json([d.model_dump(mode="json") for d in items])
        return
    if not items:
        out().print("No datasets yet: `opsloop datasets create NAME FILE`.")
        return
    cols = [
        Col("Name", key=True),
        Col("Kind", drop=3),
        Col("Versions", justify="right", drop=2),
        Col("Latest", justify="right", drop=0),
        Col("Updated", drop=1, min_width=19),
        Col("Description", drop=4),
    ]
    rows = [
        [
            esc(d.name),
            d.kind,
            str(d.version_count),
            "-" if d.latest_version is None else str(d.latest_version),
            fmt_time(d.updated_at),
            esc(_fmt(d.description)),
        ]
        for d in items
    ]
    out().print(fit_table(cols, rows, title=f"Datasets ({len(items)})", title_justify="center"))


def _parse_types(items: list[str] | None) -> dict[str, str]:
    types: dict[str, str] = {}
    for item in items or []:
        name, sep, t = item.partition("=")
        if not sep or not name:
            raise InvalidArgument(f"--type takes COLUMN=TYPE, got {item!r}")
        types[name] = t
    return types


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name (created if new).")],
    path: Annotated[
        Path, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file; a folder of documents.")
    ],
    message: Annotated[str, typer.Option("--message", "-m", help="What this version is.")] = "",
    rules: Annotated[
        Path | None, typer.Option("--rules", metavar="PATH", help="Validation rules (.yaml/.json).")
    ] = None,
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error",
            metavar="reject|flag",
            help="On rule violations: store nothing, or store flagged.",
        ),
    ] = "reject",
    kind: Annotated[
        str | None,
        typer.Option(help="tabular, prompt_response, chat or documents (default: inferred)."),
    ] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="File format when the extension does not say.")
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", metavar="COLUMN=TYPE", help="Force a column's type (repeatable)."),
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Documents: chunk size.")] = 1000,
    chunk_overlap: Annotated[int, typer.Option(help="Documents: chunk overlap.")] = 200,
    chunk_unit: Annotated[str, typer.Option(help="Documents: chars or tokens.")] = "chars",
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Make a new version from a file (streamed: any size), with validation and a profile.

    The same content as a stored version gives that version back.

    Examples:

        opsloop datasets create iris data/iris.csv -m "first cut" --rules rules.yaml
        opsloop datasets create docs ./handbook --chunk-size 800 --chunk-overlap 100
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    chunking = None
    is_docs = kind == "documents" or (kind is None and path.is_dir())
    if is_docs:
        chunking = {"size": chunk_size, "overlap": chunk_overlap, "unit": chunk_unit}
    with (
        _datasets(ctx, home) as ds,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TimeElapsedColumn(),
            console=out(),
            transient=True,
            disable=json_,
        ) as bar,
    ):
        task = bar.add_task(f"reading {path.name}", total=None, rows=0)

        def progress(rows: int, done: int | None, total: int | None) -> None:
            bar.update(task, completed=done or 0, total=total, rows=f"{rows:,}")

        v = ds.create(
            name,
            path,
            message=message,
            kind=kind,
            rules=rules,
            on_error=on_error,
            format=format_,
            column_types=_parse_types(type_) or None,
            chunking=chunking,
            progress=progress,
        )
    if json_:
        print_json(v.model_dump(mode="json"))
        return
    _print_version(v)
    if v.status == "flagged" and v.validation:
        _print_validation(v)


def _print_version(v: DatasetVersion) -> None:
    status = STATUS.get(v.status, v.status)
    out().print(
        f"[bold]{esc(v.ref)}[/]  {status}  {v.row_count:,} rows  {len(v.columns)} columns  "
        f"{fmt_bytes(v.size_bytes)}  [dim]{v.kind} · {v.content_digest[:19]}… · "
        f"id {v.id} · {fmt_time(v.created_at)}[/]"
    )
    if v.message:
        out().print(f"  {esc(v.message)}")
    if v.derivation:
        out().print(f"  [dim]derived: {esc(v.derivation)}[/]")


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """List a dataset's versions, oldest first."""
    with _datasets(ctx, home) as ds:
        items = ds.versions(name)
    if json_:
        print_json([v.model_dump(mode="json") for v in items])
        return
    cols = [
        Col("Version", key=True, justify="right"),
        Col("Status", drop=0),
        Col("Rows", justify="right", drop=0),
        Col("Size", justify="right", drop=3),
        Col("Created", drop=2, min_width=19),
        Col("By", drop=4),
        Col("Message", drop=1),
    ]
    rows = [
        [
            str(v.version),
            STATUS.get(v.status, v.status),
            f"{v.row_count:,}",
            fmt_bytes(v.size_bytes),
            fmt_time(v.created_at),
            esc(v.created_by),
            esc(_fmt(v.message or v.derivation)),
        ]
        for v in items
    ]
    title = f"{esc(name)}: {len(items)} version(s)"
    out().print(fit_table(cols, rows, title=title, title_justify="center"))


@app.command("show")
def show(
    ctx: typer.Context,
    ref: RefArg,
    profile: Annotated[bool, typer.Option("--profile", help="Per-column statistics.")] = False,
    sample: Annotated[bool, typer.Option("--sample", help="Sample rows.")] = False,
    validation: Annotated[
        bool, typer.Option("--validation", help="The validation report.")
    ] = False,
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Show a version: schema, and on request its profile, sample rows and validation report."""
    with _datasets(ctx, home) as ds:
        v = ds.get(ref)
    if json_:
        print_json(v.model_dump(mode="json"))
        return
    _print_version(v)
    t = Table(title="Schema")
    for col in ("Column", "Type", "Nullable"):
        t.add_column(col)
    for c in v.columns:
        t.add_row(esc(c.name), esc(c.type), "yes" if c.nullable else "no")
    out().print(t)
    if profile:
        _print_profile(v)
    if sample:
        _print_sample(v)
    if validation:
        _print_validation(v)


def _print_profile(v: DatasetVersion) -> None:
    t = Table(title=f"Profile ({v.profile.get('row_count', v.row_count):,} rows)")
    for col in (
        "Column",
        "Nulls",
        "Distinct",
        "Min",
        "Max",
        "Mean",
        "Std",
        "p50",
        "Top / text length",
    ):
        t.add_column(col, justify="left" if col in ("Column", "Top / text length") else "right")
    for c in v.profile.get("columns", []):
        q = c.get("quantiles") or {}
        extra = ""
        if c.get("top"):
            extra = ", ".join(f"{_fmt(x['value'])} ({x['count']})" for x in c["top"][:3])
        elif c.get("text_length"):
            tl = c["text_length"]
            extra = f"len {_fmt(tl['min'])}..{_fmt(tl['max'])}, mean {_fmt(tl['mean'])}"
        distinct = c.get("distinct")
        t.add_row(
            esc(c["name"]),
            f"{c['nulls']:,}",
            "-" if distinct is None else ("" if c.get("distinct_exact") else "~") + f"{distinct:,}",
            esc(_fmt(c.get("min"))),
            esc(_fmt(c.get("max"))),
            _fmt(c.get("mean")),
            _fmt(c.get("std")),
            _fmt(q.get("p50")),
            esc(extra),
        )
    out().print(t)
    chunks = v.profile.get("chunks")
    if chunks:
        out().print(
            f"{chunks['count']:,} chunks, mean {_fmt(chunks['chars']['mean'])} characters, "
            f"mean {_fmt(chunks['tokens']['mean'])} tokens"
        )


def _print_sample(v: DatasetVersion) -> None:
    rows = v.sample.get("rows", [])
    idx = v.sample.get("row_indices", [])
    t = Table(title=f"Sample ({len(rows)} rows)")
    t.add_column("#", justify="right", style="dim")
    names = [c.name for c in v.columns]
    for n in names:
        t.add_column(esc(n), overflow="ellipsis", max_width=40)
    for i, row in zip(idx, rows, strict=False):
        t.add_row(str(i), *[esc(_fmt(row.get(n))) for n in names])
    out().print(t)


def _print_validation(v: DatasetVersion) -> None:
    rep = v.validation
    if not rep:
        out().print("[dim]No validation rules were given for this version.[/]")
        return
    verdict = "[green]passed[/]" if rep["passed"] else "[bold red]failed[/]"
    out().print(
        f"Validation {verdict}: {rep['total_violations']:,} violation(s) over "
        f"{rep['rows_checked']:,} rows"
    )
    t = Table()
    for col in ("Rule", "Column", "Violations", "First examples (row: value)"):
        t.add_column(col, justify="right" if col == "Violations" else "left")
    for r in rep["rules"]:
        ex = r.get("message") or ", ".join(
            f"{e['row']}: {_fmt(e['value'])}" for e in r["examples"][:5]
        )
        style = "red" if r["violations"] else "green"
        t.add_row(
            esc(r["name"]), esc(r.get("column") or "-"), f"[{style}]{r['violations']:,}[/]", esc(ex)
        )
    out().print(t)


@app.command("diff")
def diff(
    ctx: typer.Context,
    base: RefArg,
    other: RefArg,
    key: Annotated[str | None, typer.Option(help="Match rows by this (unique) column.")] = None,
    examples: Annotated[int, typer.Option(help="Examples per kind of change.", min=0, max=100)] = 5,
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """What changed between two versions: schema, rows added, removed and changed."""
    with _datasets(ctx, home) as ds:
        d = ds.diff(base, other, key=key, max_examples=examples)
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    r = d.rows
    out().print(
        f"[bold]{esc(d.base.ref)} → {esc(d.other.ref)}[/]  {r['before']:,} → {r['after']:,} rows: "
        f"[green]+{r['added']:,} added[/], [red]-{r['removed']:,} removed[/], "
        f"[yellow]~{r['changed']:,} changed[/], {r['unchanged']:,} unchanged"
        + (f"  [dim](by key {esc(d.key)})[/]" if d.key else "  [dim](by row content)[/]")
    )
    sc = d.schema_changes
    for c in sc["added"]:
        out().print(f"  [green]+ column {esc(c)}[/]")
    for c in sc["removed"]:
        out().print(f"  [red]- column {esc(c)}[/]")
    for c in sc["retyped"]:
        out().print(f"  [yellow]~ column {esc(c['column'])}: {esc(c['from'])} → {esc(c['to'])}[/]")
    for label, style in (("added", "green"), ("removed", "red")):
        for e in d.examples[label]:
            out().print(f"  [{style}]{label} row {e['row']}:[/] {esc(_fmt(e['values']))}")
    for e in d.examples["changed"]:
        cols = ", ".join(
            f"{c}: {_fmt(e['before'].get(c))} → {_fmt(e['after'].get(c))}" for c in e["columns"]
        )
        out().print(f"  [yellow]changed {esc(d.key)}={esc(_fmt(e['key']))}:[/] {esc(cols)}")


@app.command("split")
def split(
    ctx: typer.Context,
    ref: RefArg,
    fractions: Annotated[
        str, typer.Option(metavar="NAME=F,...", help="Split fractions, e.g. train=0.8,test=0.2.")
    ] = "train=0.8,test=0.2",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same split).", min=0)] = 0,
    stratify: Annotated[
        str | None, typer.Option(metavar="COLUMN", help="Keep this column's proportions.")
    ] = None,
    json_: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Split a version deterministically into new versions of NAME.SPLIT datasets."""
    with _datasets(ctx, home) as ds, out().status("splitting…", spinner="dots"):
        parts = ds.split(ref, parse_fractions(fractions), seed=seed, stratify=stratify)
    if json_:
        print_json({k: v.model_dump(mode="json") for k, v in parts.items()})
        return
    for v in parts.values():
        _print_version(v)


@app.command("lineage")
def lineage(
    ctx: typer.Context, ref: RefArg, json_: JsonOption = False, home: HomeOption = None
) -> None:
    """The runs that read a version, and the versions derived from it."""
    with _datasets(ctx, home) as ds:
        runs = ds.version_runs(ref)
        kids = ds.children(ref)
    if json_:
        print_json(
            {
                "runs": [r.model_dump(mode="json") for r in runs],
                "children": [k.model_dump(mode="json") for k in kids],
            }
        )
        return
    t = Table(title=f"Runs that read {esc(ref)}")
    for col in ("Run", "Name", "Status", "Context", "When"):
        t.add_column(col)
    for r in runs:
        t.add_row(r.run_id, esc(r.run_name or "-"), r.status, r.context, fmt_time(r.created_at))
    out().print(t)
    for k in kids:
        out().print(f"derived: {esc(k.ref)}  [dim]{esc(k.derivation)}[/]")
