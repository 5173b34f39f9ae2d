"""The ``opsloop`` command line: thin Typer commands over ``opsloop.Client`` and the server.

Every ``OpsloopError`` a command raises is printed as ``error [CODE]: message``
on stderr, without a traceback, and exits 1 (2 for usage errors and a
database schema that needs ``opsloop db upgrade``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsloop._version import __version__
from opsloop.cli import _db, _loop
from opsloop.cli._doctor import doctor
from opsloop.cli._gc import gc
from opsloop.cli._quickstart import quickstart
from opsloop.cli._server import server
from opsloop.core import load_ref
from opsloop.core.cli import EXIT_CODES_HELP, OpsloopGroup, importable_cwd
from opsloop.rooms import declarations

app = typer.Typer(
    name="opsloop",
    cls=OpsloopGroup,
    help="opsloop: track experiments and runs, compare them, and serve the UI.\n\n"
    "Start with `opsloop quickstart`, which trains a small real sweep and opens the UI.\n\n"
    + EXIT_CODES_HELP,
    rich_markup_mode="markdown",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opsloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="PATH",
            help="opsloop home folder for every command (a command's own `--home` wins). "
            "Default: `$OPSLOOP_HOME` or `~/.opsloop`.",
            show_default=False,
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            metavar="URI",
            help="A server (`http://host:5000`), a database URL or a home folder. "
            "Default: `$OPSLOOP_TRACKING_URI`, else work embedded on the home folder.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also show other libraries' log lines, warnings and progress bars "
            "(Optuna, transformers, Hugging Face, Ray, ...). Also: `OPSLOOP_VERBOSE=1`.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = {"home": home, "tracking_uri": tracking_uri, "verbose": verbose}
    importable_cwd()  # user code (pipeline steps, objectives) imports from the current folder


def add_room_commands(root: typer.Typer) -> None:
    """Mount every room's commands and command groups, from its declaration (opsloop/rooms.py).

    A room's CLI modules import only typer, rich and the room's light modules.
    """
    for room in declarations():
        for name, ref in room.cli_commands:
            root.command(name, epilog=EXIT_CODES_HELP)(load_ref(ref))
        for ref in room.cli_groups:
            root.add_typer(load_ref(ref))


app.command("server", epilog=EXIT_CODES_HELP)(server)
app.command("quickstart", epilog=EXIT_CODES_HELP)(quickstart)
app.command("gc", epilog=EXIT_CODES_HELP)(gc)
app.command("doctor", epilog=EXIT_CODES_HELP)(doctor)
app.add_typer(_db.app)
app.add_typer(_loop.app)
add_room_commands(app)


def main() -> None:
    """Entry point of the ``opsloop`` console script."""
    app()
