"""``opsloop gateway``: run the LLM gateway, and manage its routes, teams, keys; read usage."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

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
    parse_pairs,
    print_json,
    resolve_settings,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.gateway._client import Gateway
from opsloop.gateway.entities import Limits

app = room_app(
    "gateway",
    "The LLM gateway: one OpenAI-compatible endpoint in front of routes, with virtual keys, "
    "limits and budgets, retries, fallbacks, breakers, a cache and guardrails.",
)
routes_app = room_app("routes", "Routes: what a `model` name sends requests to.")
keys_app = room_app("keys", "Virtual keys: hashed, scoped to routes, with limits and expiry.")
teams_app = room_app("teams", "Teams: limits shared by all their keys.")
app.add_typer(routes_app, name="routes")
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")

LimitOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--limit",
        metavar="NAME=VALUE",
        help="A limit (repeatable): requests_per_minute, input_tokens_per_minute, "
        "output_tokens_per_minute, daily_tokens, monthly_tokens, daily_cost_usd, "
        "monthly_cost_usd, max_input_tokens, max_output_tokens, timeout_s.",
    ),
]


@contextlib.contextmanager
def _gateway(ctx: typer.Context, home: Path | None) -> Iterator[Gateway]:
    with command_context(ctx, home) as context:
        yield context.room(Gateway)


def _limits(items: list[str] | None) -> dict[str, Any]:
    pairs = parse_pairs(items, "--limit")
    known = set(Limits.model_fields)
    out_: dict[str, Any] = {}
    for k, v in pairs.items():
        if k not in known:
            raise InvalidArgument(f"--limit {k}: unknown limit; one of {', '.join(sorted(known))}")
        try:
            out_[k] = float(v) if ("cost" in k or k == "timeout_s") else int(v)
        except ValueError:
            raise InvalidArgument(f"--limit {k}={v}: not a number") from None
    return out_


def _duration_ms(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not m:
        raise InvalidArgument(f"--expires-in {text!r}: a number and s, m, h or d (e.g. 30d)")
    return int(float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)] * 1000)


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 4000,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis for counters and cache shared by replicas "
            "(default `$OPSLOOP_REDIS_URL`; unset: the database).",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the gateway: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`.

    Clients send a virtual key (`Authorization: Bearer sk-ogw-...`) and a route
    name as `model`. Run several on one store (and one Redis) for replicas:
    limits and budgets hold across them.

    Examples:

        opsloop gateway serve --port 4000
        opsloop gateway serve --port 4001 --redis-url redis://127.0.0.1:6379/0
    """
    from opsloop.gateway._run import run_gateway  # lazy: loads fastapi and uvicorn

    settings = resolve_settings(home=home, ctx=ctx)

    def ready(url: str) -> None:
        out().print(f"[bold]opsloop gateway:[/] {url}/v1  (routes: `opsloop gateway routes list`)")

    run_gateway(
        settings,
        host=host,
        port=port,
        redis_url=redis_url,
        log_level=log_level.lower(),
        on_ready=ready,
    )
    out().print("opsloop gateway: stopped")


# -- routes ---------------------------------------------------------------------------------


@routes_app.command("set")
def routes_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Route name: the `model` clients send.")],
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url", help="Upstream base URL (`http://host:port/v1`), repeatable: balanced."
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            help="A `models:/` URI "
            "served by `opsloop serve` (its running deployments), repeatable.",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name sent upstream.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Env var holding the upstream key.")
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option("--fallback", help="Fallback route (repeatable, in order).")
    ] = None,
    retries: Annotated[int, typer.Option(help="Retries per upstream.", min=0, max=10)] = 2,
    timeout: Annotated[float, typer.Option(help="Request timeout (s).", min=0.001)] = 60.0,
    price_in: Annotated[float, typer.Option(help="USD per 1M input tokens.", min=0)] = 0.0,
    price_out: Annotated[float, typer.Option(help="USD per 1M output tokens.", min=0)] = 0.0,
    cache_ttl: Annotated[int, typer.Option(help="Cache TTL (s); 0: off.", min=0)] = 0,
    semantic: Annotated[
        float | None,
        typer.Option(
            help="Also answer paraphrases from the cache at this MiniLM similarity "
            "(0.5-1; off by default; see docs/gateway.md for its measured false hits).",
            min=0.5,
            max=1.0,
        ),
    ] = None,
    guard: Annotated[
        list[str] | None,
        typer.Option(
            "--guard",
            metavar="NAME=ACTION",
            help="A guardrail (repeatable): injection=block, pii=redact, "
            "secrets=block, output_pii=redact, output_secrets=redact, canary=TEXT.",
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            help="A JSON file with the whole route spec (the options above are then ignored)."
        ),
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Create or replace a route.

    Examples:

        opsloop gateway routes set chat --url http://127.0.0.1:8000/v1 --price-in 0.15 --price-out 0.6
        opsloop gateway routes set safe --deployment models:/smol@prod --guard injection=block --guard pii=redact
    """
    if spec is not None:
        try:
            body: dict[str, Any] = json.loads(spec.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"--spec {spec}: {exc}") from None
    else:
        ups = [{"url": u, "model": model, "api_key_env": api_key_env} for u in url or []]
        ups += [
            {"deployment": d, "model": model, "api_key_env": api_key_env} for d in deployment or []
        ]
        if not ups:
            raise InvalidArgument("give at least one --url or --deployment (or --spec)")
        body = {
            "upstreams": ups,
            "fallbacks": list(fallback or []),
            "retry": {"max_retries": retries},
            "timeout_s": timeout,
            "prices": {"input_per_mtok": price_in, "output_per_mtok": price_out},
            "cache": {"ttl_s": cache_ttl, "semantic_similarity": semantic},
            "guards": dict(parse_pairs(guard, "--guard")),
        }
    with _gateway(ctx, home) as gw:
        r = gw.set_route(name, body)
    if json_:
        print_json(r.model_dump(mode="json"))
        return
    out().print(
        f"route [bold]{esc(r.name)}[/]: {len(r.upstreams)} upstream(s)"
        + (f", fallbacks {', '.join(r.fallbacks)}" if r.fallbacks else "")
    )


@routes_app.command("list")
def routes_list(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """List routes."""
    with _gateway(ctx, home) as gw:
        items = gw.list_routes()
    if json_:
        print_json([r.model_dump(mode="json") for r in items])
        return
    cols = [
        Col("Route", key=True),
        Col("Upstreams"),
        Col("Fallbacks", drop=1),
        Col("Prices in/out", drop=2),
        Col("Cache", drop=3),
        Col("Updated", drop=4, min_width=19),
    ]
    rows = [
        [
            esc(r.name),
            esc(", ".join(u.url or u.deployment or "" for u in r.upstreams)),
            esc(", ".join(r.fallbacks)),
            f"{r.prices.input_per_mtok:g}/{r.prices.output_per_mtok:g}",
            (
                f"{r.cache.ttl_s}s"
                + (
                    f", semantic {r.cache.semantic_similarity:g}"
                    if r.cache.semantic_similarity
                    else ""
                )
            )
            if r.cache.ttl_s
            else "off",
            fmt_time(r.updated_at),
        ]
        for r in items
    ]
    out().print(fit_table(cols, rows, title=f"{len(items)} route(s)"))


@routes_app.command("show")
def routes_show(ctx: typer.Context, name: str, home: HomeOption = None) -> None:
    """Show one route as JSON."""
    with _gateway(ctx, home) as gw:
        print_json(gw.get_route(name).model_dump(mode="json"))


@routes_app.command("delete")
def routes_delete(ctx: typer.Context, name: str, home: HomeOption = None) -> None:
    """Delete a route."""
    with _gateway(ctx, home) as gw:
        gw.delete_route(name)
    out().print(f"deleted route {esc(name)}")


# -- keys -----------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key (user, app...).")],
    route: Annotated[
        list[str] | None,
        typer.Option("--route", help="A route it may call (repeatable; `*`: all)."),
    ] = None,
    team: Annotated[str | None, typer.Option(help="Its team (shares the team's limits).")] = None,
    owner: Annotated[str, typer.Option(help="Who it belongs to.")] = "",
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12h.")] = None,
    limit: LimitOpt = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Create a virtual key; its secret is printed once (only its hash is stored).

    Examples:

        opsloop gateway keys create app1 --route chat --team research --limit daily_cost_usd=1 --expires-in 30d
    """
    expires = int(time.time() * 1000) + _duration_ms(expires_in) if expires_in else None
    with _gateway(ctx, home) as gw:
        created = gw.create_key(
            name,
            routes=list(route or []),
            team=team,
            owner=owner,
            limits=_limits(limit),
            expires_at=expires,
        )
    if json_:
        print_json(created.model_dump(mode="json"))
        return
    out().print(f"key [bold]{created.key.id}[/] ({esc(name)}); its secret, shown once:")
    out().print(created.secret, markup=False, highlight=False)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option()] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List keys (never their secrets)."""
    with _gateway(ctx, home) as gw:
        items = gw.list_keys(team=team)
    if json_:
        print_json([k.model_dump(mode="json") for k in items])
        return
    now = int(time.time() * 1000)
    cols = [
        Col("ID", key=True),
        Col("Name", key=True),
        Col("Prefix", drop=3),
        Col("Team", drop=2),
        Col("Routes", drop=1),
        Col("Status"),
        Col("Expires", drop=4, min_width=19),
    ]
    rows = []
    for k in items:
        status = (
            "revoked"
            if k.revoked_at
            else "expired"
            if k.expires_at and k.expires_at <= now
            else "active"
        )
        rows.append(
            [
                k.id,
                esc(k.name),
                k.prefix + "...",
                esc(k.team or ""),
                esc(", ".join(k.routes)),
                status,
                fmt_time(k.expires_at) if k.expires_at else "",
            ]
        )
    out().print(fit_table(cols, rows, title=f"{len(items)} key(s)"))


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str, home: HomeOption = None) -> None:
    """Revoke a key (gateways refuse it within a second)."""
    with _gateway(ctx, home) as gw:
        k = gw.revoke_key(key_id)
    out().print(f"revoked key {k.id} ({esc(k.name)})")


@keys_app.command("limits")
def keys_limits(
    ctx: typer.Context, key_id: str, limit: LimitOpt = None, home: HomeOption = None
) -> None:
    """Replace a key's limits."""
    with _gateway(ctx, home) as gw:
        k = gw.set_key_limits(key_id, _limits(limit))
    print_json(k.limits.model_dump(exclude_none=True))


# -- teams ----------------------------------------------------------------------------------


@teams_app.command("set")
def teams_set(
    ctx: typer.Context, name: str, limit: LimitOpt = None, home: HomeOption = None
) -> None:
    """Create a team or replace its limits."""
    with _gateway(ctx, home) as gw:
        t = gw.set_team(name, _limits(limit))
    out().print(
        f"team [bold]{esc(t.name)}[/]: {json.dumps(t.limits.model_dump(exclude_none=True))}"
    )


@teams_app.command("list")
def teams_list(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """List teams and their limits."""
    with _gateway(ctx, home) as gw:
        items = gw.list_teams()
    if json_:
        print_json([t.model_dump(mode="json") for t in items])
        return
    rows = [[esc(t.name), esc(json.dumps(t.limits.model_dump(exclude_none=True)))] for t in items]
    out().print(
        fit_table([Col("Team", key=True), Col("Limits")], rows, title=f"{len(items)} team(s)")
    )


# -- usage ----------------------------------------------------------------------------------


@app.command("usage")
def usage_command(
    ctx: typer.Context,
    group_by: Annotated[str, typer.Option(help="key, team, route, model or none.")] = "key",
    bucket: Annotated[str | None, typer.Option(help="hour or day.")] = None,
    since_hours: Annotated[float | None, typer.Option(help="Only the last N hours.", min=0)] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Requests, errors, tokens, cost and cache hits through the gateway."""
    since = int((time.time() - since_hours * 3600) * 1000) if since_hours is not None else None
    with _gateway(ctx, home) as gw:
        rep = gw.usage(group_by=group_by, bucket=bucket, since=since)
    if json_:
        print_json(rep.model_dump(mode="json"))
        return
    cols = [Col(group_by.capitalize(), key=True)]
    if bucket:
        cols.append(Col("Bucket", min_width=19))
    cols += [
        Col("Requests"),
        Col("Errors", drop=2),
        Col("Input tok"),
        Col("Output tok"),
        Col("Cost USD"),
        Col("Cache hits", drop=1),
    ]
    rows = []
    for r in rep.rows:
        row = [esc(r.group or "")]
        if bucket:
            row.append(fmt_time(r.bucket))
        row += [
            str(r.requests),
            str(r.errors),
            str(r.input_tokens),
            str(r.output_tokens),
            f"{r.cost_usd:.6f}",
            str(r.cache_hits),
        ]
        rows.append(row)
    out().print(fit_table(cols, rows, title="gateway usage"))
