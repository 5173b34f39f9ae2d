"""``opsloop pipelines``: run a pipeline file, validate it, register it as a model version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from opsloop.core.cli import (
    HomeOption,
    JsonOpt,
    command_context,
    esc,
    out,
    print_json,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.pipelines._pipeline import Pipeline

app = room_app(
    "pipelines",
    "LLM pipelines: run a YAML pipeline, validate it, register it (then `opsloop serve`).",
)

FileArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="Pipeline YAML file.", show_default=False)
]


def _parse_inputs(pairs: list[str], types: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--input {p!r} must look like name=value")
        t = types.get(key, "string")
        if t == "string":
            values[key] = raw
            continue
        try:
            values[key] = json.loads(raw)
        except ValueError:
            raise InvalidArgument(f"--input {key}: {raw!r} is not a {t}") from None
    return values


@app.command("validate")
def validate_cmd(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a pipeline file: fields, step references, tools and JSON schemas."""
    p = Pipeline.from_yaml(file)
    info = {
        "name": p.name,
        "inputs": p.inputs,
        "outputs": list(p.outputs),
        "steps": [{"name": s.name, "type": s.type} for s in p.steps],
        "tools": sorted(p.tools),
    }
    if as_json:
        print_json(info)
        return
    out().print(
        f"[green]valid[/] pipeline [bold]{esc(p.name)}[/]: inputs {esc(p.inputs)}, "
        f"outputs {esc(list(p.outputs))}"
    )
    t = Table("#", "step", "type")
    for i, s in enumerate(p.steps, 1):
        t.add_row(str(i), esc(s.name), s.type)
    out().print(t)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    file: FileArg,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", metavar="NAME=VALUE", help="An input (repeat for each)."),
    ] = None,
    home: HomeOption = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Where converted model weights are cached."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline once; print its outputs and the trace id (`opsloop traces show ID`)."""
    from opsloop.tracing import Tracing  # lazy: loads sqlalchemy

    with command_context(ctx, home) as context:
        tracing = context.room(Tracing)
        p = Pipeline.from_yaml(file)
        p.configure(client=context, cache_dir=cache_dir, tracer=tracing.tracer)
        values = _parse_inputs(list(inputs or []), p.input_types)
        result = p.run(values)
        tracing.flush()
    if as_json:
        print_json({"outputs": result.outputs, "trace_id": result.trace_id})
        return
    for k, v in result.outputs.items():
        text = v if isinstance(v, str) else json.dumps(v, indent=2, ensure_ascii=False, default=str)
        out().print(f"[bold]{esc(k)}[/]: {esc(text)}")
    out().print(f"[dim]trace {result.trace_id}[/]")


@app.command("register")
def register_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registry name.", show_default=False)],
    file: FileArg,
    alias: Annotated[
        str | None, typer.Option(metavar="ALIAS", help="Point this alias at the new version.")
    ] = None,
    description: Annotated[str, typer.Option(help="Version description.")] = "",
    home: HomeOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a pipeline file as a new version of NAME (kind pipeline, flavor pipeline)."""
    p = Pipeline.from_yaml(file)
    with command_context(ctx, home) as context:
        mv = p.register(context, name, alias=alias, description=description)
    if as_json:
        print_json(mv.model_dump(mode="json"))
        return
    extra = f" (alias {esc(alias)})" if alias else ""
    out().print(
        f"registered [bold]{esc(mv.name)}[/] version {mv.version}{extra}: "
        f"serve it with `opsloop serve models:/{esc(mv.name)}/{mv.version}`"
    )
