"""The ``opsloop`` command line: thin Typer commands over ``opsloop.Client`` and the server.

A command imports only what it uses: the root group (``RootGroup``) knows
every command's name from ``COMMANDS``, ``GROUPS`` and the rooms'
declarations, and imports a command's module when that command is run.

Every ``OpsloopError`` a command raises is printed as ``error [CODE]: message``
on stderr, without a traceback, and exits 1 (2 for usage errors and a
database schema that needs ``opsloop db upgrade``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.models import TyperInfo

from opsloop._version import __version__
from opsloop.core import load_ref
from opsloop.core.cli import EXIT_CODES_HELP, OpsloopGroup, importable_cwd
from opsloop.rooms import declarations

# The hub's own commands and groups, before the rooms' ones: (name, "module:attr").
COMMANDS: tuple[tuple[str, str], ...] = (
    ("server", "opsloop.cli._server:server"),
    ("quickstart", "opsloop.cli._quickstart:quickstart"),
    ("gc", "opsloop.cli._gc:gc"),
    ("doctor", "opsloop.cli._doctor:doctor"),
)
GROUPS: tuple[tuple[str, str], ...] = (
    ("db", "opsloop.cli._db:app"),
    ("loop", "opsloop.cli._loop:app"),
)


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, each built (its module imported) when first looked up.

    The names and their order are known up front, so listing the commands, a
    typo's suggestions and shell completion of a command's name import nothing.
    """

    def __init__(self, loaders: dict[str, Callable[[], Any]], loaded: dict[str, Any]) -> None:
        self._loaders = loaders
        self._loaded = loaded
        self._order = [*loaded, *(n for n in loaders if n not in loaded)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self._loaders[name]()  # KeyError: no such command
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._loaded.pop(name, None)
        self._loaders.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)


class RootGroup(OpsloopGroup):
    """The ``opsloop`` group: a command imports only its own module (and room) when run.

    Its commands and groups are named by ``COMMANDS``, ``GROUPS`` and every
    room's declaration (``cli_commands``, ``cli_groups``); each is imported
    and converted to a click command when first looked up. The root help
    shows them all, so it loads them all.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        markup = self.rich_markup_mode
        short = app.pretty_exceptions_short
        loaders: dict[str, Callable[[], Any]] = {}
        commands = [*COMMANDS, *(c for room in declarations() for c in room.cli_commands)]
        groups = [*GROUPS, *(g for room in declarations() for g in room.cli_groups)]
        for name, ref in commands:
            loaders[name] = functools.partial(_command, name, ref, markup, short)
        for name, ref in groups:
            loaders[name] = functools.partial(
                _group, name, ref, markup, short, self.suggest_commands
            )
        self.commands = LazyCommands(loaders, dict(self.commands))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only: nothing is imported


def _command(name: str, ref: str, markup: Any, short: bool) -> Any:
    """The click command of the function ``ref``, as ``app.command(name)`` would make it."""
    one = typer.Typer()
    one.command(name, epilog=EXIT_CODES_HELP)(load_ref(ref))
    return typer.main.get_command_from_info(
        one.registered_commands[0], pretty_exceptions_short=short, rich_markup_mode=markup
    )


def _group(name: str, ref: str, markup: Any, short: bool, suggest: bool) -> Any:
    """The click group of the Typer app ``ref``, as ``app.add_typer`` would make it."""
    group = typer.main.get_group_from_info(
        TyperInfo(load_ref(ref)),
        pretty_exceptions_short=short,
        suggest_commands=suggest,
        rich_markup_mode=markup,
    )
    if group.name != name:
        raise TypeError(f"{ref} is the command group {group.name!r}, declared as {name!r}")
    return group


app = typer.Typer(
    name="opsloop",
    cls=RootGroup,
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


def main() -> None:
    """Entry point of the ``opsloop`` console script."""
    app()
