"""``opsloop models``: registered models, versions, aliases, cards, lineage and history."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    fit_table,
    fmt_bytes,
    fmt_time,
    out,
    parse_pairs,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.registry._client import Registry

app = room_app("models", "Model registry: models, versions, aliases, cards, lineage and history.")

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Registered model name.", show_default=False)
]
VersionArg = Annotated[
    str, typer.Argument(metavar="VERSION", help="Version number or 'latest'.", show_default=False)
]


@contextlib.contextmanager
def _registry(ctx: typer.Context, home: Path | None) -> Iterator[Registry]:
    with command_context(ctx, home) as context:
        yield context.room(Registry)


def _option_value(v: str) -> Any:
    try:
        return json.loads(v)
    except ValueError:
        return v


@app.command("list")
def list_models(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (model, prompt, pipeline).")
    ] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """List registered models with their latest version and aliases."""
    with _registry(ctx, home) as reg:
        models = reg.list_models(kind=kind)
    if json_:
        print_json([m.model_dump(mode="json") for m in models])
        return
    if not models:
        out().print(
            "No registered models yet. Register one: opsloop models register NAME --from PATH"
        )
        return
    cols = [
        Col("Name", key=True),
        Col("Kind", drop=4),
        Col("Latest", justify="right", drop=0),
        Col("Versions", justify="right", drop=3),
        Col("Aliases", drop=0, min_width=16),
        Col("Updated", drop=2, min_width=19),
        Col("Description", drop=5, max_width=60),
    ]
    rows = [
        [
            esc(m.name),
            m.kind,
            str(m.latest_version or "-"),
            str(m.version_count),
            esc(", ".join(f"{a}→v{v}" for a, v in m.aliases.items())),
            fmt_time(m.updated_at),
            esc(m.description),
        ]
        for m in models
    ]
    out().print(fit_table(cols, rows, title="Registered models"))


@app.command("show")
def show(
    ctx: typer.Context, name: NameArg, json_: JsonOpt = False, home: HomeOption = None
) -> None:
    """Show a model: description, tags, aliases and versions."""
    with _registry(ctx, home) as reg:
        m = reg.get_model(name)
        versions = reg.list_versions(name)
    if json_:
        print_json(
            {**m.model_dump(mode="json"), "versions": [v.model_dump(mode="json") for v in versions]}
        )
        return
    c = out()
    c.print(
        f"[bold]{esc(m.name)}[/] ({m.kind}), {m.version_count} version(s), created {fmt_time(m.created_at)}"
        f" by {esc(m.created_by)}"
    )
    if m.description:
        c.print(esc(m.description))
    for k, v in m.tags.items():
        c.print(f"  tag {esc(k)} = {esc(v)}")
    for a, num in m.aliases.items():
        c.print(f"  alias [cyan]{esc(a)}[/] → v{num}")
    _versions_table(versions)


def _versions_table(versions: list[Any]) -> None:
    cols = [
        Col("Version", key=True, justify="right"),
        Col("Flavor", drop=0),
        Col("Aliases", drop=0, min_width=16),
        Col("Size", justify="right", drop=3),
        Col("Source", drop=2),
        Col("Created", drop=1, min_width=19),
        Col("By", drop=4),
    ]
    rows = [
        [
            str(v.version),
            v.flavor,
            esc(", ".join(v.aliases)),
            fmt_bytes(v.size),
            esc(v.source),
            fmt_time(v.created_at),
            esc(v.created_by),
        ]
        for v in versions
    ]
    out().print(fit_table(cols, rows, title="Versions"))


@app.command("versions")
def versions(
    ctx: typer.Context, name: NameArg, json_: JsonOpt = False, home: HomeOption = None
) -> None:
    """List a model's versions, newest first."""
    with _registry(ctx, home) as reg:
        vs = reg.list_versions(name)
    if json_:
        print_json([v.model_dump(mode="json") for v in vs])
        return
    _versions_table(vs)


@app.command("register")
def register(
    ctx: typer.Context,
    name: NameArg,
    source: Annotated[
        str,
        typer.Option(
            "--from", metavar="SOURCE", help="runs:/RUN_ID/PATH, or a local file or folder."
        ),
    ],
    flavor: Annotated[
        str | None,
        typer.Option(
            help="Flavor of raw files (sklearn, transformers, "
            "sentence_transformers, peft, pyfunc, ...)."
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", metavar="KEY=VALUE", help="Flavor option (repeatable)."),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(metavar="URI", help="peft: the base model, models:/NAME/VERSION.")
    ] = None,
    description: Annotated[str, typer.Option(metavar="TEXT")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE")] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Point this alias at the new version.")
    ] = None,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Register a new version from a run's artifacts or a local path.

    Examples:

        opsloop models register churn --from runs:/3f2a.../model
        opsloop models register smol --from ./SmolLM2.gguf --flavor transformers --alias champion
    """
    options = {k: _option_value(v) for k, v in parse_pairs(option, "--option").items()}
    if base_model:
        options["base_model"] = base_model
    with _registry(ctx, home) as reg:
        mv = reg.register(
            name,
            source,
            flavor=flavor,
            options=options or None,
            description=description,
            tags=parse_pairs(tag, "--tag"),
        )
        for a in alias or []:
            reg.set_alias(name, a, mv.version)
        if alias:
            mv = reg.get_version(name, mv.version)
    if json_:
        print_json(mv.model_dump(mode="json"))
        return
    out().print(
        f"Registered [bold]{esc(name)}[/] version {mv.version} ({mv.flavor}, {len(mv.files)} files, "
        f"{fmt_bytes(mv.size)}): {mv.uri}"
        + (f"  aliases: {', '.join(mv.aliases)}" if mv.aliases else "")
    )


@app.command("quantize")
def quantize(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="The language model: models:/NAME/VERSION or models:/NAME@ALIAS."
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Register into this model (default: the source's)."),
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Point this alias at the new version.")] = None,
    description: Annotated[str | None, typer.Option(metavar="TEXT")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where converted weights are kept (default <home>/cache).")
    ] = None,
    smooth_alpha: Annotated[
        float,
        typer.Option(
            help="SmoothQuant migration strength folded in before quantising, "
            "between 0 and 1; 0 turns smoothing off.",
        ),
    ] = 0.5,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Register an int8-weight copy of a language model as a new version (runs on the CPU).

    Linear weights become int8 (one scale per output row), about half the size
    on disk. Activation outliers are first moved into the weights (SmoothQuant,
    checked to leave the float model's outputs unchanged); see docs/registry.md#compression for the measured size, memory,
    latency and quality.

    Examples:

        opsloop models quantize models:/smol/1
        opsloop models quantize models:/smol@champion --name smol-int8 --alias candidate
    """
    from opsloop.registry._compress import quantize_model  # lazy: loads torch

    with command_context(ctx, home) as context:
        mv = quantize_model(
            context,
            source,
            name=name,
            alias=alias,
            description=description,
            cache_dir=cache_dir,
            smooth_alpha=smooth_alpha or None,
        )
        mv = context.room(Registry).get_version(mv.name, mv.version)
    if json_:
        print_json(mv.model_dump(mode="json"))
        return
    out().print(
        f"Registered [bold]{esc(mv.name)}[/] version {mv.version} (int8 weights of {esc(source)}, "
        f"{fmt_bytes(mv.size)}): {mv.uri}"
    )


@app.command("alias")
def alias_cmd(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[
        str, typer.Argument(metavar="ALIAS", help="e.g. champion, challenger, production.")
    ],
    version: Annotated[
        str | None, typer.Argument(metavar="VERSION", help="Version to point at.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete the alias instead.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Move it even if the promotion gate fails (recorded)."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Set or move an alias atomically (or delete it with --delete); the model's promotion gate is checked."""
    with _registry(ctx, home) as reg:
        if delete:
            reg.delete_alias(name, alias)
            out().print(f"Deleted alias {esc(alias)} of {esc(name)}")
            return
        if version is None:
            raise InvalidArgument("give the VERSION to point the alias at (or --delete)")
        a = reg.set_alias(name, alias, version, force=force)
    out().print(f"models:/{esc(name)}@{esc(alias)} → version {a.version}")


@app.command("rename")
def rename(
    ctx: typer.Context,
    name: NameArg,
    new_name: Annotated[
        str, typer.Argument(metavar="NEW_NAME", help="The new name.", show_default=False)
    ],
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Rename a model; models:/OLD URIs keep resolving to it until the old name is reused."""
    with _registry(ctx, home) as reg:
        m = reg.rename_model(name, new_name)
    if json_:
        print_json(m.model_dump(mode="json"))
        return
    out().print(f"Renamed {esc(name)} → [bold]{esc(m.name)}[/] ({m.version_count} version(s))")


@app.command("card")
def card(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    edit_file: Annotated[
        Path | None,
        typer.Option(
            "--edit-file",
            metavar="FILE",
            help="Replace the card's markdown with this file (.md), or merge fields from it (.json).",
        ),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            metavar="KEY=VALUE",
            help="Set a card field (intended_use, limitations, ...).",
        ),
    ] = None,
    regenerate: Annotated[
        bool, typer.Option(help="Refresh the facts from the source run.")
    ] = False,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Print a version's model card, or edit it."""
    fields: dict[str, Any] | None = dict(parse_pairs(field, "--field")) or None
    markdown = None
    if edit_file is not None:
        if not edit_file.is_file():
            raise InvalidArgument(f"{edit_file} is not a file")
        text = edit_file.read_text(encoding="utf-8")
        if edit_file.suffix == ".json":
            try:
                fields = {**(fields or {}), **json.loads(text)}
            except ValueError as exc:
                raise InvalidArgument(f"{edit_file} is not valid JSON: {exc}") from exc
        else:
            markdown = text
    if fields and "owners" in fields and isinstance(fields["owners"], str):
        fields["owners"] = [o.strip() for o in fields["owners"].split(",") if o.strip()]
    with _registry(ctx, home) as reg:
        if fields is not None or markdown is not None or regenerate:
            c = reg.update_card(
                name, version, fields=fields, markdown=markdown, regenerate=regenerate
            )
        else:
            c = reg.get_card(name, version)
    if json_:
        print_json(c.model_dump(mode="json"))
        return
    from rich.markdown import Markdown  # lazy: loads markdown-it, for this command only

    out().print(Markdown(c.markdown))


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Show where a version came from: run and the dataset versions it read."""
    with _registry(ctx, home) as reg:
        lin = reg.lineage(name, version)
    if json_:
        print_json(lin.model_dump(mode="json"))
        return
    c = out()
    c.print(f"[bold]models:/{esc(lin.model.name)}/{lin.model.version}[/]  source {esc(lin.source)}")
    if lin.base_model:
        c.print(f"  └─ base model models:/{esc(lin.base_model.name)}/{lin.base_model.version}")
    if lin.run is None:
        c.print("  └─ no source run recorded")
        return
    c.print(f"  └─ run {lin.run.run_id} ({esc(lin.run.name)}, {lin.run.status})")
    if not lin.datasets:
        c.print("       └─ no dataset versions recorded")
    for d in lin.datasets:
        c.print(
            f"       └─ {d.context}: {esc(d.dataset_name or '?')} v{d.version} "
            f"({d.row_count} rows) {d.dataset_version_id}"
        )


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    json_: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Every recorded change to a model: who, what and when (newest first)."""
    with _registry(ctx, home) as reg:
        events = reg.history(name, limit=limit)
    if json_:
        print_json([e.model_dump(mode="json") for e in events])
        return
    t = Table(title=f"History of {esc(name)}", title_justify="left")
    for col in ("When", "Who", "Action", "Version", "Detail"):
        t.add_column(col)
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v not in (None, "", {}))
        t.add_row(fmt_time(e.at), esc(e.actor), e.action, str(e.version or ""), esc(detail[:80]))
    out().print(t)


@app.command("download")
def download(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    dest: Annotated[Path, typer.Argument(metavar="DEST", help="An empty or new folder.")],
    home: HomeOption = None,
) -> None:
    """Copy a version's files into a folder."""
    with _registry(ctx, home) as reg:
        folder = reg.download(name, version, dest)
    out().print(f"Downloaded into {folder}")
