"""``opsloop tokens`` and ``opsloop audit``: API tokens, the permission rules, the audit trail."""

from __future__ import annotations

import contextlib
import re
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
    report_line,
    room_app,
)
from opsloop.errors import InvalidArgument
from opsloop.governance._client import Governance
from opsloop.governance._rules import rules

tokens_app = room_app(
    "tokens",
    "API tokens: per user, with a role (viewer < editor < admin < owner), hashed, expiring, "
    "revocable. Clients send one as `OPSLOOP_TOKEN`.",
)
audit_app = room_app(
    "audit", "The audit trail: every change made through the server, hash-chained."
)
retention_app = room_app(
    "retention",
    "Retention: traces, prediction log rows and request bodies older than the policy's days "
    "are deleted by the server on a schedule (OPSLOOP_RETENTION_*_DAYS).",
)

_STYLE = {"active": "green", "expired": "yellow", "revoked": "red"}


@contextlib.contextmanager
def _governance(ctx: typer.Context, home: Path | None) -> Iterator[Governance]:
    with command_context(ctx, home) as context:
        yield context.room(Governance)


def _seconds(text: str, option: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise InvalidArgument(f"{option} {text!r}: a number and s, m, h or d (e.g. 90d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    role: Annotated[
        str, typer.Option(help="viewer (read), editor (change), admin (tokens, audit) or owner.")
    ] = "viewer",
    name: Annotated[str, typer.Option(help="What it is for (a laptop, a CI job...).")] = "",
    expires_in: Annotated[
        str, typer.Option(help="Lifetime, e.g. 90d, 12h; `never` for none.")
    ] = "90d",
    workspace: Annotated[
        list[str] | None,
        typer.Option("--workspace", help="A workspace it may act in (repeatable; default all)."),
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Create an API token; its secret is printed once (only its hash is stored).

    On the server's home (or `--database-url` via `OPSLOOP_DATABASE_URL`) you act as owner:
    that is how the first admin token is made. Against a server you need an admin token and
    grant at most your own role.

    Examples:

        opsloop tokens create alice --role admin --name laptop
        opsloop tokens create ci-bot --role editor --expires-in 30d
    """
    expires = None if expires_in.strip() == "never" else _seconds(expires_in, "--expires-in")
    with _governance(ctx, home) as gov:
        created = gov.create_token(
            user, role, name=name, workspaces=workspace, expires_in_s=expires
        )
    if json_:
        print_json(created.model_dump(mode="json"))
        return
    t = created.token
    out().print(f"token [bold]{t.id}[/] for {esc(t.user)} ({t.role}); its secret, shown once:")
    out().print(created.secret, markup=False, highlight=False)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only usable tokens.")] = False,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List tokens, newest first (never their secrets)."""
    with _governance(ctx, home) as gov:
        items = gov.list_tokens(user=user, active_only=active)
    if json_:
        print_json([t.model_dump(mode="json") for t in items])
        return
    cols = [
        Col("ID", key=True),
        Col("User", key=True),
        Col("Role"),
        Col("Status"),
        Col("Name", drop=3),
        Col("Prefix", drop=4),
        Col("Expires", drop=2, min_width=19),
        Col("Last used", drop=1, min_width=19),
    ]
    rows = [
        [
            t.id,
            esc(t.user),
            t.role,
            f"[{_STYLE[t.status]}]{t.status}[/]",
            esc(t.name),
            esc(t.prefix) + "…",
            fmt_time(t.expires_at) if t.expires_at else "never",
            fmt_time(t.last_used_at) if t.last_used_at else "",
        ]
        for t in items
    ]
    out().print(fit_table(cols, rows))


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (`tok_...`).")],
    home: HomeOption = None,
) -> None:
    """Revoke a token at once: its next request answers 401 TOKEN_REVOKED."""
    with _governance(ctx, home) as gov:
        t = gov.revoke_token(token_id)
    out().print(f"token [bold]{t.id}[/] of {esc(t.user)}: revoked")


@tokens_app.command("rules")
def tokens_rules(json_: JsonOpt = False) -> None:
    """Print the permission rule of every server route: method, route, least role."""
    table = rules()
    if json_:
        print_json([{"method": m, "route": r, "role": level} for (m, r), level in table.items()])
        return
    cols = [Col("Method", key=True), Col("Route", key=True), Col("Role", key=True)]
    out().print(fit_table(cols, [[m, esc(r), level] for (m, r), level in table.items()]))


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this user's changes.")] = None,
    method: Annotated[str | None, typer.Option(help="Only this HTTP method.")] = None,
    path: Annotated[str | None, typer.Option(help="Only paths containing this.")] = None,
    token: Annotated[str | None, typer.Option(help="Only changes made with this token id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only the last while, e.g. 1h, 7d.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=10_000)] = 100,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List audit entries, newest first.

    Examples:

        opsloop audit list --actor alice --since 1d
        opsloop audit list --path /registry/models --method PUT
    """
    after = int((time.time() - _seconds(since, "--since")) * 1000) if since else None
    with _governance(ctx, home) as gov:
        items = gov.audit(
            actor=actor, method=method, path=path, token_id=token, since=after, limit=limit
        )
    if json_:
        print_json([e.model_dump(mode="json") for e in items])
        return
    cols = [
        Col("Seq", key=True),
        Col("When", min_width=19),
        Col("Who", key=True),
        Col("Method"),
        Col("Path", key=True),
        Col("Status", drop=2),
        Col("From", drop=1),
    ]
    rows = [
        [str(e.seq), fmt_time(e.at), esc(e.actor), e.method, esc(e.path), str(e.status), e.client]
        for e in items
    ]
    out().print(fit_table(cols, rows))


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    expect: Annotated[
        str | None,
        typer.Option(
            metavar="HASH",
            help="A head hash noted earlier (elsewhere): it must still be in the chain.",
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Recompute the audit trail's hash chain; exit 1 naming the first bad entry.

    Note the printed head hash somewhere else: `--expect` it later, and a rewrite
    of the whole chain is noticed too.
    """
    with _governance(ctx, home) as gov:
        check = gov.verify_audit(expect_hash=expect)
    if json_:
        print_json(check.model_dump(mode="json"))
    elif check.ok:
        out().print(
            f"audit trail intact: {check.entries} entries, head {check.head_seq} "
            f"hash {check.head_hash}"
        )
    if not check.ok:
        report_line("AUDIT_CHAIN_BROKEN", f"entry {check.first_bad_seq}: {check.problem}")
        raise typer.Exit(1)


@retention_app.command("show")
def retention_show(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """Print the retention policy in force (the server's, against a server)."""
    with _governance(ctx, home) as gov:
        p = gov.retention_policy()
    if json_:
        print_json(p.model_dump(mode="json"))
        return
    for kind in ("traces", "predictions", "bodies"):
        days = getattr(p, f"{kind}_days")
        out().print(f"{kind}: " + (f"{days:g} days" if days is not None else "kept forever"))
    out().print(f"every {p.interval_s:g} s, {p.batch} rows per batch")


@retention_app.command("run")
def retention_run(ctx: typer.Context, home: HomeOption = None, json_: JsonOpt = False) -> None:
    """Apply the retention policy once now, in bounded batches; print what was removed.

    Examples:

        OPSLOOP_RETENTION_TRACES_DAYS=30 opsloop retention run
    """
    with _governance(ctx, home) as gov:
        report = gov.run_retention()
    if json_:
        print_json(report.model_dump(mode="json"))
        return
    if not report.results:
        out().print("no retention policy is set: nothing removed")
    for r in report.results:
        verb = "emptied" if r.kind == "bodies" else "deleted"
        out().print(
            f"{r.kind}: {r.rows} rows {verb} before {fmt_time(r.before_ms)} ({esc(r.hook)})"
        )
