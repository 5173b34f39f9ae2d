"""``opsloop gc``: remove artifact blobs no row references (a dry run unless told)."""

from __future__ import annotations

import re
import time
from typing import Annotated

import typer

from opsloop.core.cli import (
    HomeOption,
    err,
    esc,
    fmt_bytes,
    out,
    print_json,
    resolve_settings,
)
from opsloop.errors import InvalidArgument
from opsloop.rooms import load_all_tables

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_age(text: str) -> float:
    """``"1h"``, ``"30m"``, ``"45s"``, ``"2d"``, ``"0"`` or plain seconds, as seconds."""
    m = _AGE.match(text or "")
    if not m:
        raise InvalidArgument(
            f"--min-age {text!r} is not a duration: use e.g. 0, 90s, 30m, 1h or 2d",
            details={"min_age": text},
        )
    return float(m.group(1)) * _UNITS[m.group(2)]


def _fmt_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def gc(
    ctx: typer.Context,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "--delete",
            help="Remove what was found (default: a dry run that only lists it).",
        ),
    ] = False,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age",
            metavar="AGE",
            help="Leave blobs written less than AGE ago (0, 90s, 30m, 1h, 2d): "
            "a writer stores a blob, then commits the row naming it.",
        ),
    ] = "1h",
    show: Annotated[
        int, typer.Option("--show", metavar="N", help="List at most N blobs (0: none).")
    ] = 20,
    database_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Database to read references from. Default: `$OPSLOOP_DATABASE_URL`, "
            "else SQLite in the home folder.",
            show_default=False,
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None,
        typer.Option(
            metavar="URI",
            help="Artifact store (a folder or s3://bucket/prefix). "
            "Default: `$OPSLOOP_ARTIFACT_URI`, else the home's artifacts/.",
            show_default=False,
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Remove artifact blobs that no row references (runs' artifacts, dataset and model versions).

    A dry run unless `--yes`: it lists the blobs it would remove and their bytes.
    Safe while writers run: a blob written less than `--min-age` ago (default 1h)
    is never removed, and each blob is checked against the database again right
    before it goes. Purged runs, replaced artifacts and deleted versions leave
    such blobs; interrupted uploads leave temporary files, removed too.
    Runs where the database and the store are (not through a server).

    Examples:

        opsloop gc
        opsloop gc --yes
        opsloop gc --min-age 7d --yes --json
        opsloop gc --database-url postgresql+psycopg://me@db/opsloop --artifact-uri s3://bucket/opsloop
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from opsloop.store import (  # lazy: loads sqlalchemy
        Database,
        collect_garbage,
        open_artifact_store,
    )

    min_age_s = parse_age(min_age)
    if show < 0:
        raise InvalidArgument(f"--show must be 0 or more, got {show}")
    settings = resolve_settings(
        home=home, database_url=database_url, artifact_uri=artifact_uri, ctx=ctx
    )
    if settings.is_remote:
        raise InvalidArgument(
            f"opsloop gc works on the database and the artifact store directly, not through "
            f"a server ({settings.tracking_uri}): run it where they are reachable, with "
            "--home, or --database-url and --artifact-uri"
        )
    store = open_artifact_store(
        settings.resolved_artifact_uri,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
    )
    db = Database(settings.resolved_database_url)
    try:
        db.check_schema()
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err(),
            transient=True,
            disable=json_,
        ) as bar:
            task = bar.add_task("listing blobs", total=None)
            labels = {
                "listing": "listing blobs",
                "checking": "checking references",
                "deleting": "removing",
            }

            def progress(phase: str, done: int, total: int | None) -> None:
                bar.update(task, description=labels[phase], completed=done, total=total)

            report = collect_garbage(
                db,
                store,
                load_all_tables(),
                min_age_s=min_age_s,
                delete=yes,
                progress=progress,
            )
    finally:
        db.dispose()

    if json_:
        print_json(report.as_dict())
        return
    console = out()
    now = time.time()
    where = f"{esc(settings.resolved_artifact_uri)}"
    console.print(
        f"{where}: {report.blobs:,} blobs ({fmt_bytes(report.blob_bytes)}), "
        f"{report.referenced:,} referenced"
    )
    listing = report.deleted if yes else report.garbage
    for b in listing[:show]:
        console.print(
            f"  {b.digest}  {fmt_bytes(b.size):>10}  written {_fmt_age(now - b.modified)} ago",
            soft_wrap=True,
        )
    if len(listing) > show:
        console.print(f"  [dim]... and {len(listing) - show:,} more (--show N, --json)[/]")
    temp = report.deleted_temp if yes else report.temp
    if temp:
        console.print(
            f"{'removed' if yes else 'would remove'} {len(temp):,} leftover temporary "
            f"file(s) of interrupted uploads ({fmt_bytes(sum(t.size for t in temp))})"
        )
    if report.young:
        console.print(
            f"[dim]{report.young:,} unreferenced blob(s) written less than {esc(min_age)} "
            f"ago are left (--min-age)[/]"
        )
    if yes:
        console.print(
            f"[bold green]removed {len(report.deleted):,} blob(s), "
            f"{fmt_bytes(report.deleted_bytes)}[/]"
        )
        if report.kept:
            console.print(
                f"{len(report.kept):,} kept: named by a row or written again by the last "
                "check (or already gone)"
            )
        return
    if report.garbage:
        console.print(
            f"[bold]would remove {len(report.garbage):,} blob(s), "
            f"{fmt_bytes(report.garbage_bytes)}[/]: run again with --yes to remove them"
        )
    else:
        console.print("nothing to remove")
