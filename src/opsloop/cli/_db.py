"""``opsloop db``: the metadata database's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.core.cli import HomeOption, esc, out, print_json, resolve_settings

app = typer.Typer(
    name="db",
    help="Database schema: show the revision, upgrade it after installing a newer opsloop.",
    no_args_is_help=True,
)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="SQLAlchemy URL of the database. Default: `$OPSLOOP_DATABASE_URL`, "
        "else SQLite in the home folder.",
        show_default=False,
    ),
]


@app.command("upgrade")
def upgrade(
    ctx: typer.Context, database_url: DatabaseUrlOption = None, home: HomeOption = None
) -> None:
    """Migrate the database schema to this opsloop's version (creates it when empty).

    Back up the database first: migrations change tables in place.

    Examples:

        opsloop db upgrade
        opsloop db upgrade --database-url postgresql+psycopg://me@db/opsloop
    """
    from opsloop.store import SCHEMA_HEAD, Database  # lazy: loads sqlalchemy
    from opsloop.store.migrate import known_revisions  # lazy: loads alembic
    from opsloop.store.migrate import upgrade as run_upgrade  # lazy: loads alembic

    settings = resolve_settings(home=home, database_url=database_url, ctx=ctx)
    db = Database(settings.resolved_database_url)
    try:
        before = db.current_revision()
        if before is not None and before not in known_revisions():
            db.check_schema()  # raises SchemaOutOfDate: written by a newer opsloop
        if before == SCHEMA_HEAD:
            out().print(f"{esc(db.safe_url)}: already at revision [bold]{SCHEMA_HEAD}[/] (head)")
            return
        with out().status(f"Upgrading {esc(db.safe_url)} ..."):
            run_upgrade(db.url)
        after = db.current_revision()
    finally:
        db.dispose()
    out().print(
        f"{esc(db.safe_url)}: upgraded from [bold]{esc(before or 'an empty database')}[/] "
        f"to [bold green]{esc(after)}[/]"
    )


@app.command("current")
def current(
    ctx: typer.Context,
    database_url: DatabaseUrlOption = None,
    home: HomeOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the database's schema revision and whether it needs `opsloop db upgrade`.

    Examples:

        opsloop db current
        opsloop db current --json
    """
    from opsloop.store import SCHEMA_HEAD, Database  # lazy: loads sqlalchemy
    from opsloop.store.migrate import known_revisions  # lazy: loads alembic

    settings = resolve_settings(home=home, database_url=database_url, ctx=ctx)
    db = Database(settings.resolved_database_url)
    try:
        rev = db.current_revision()
        empty = rev is None and db.is_empty()
    finally:
        db.dispose()
    if rev == SCHEMA_HEAD:
        state = "up to date"
    elif empty:
        state = "empty (the schema is created on first use)"
    elif rev is None:
        state = "no opsloop schema: run `opsloop db upgrade`"
    elif rev in known_revisions():
        state = "out of date: run `opsloop db upgrade`"
    else:
        state = "newer than this opsloop: upgrade opsloop"
    if json_:
        print_json({"database": db.safe_url, "current": rev, "head": SCHEMA_HEAD, "state": state})
        return
    out().print(f"database: {esc(db.safe_url)}")
    out().print(f"revision: [bold]{esc(rev or '-')}[/]  (this opsloop: {SCHEMA_HEAD})")
    out().print(f"state:    {state}", markup=False)
