"""``opsloop prompts``: create versions, list, show, label, diff and render prompts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_time,
    out,
    parse_pairs,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.prompts._client import Prompts
from opsloop.prompts._ref import PromptRef, parse_uri
from opsloop.prompts.entities import PromptVersion

app = room_app(
    "prompts", "Prompt registry: versioned text and chat templates, labels, diffs and rendering."
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Prompt name.", show_default=False)]
RefArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME[@LABEL|/VERSION]",
        help="A prompt, optionally at a label or version (default: latest).",
        show_default=False,
    ),
]


@contextlib.contextmanager
def _prompts(ctx: typer.Context, home: Path | None) -> Iterator[Prompts]:
    with command_context(ctx, home) as context:
        yield context.room(Prompts)


def _ref(arg: str) -> PromptRef:
    return parse_uri(arg if arg.startswith("prompts:/") else f"prompts:/{arg}")


def _print_template(pv: PromptVersion) -> None:
    con = out()
    if isinstance(pv.template, str):
        con.print(Text(pv.template))
        return
    for m in pv.template:
        con.print(Text(f"[{m['role']}]", style="bold cyan"))
        con.print(Text(m["content"]))


def _print_rendered(rendered: str | list[dict[str, str]]) -> None:
    con = out()
    if isinstance(rendered, str):
        con.print(Text(rendered))
        return
    for m in rendered:
        con.print(Text(f"[{m['role']}]", style="bold cyan"))
        con.print(Text(m["content"]))


def _labels(pv: PromptVersion) -> str:
    return ", ".join(f"@{x}" for x in pv.labels) or "-"


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the template from this file.", show_default=False),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="The template itself.", show_default=False)
    ] = None,
    chat: Annotated[
        bool,
        typer.Option("--chat", help='A chat template: JSON [{"role": ..., "content": ...}, ...].'),
    ] = False,
    message: Annotated[
        str, typer.Option("--message", "-m", help="Commit message for this version.")
    ] = "",
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Point this label at the new version (repeatable)."),
    ] = None,
    variable: Annotated[
        list[str] | None,
        typer.Option(
            "--variable",
            help="Declare a variable (repeatable); default: the {{ placeholders }} found.",
        ),
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="Metadata KEY=VALUE (VALUE parsed as JSON when it is)."),
    ] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Create a new version of a prompt (the prompt is created with its first version)."""
    if (file is None) == (text is None):
        raise InvalidArgument("give the template with exactly one of --file or --text")
    if file is not None:
        try:
            raw = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(f"cannot read {file}: {exc.strerror or exc}") from None
    else:
        raw = str(text)
    template: Any = raw
    if chat:
        try:
            template = json.loads(raw)
        except ValueError as exc:
            raise InvalidArgument(f"--chat needs a JSON list of messages: {exc}") from None
    metadata: dict[str, Any] = {}
    for k, v in parse_pairs(meta, "--meta").items():
        try:
            metadata[k] = json.loads(v)
        except ValueError:
            metadata[k] = v
    with _prompts(ctx, home) as prompts:
        pv = prompts.create(
            name,
            template,
            message=message,
            variables=variable or None,
            labels=label or [],
            metadata=metadata or None,
        )
    if json_:
        print_json(pv.model_dump(mode="json"))
        return
    out().print(
        f"[green]Created[/] {esc(pv.name)} version {pv.version} ({pv.kind}) "
        f"[dim]{esc(pv.uri)}[/]  labels: {esc(_labels(pv))}"
    )
    out().print(f"variables: {esc(', '.join(pv.variables) or '-')}")


@app.command("list")
def list_prompts(ctx: typer.Context, json_: JsonOpt = False, home: HomeOption = None) -> None:
    """List prompts with their newest version and labels."""
    with _prompts(ctx, home) as prompts:
        items = prompts.list()
    if json_:
        print_json([p.model_dump(mode="json") for p in items])
        return
    if not items:
        out().print(
            'No prompts yet. Create one: opsloop prompts create NAME --text "Hi {{ name }}"'
        )
        return
    cols = [
        Col("Name", key=True),
        Col("Latest", drop=0),
        Col("Versions", drop=2),
        Col("Labels", drop=0, min_width=16),
        Col("Updated", drop=1, min_width=19),
    ]
    rows = [
        [
            esc(p.name),
            str(p.latest_version or "-"),
            str(p.version_count),
            esc(", ".join(f"{k}→v{v}" for k, v in p.labels.items()) or "-"),
            fmt_time(p.updated_at),
        ]
        for p in items
    ]
    out().print(fit_table(cols, rows, title="Prompts"))


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, json_: JsonOpt = False, home: HomeOption = None) -> None:
    """Show one version: kind, labels, commit message, variables and the template."""
    r = _ref(ref)
    with _prompts(ctx, home) as prompts:
        pv = prompts.get(r.name, version=r.version, label=r.label, cache_ttl_s=0)
        versions = prompts.versions(r.name) if "@" not in ref and "/" not in ref else []
    if json_:
        print_json(pv.model_dump(mode="json"))
        return
    con = out()
    con.print(
        f"[bold]{esc(pv.name)}[/] version {pv.version} ({pv.kind})  labels: {esc(_labels(pv))}"
    )
    con.print(f"message: {esc(pv.message or '-')}")
    con.print(f"created: {fmt_time(pv.created_at)} by {esc(pv.created_by or '-')}")
    con.print(f"variables: {esc(', '.join(pv.variables) or '-')}")
    if pv.metadata:
        con.print(f"metadata: {esc(json.dumps(pv.metadata, default=str))}")
    con.rule()
    _print_template(pv)
    if len(versions) > 1:
        con.rule()
        t = Table(title="Versions", title_justify="left")
        for col in ("Version", "Kind", "Labels", "Created", "By", "Message"):
            t.add_column(col)
        for v in versions:
            t.add_row(
                str(v.version),
                v.kind,
                esc(_labels(v)),
                fmt_time(v.created_at),
                esc(v.created_by or "-"),
                esc(v.message[:60]),
            )
        con.print(t)


@app.command("versions")
def versions(
    ctx: typer.Context, name: NameArg, json_: JsonOpt = False, home: HomeOption = None
) -> None:
    """List a prompt's versions, newest first."""
    with _prompts(ctx, home) as prompts:
        items = prompts.versions(name)
    if json_:
        print_json([v.model_dump(mode="json") for v in items])
        return
    cols = [
        Col("Version", key=True),
        Col("Kind", drop=3),
        Col("Variables", drop=0),
        Col("Labels", drop=0, min_width=16),
        Col("Created", drop=1, min_width=19),
        Col("Message", drop=2, max_width=60),
    ]
    rows = [
        [
            str(v.version),
            v.kind,
            esc(", ".join(v.variables) or "-"),
            esc(_labels(v)),
            fmt_time(v.created_at),
            esc(v.message),
        ]
        for v in items
    ]
    out().print(fit_table(cols, rows, title=f"Versions of {esc(name)}"))


@app.command("label")
def label(
    ctx: typer.Context,
    name: NameArg,
    label_: Annotated[str, typer.Argument(metavar="LABEL", help="Label, e.g. production.")],
    version: Annotated[
        str | None,
        typer.Argument(metavar="VERSION", help="Version number or 'latest'.", show_default=False),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete the label.")] = False,
    home: HomeOption = None,
) -> None:
    """Move LABEL to VERSION (atomically), or delete it with --delete."""
    if delete == (version is not None):
        raise InvalidArgument("give a VERSION to move the label to, or --delete")
    with _prompts(ctx, home) as prompts:
        if delete:
            prompts.delete_label(name, label_)
            out().print(f"Deleted label @{esc(label_)} of {esc(name)}")
            return
        moved = prompts.set_label(name, label_, str(version))
    was = f" (was version {moved.previous_version})" if moved.previous_version else ""
    out().print(f"{esc(name)}@{esc(label_)} → version {moved.version}{was}")


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: NameArg,
    a: Annotated[str, typer.Argument(metavar="A", help="Version number, label or 'latest'.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Version number, label or 'latest'.")],
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Show what changed from A to B: a coloured unified diff plus variables and metadata."""
    with _prompts(ctx, home) as prompts:
        d = prompts.diff(name, a, b)
    if json_:
        print_json(d.model_dump(mode="json"))
        return
    con = out()
    for line in d.text.split("\n"):
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        elif not line.startswith(" "):
            style = "yellow"
        con.print(Text(line, style=style))


@app.command("render")
def render(
    ctx: typer.Context,
    ref: RefArg,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A variable KEY=VALUE (repeatable).")
    ] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Render a version with variables (every declared variable, no other)."""
    r = _ref(ref)
    variables = parse_pairs(var, "--var")
    with _prompts(ctx, home) as prompts:
        rendered = prompts.render(
            r.name, variables, version=r.version, label=r.label, cache_ttl_s=0
        )
    if json_:
        print_json(rendered)
        return
    _print_rendered(rendered)
