"""``opsloop approvals``: protected aliases and the approvals that move them."""

from __future__ import annotations

import contextlib
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
from opsloop.governance._client import Governance
from opsloop.governance.entities import Approval

approvals_app = room_app(
    "approvals",
    "Protected aliases (such as production) move only when a named reviewer approves a "
    "request; the promotion gate's result is shown to the reviewer.",
)

_STYLE = {"pending": "yellow", "approved": "green", "rejected": "red"}
Comment = Annotated[str, typer.Option(help="Why (kept with the decision).")]
ApprovalId = Annotated[str, typer.Argument(help="The approval's id (`apr_...`).")]


@contextlib.contextmanager
def _governance(ctx: typer.Context, home: Path | None) -> Iterator[Governance]:
    with command_context(ctx, home) as context:
        yield context.room(Governance)


def _show(a: Approval, json_: bool) -> None:
    if json_:
        print_json(a.model_dump(mode="json"))
        return
    frm = f"v{a.from_version}" if a.from_version is not None else "nothing"
    out().print(
        f"approval [bold]{a.id}[/]: {esc(a.alias)} of {esc(a.model)} from {frm} to v{a.version} "
        f"[{_STYLE[a.state]}]{a.state}[/] (asked by {esc(a.requested_by)})"
    )
    gate = f"promotion gate: {a.gate}" + (" (forced)" if a.force and a.gate == "failed" else "")
    out().print(gate)
    for f in a.gate_failures:
        out().print(f"  - {esc(str(f.get('message') or f))}")
    if a.decided_by:
        out().print(
            f"{a.state} by {esc(a.decided_by)}" + (f": {esc(a.comment)}" if a.comment else "")
        )


@approvals_app.command("protect")
def protect(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model.")],
    alias: Annotated[str, typer.Argument(help="The alias to protect, e.g. production.")],
    reviewer: Annotated[
        list[str] | None,
        typer.Option("--reviewer", help="A user who may approve (repeatable); admins may too."),
    ] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Protect an alias: from now on it moves only when a reviewer approves a request.

    Examples:

        opsloop approvals protect churn production --reviewer vera --reviewer sam
    """
    with _governance(ctx, home) as gov:
        p = gov.protect_alias(model, alias, reviewers=reviewer)
    if json_:
        print_json(p.model_dump(mode="json"))
        return
    names = ", ".join(p.reviewers) or "admins and owners only"
    out().print(f"{esc(p.alias)} of {esc(p.model)} is protected; reviewers: {esc(names)}")


@approvals_app.command("unprotect")
def unprotect(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model.")],
    alias: Annotated[str, typer.Argument(help="The protected alias.")],
    home: HomeOption = None,
) -> None:
    """Lift an alias' protection (it then moves directly again)."""
    with _governance(ctx, home) as gov:
        gov.unprotect_alias(model, alias)
    out().print(f"{esc(alias)} of {esc(model)} is no longer protected")


@approvals_app.command("protections")
def protections(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List protected aliases and their reviewers."""
    with _governance(ctx, home) as gov:
        items = gov.list_protections(model=model)
    if json_:
        print_json([p.model_dump(mode="json") for p in items])
        return
    cols = [Col("Model", key=True), Col("Alias", key=True), Col("Reviewers"), Col("By", drop=1)]
    rows = [
        [esc(p.model), esc(p.alias), esc(", ".join(p.reviewers)), esc(p.updated_by)] for p in items
    ]
    out().print(fit_table(cols, rows))


@approvals_app.command("request")
def request(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The registered model.")],
    alias: Annotated[str, typer.Argument(help="The protected alias.")],
    version: Annotated[int, typer.Argument(help="The version it should name.", min=1)],
    force: Annotated[
        bool, typer.Option("--force", help="Ask to override a failed promotion gate.")
    ] = False,
    note: Annotated[str, typer.Option(help="For the reviewer.")] = "",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Ask to move a protected alias; a reviewer approves it (`opsloop approvals approve`).

    Examples:

        opsloop approvals request churn production 7 --note "beats v6 on the holdout"
    """
    with _governance(ctx, home) as gov:
        a = gov.request_approval(model, alias, version, force=force, note=note)
    _show(a, json_)


@approvals_app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="pending, approved or rejected.", show_default=False)
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=1000)] = 100,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """List approvals, newest first."""
    with _governance(ctx, home) as gov:
        items = gov.list_approvals(state=state, model=model, limit=limit)
    if json_:
        print_json([a.model_dump(mode="json") for a in items])
        return
    cols = [
        Col("ID", key=True),
        Col("Model", key=True),
        Col("Alias"),
        Col("Version"),
        Col("State"),
        Col("Gate", drop=2),
        Col("Asked by", drop=1),
        Col("When", drop=3, min_width=19),
        Col("Decided by", drop=4),
    ]
    rows = [
        [
            a.id,
            esc(a.model),
            esc(a.alias),
            str(a.version),
            f"[{_STYLE[a.state]}]{a.state}[/]",
            a.gate,
            esc(a.requested_by),
            fmt_time(a.requested_at),
            esc(a.decided_by or ""),
        ]
        for a in items
    ]
    out().print(fit_table(cols, rows))


@approvals_app.command("show")
def show(
    ctx: typer.Context,
    approval_id: ApprovalId,
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Show an approval: the move asked for and the promotion gate's result."""
    with _governance(ctx, home) as gov:
        a = gov.get_approval(approval_id)
    _show(a, json_)


@approvals_app.command("approve")
def approve(
    ctx: typer.Context,
    approval_id: ApprovalId,
    comment: Comment = "",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Approve: the alias moves now (a named reviewer, an admin or an owner; not the requester)."""
    with _governance(ctx, home) as gov:
        a = gov.approve(approval_id, comment=comment)
    _show(a, json_)


@approvals_app.command("reject")
def reject(
    ctx: typer.Context,
    approval_id: ApprovalId,
    comment: Comment = "",
    home: HomeOption = None,
    json_: JsonOpt = False,
) -> None:
    """Reject: the alias stays where it is."""
    with _governance(ctx, home) as gov:
        a = gov.reject(approval_id, comment=comment)
    _show(a, json_)
