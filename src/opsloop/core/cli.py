"""What every room's commands share: consoles, error handling, settings, contexts, formatting.

Commands stay thin: they turn options into a ``Settings``, open a
``Context`` for the command (``command_context``), call the room's public
functions on it, and render what comes back.
"""

from __future__ import annotations

import contextlib
import json
import sys
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
    """Print ``error [CODE]: message`` in red on stderr (never a traceback).

    An error whose ``details`` hold a ``cli_message`` (the same advice in
    command-line terms: ``--trust X`` rather than ``trusted_types=[...]``)
    prints that instead.
    """
    from rich.text import Text

    cli_message = exc.details.get("cli_message") if isinstance(exc.details, dict) else None
    message = cli_message if isinstance(cli_message, str) and cli_message else exc.message
    err().print(
        Text.assemble((f"error [{exc.code}]", "bold red"), ": ", (message, "red")),
        soft_wrap=True,
    )


DEBUG_ENV = "OPSLOOP_DEBUG"


def unexpected_error(exc: Exception) -> OpsloopError:
    """What the CLI prints for an exception that is no ``OpsloopError`` (a bug, or a library
    failing in a way opsloop does not translate yet): one line, no traceback."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return OpsloopError(
        f"unexpected {type(exc).__name__}{': ' + text[:500] if text else ''} "
        f"(set {DEBUG_ENV}=1 to see the traceback)",
        details={"exception": type(exc).__name__},
    )


def _debug() -> bool:
    try:
        return Settings().debug
    except ValidationError:  # a bad OPSLOOP_* variable: reported by the command itself
        return False


def passes_through(exc: BaseException) -> bool:
    """typer/click's own exits, usage errors and aborts keep their meaning; so does Ctrl-C
    (and every exception under ``OPSLOOP_DEBUG=1``)."""
    if _debug():
        return True
    return not isinstance(exc, Exception) or type(exc).__module__.split(".")[0] in (
        "typer",
        "click",
    )


class OpsloopGroup(TyperGroup):
    """The root command group: turns any error into ``error [CODE]: message`` and an exit code.

    An ``OpsloopError`` prints its code and message; any other exception (a
    bug) prints as ``error [INTERNAL]: unexpected ...``: never a traceback,
    unless ``OPSLOOP_DEBUG=1`` (then every error shows its traceback).
    """

    # ``Any``: the context class is typer's vendored click one, which typer does not export.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OpsloopError as exc:
            if _debug():
                raise
            report_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except Exception as exc:
            if passes_through(exc):
                raise
            report_error(unexpected_error(exc))
            raise typer.Exit(EXIT_ERROR) from None


def importable_cwd() -> None:
    """Let user code in the current folder import, as ``python -m`` does.

    Every command that imports user code (a pipeline's ``module:function``
    steps, a pyfunc model's loader, a tuning objective) finds ``my_steps.py``
    beside the user; called once per command line, before the command runs.
    """
    cwd = str(Path.cwd())
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


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
