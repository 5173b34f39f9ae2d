"""What every room's commands share: consoles, error handling, settings, contexts, formatting.

Commands stay thin: they turn options into a ``Settings``, open a
``Context`` for the command (``command_context``), call the room's public
functions on it, and render what comes back.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from opsloop.errors import InvalidArgument, OpsloopError, SchemaOutOfDate
from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop.core import Context  # lazy: loads sqlalchemy


def out() -> Console:
    """A console on the current stdout; made per use so ``COLUMNS`` and redirections apply."""
    return Console(highlight=False)


def err() -> Console:
    """A console on the current stderr."""
    return Console(stderr=True, highlight=False)


EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

EXIT_CODES_HELP = """\
**Exit codes:** `0` success; `1` an opsloop error (printed as `error [CODE]: message`);
`2` a usage error, or a database schema that needs `opsloop db upgrade`.
"""


def exit_code_for(exc: OpsloopError) -> int:
    """Usage-like errors exit 2 so scripts can tell "fix the command or database" apart."""
    return EXIT_USAGE if isinstance(exc, SchemaOutOfDate) else EXIT_ERROR


def report_error(exc: OpsloopError) -> None:
    """Print ``error [CODE]: message`` in red on stderr (never a traceback)."""
    from rich.text import Text

    err().print(
        Text.assemble((f"error [{exc.code}]", "bold red"), ": ", (exc.message, "red")),
        soft_wrap=True,
    )


_EXAMPLE_BLOCK = re.compile(r"^(Examples?:)\n\n((?:[ \t]+\S[^\n]*(?:\n|$))+)", re.MULTILINE)


def _fence_examples(help_text: str) -> str:
    """A docstring's indented ``Examples:`` block as a fenced code block, one command a line.

    typer renders help as Markdown and dedents the text after the first paragraph again,
    which turns an indented block that opens it into one run-on paragraph.
    """
    text = inspect.cleandoc(help_text)

    def fence(m: re.Match[str]) -> str:
        lines = inspect.cleandoc("\n" + m.group(2)).splitlines()
        return m.group(1) + "\n\n```\n" + "\n".join(lines) + "\n```\n"

    return _EXAMPLE_BLOCK.sub(fence, text)


def _fence_help(command: Any) -> None:
    if getattr(command, "_opsloop_fenced", False):
        return
    command._opsloop_fenced = True
    if command.help:
        command.help = _fence_examples(command.help)
    for sub in getattr(command, "commands", {}).values():
        _fence_help(sub)


class OpsloopGroup(TyperGroup):
    """The root command group: turns any ``OpsloopError`` into a message and an exit code."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _fence_help(command)
        return command

    # ``Any``: the context class is typer's vendored click one, which typer does not export.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OpsloopError as exc:
            report_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None


def room_app(name: str, help: str, **kwargs: Any) -> typer.Typer:
    """A room's command group (``opsloop NAME ...``): errors print as ``error [CODE]: message``
    and the group shows its help when given no command."""
    return typer.Typer(name=name, cls=OpsloopGroup, help=help, no_args_is_help=True, **kwargs)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# ---------------------------------------------------------------- settings and clients

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        metavar="PATH",
        help="opsloop home folder (SQLite database and artifacts). "
        "Default: `$OPSLOOP_HOME` or `~/.opsloop`.",
        show_default=False,
    ),
]


def global_options(ctx: typer.Context | None) -> dict[str, Any]:
    """The options given before the command (``opsloop --home X runs list``)."""
    if ctx is None:
        return {}
    obj = ctx.find_root().obj
    return obj if isinstance(obj, dict) else {}


def resolve_settings(
    *,
    home: Path | None = None,
    tracking_uri: str | None = None,
    database_url: str | None = None,
    artifact_uri: str | None = None,
    ctx: typer.Context | None = None,
) -> Settings:
    """``Settings`` from the environment, overridden by command-line options.

    A ``--home`` means "work embedded on that folder" (it clears a tracking URI
    from the environment); ``--tracking-uri`` takes an ``http(s)://`` server,
    a database URL or a home folder, like ``opsloop.Client``.
    """

    g = global_options(ctx)
    home = home or g.get("home")
    tracking_uri = tracking_uri or g.get("tracking_uri")
    try:
        settings = Settings()
    except ValidationError as exc:
        raise InvalidArgument(f"invalid OPSLOOP_* environment setting: {exc}") from None
    updates: dict[str, Any] = {}
    if home is not None:
        updates["home"] = Path(home).expanduser()
        updates["tracking_uri"] = None
    if tracking_uri:
        if tracking_uri.startswith(("http://", "https://")):
            updates["tracking_uri"] = tracking_uri.rstrip("/")
        elif tracking_uri.startswith(("sqlite:", "postgresql")):
            updates["database_url"] = tracking_uri
            updates["tracking_uri"] = None
        else:
            updates["home"] = Path(tracking_uri.removeprefix("file://")).expanduser()
            updates["tracking_uri"] = None
    if database_url:
        updates["database_url"] = database_url
    if artifact_uri:
        updates["artifact_uri"] = artifact_uri
    return settings.model_copy(update=updates) if updates else settings


@contextlib.contextmanager
def open_context(settings: Settings) -> Iterator[Context]:
    """A context for one command; closed (room clients flushed) when the command ends."""
    from opsloop.core import Context  # lazy: loads sqlalchemy

    context = Context(settings)
    try:
        yield context
    finally:
        context.close()


@contextlib.contextmanager
def command_context(ctx: typer.Context | None, home: Path | None) -> Iterator[Context]:
    """The context for a command's ``--home`` (or the options before the command)."""
    with open_context(resolve_settings(home=home, ctx=ctx)) as context:
        yield context


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """``KEY=VALUE`` options (``--tag``, ``--var``, ...) as a dict; ``what`` names the option."""
    got: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} {item!r} must look like KEY=VALUE")
        got[key] = value
    return got


# ---------------------------------------------------------------- output


def esc(text: object) -> str:
    """Text safe to put inside rich markup (names may hold ``[brackets]``)."""
    from rich.markup import escape

    return escape(str(text))


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colours, no wrapping."""
    typer.echo(json.dumps(data, indent=2, default=str, allow_nan=True))


STATUS_STYLE = {
    "RUNNING": "bold cyan",
    "SCHEDULED": "magenta",
    "FINISHED": "green",
    "FAILED": "bold red",
    "KILLED": "yellow",
}


def styled_status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_value(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
