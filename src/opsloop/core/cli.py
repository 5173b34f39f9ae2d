"""What every room's commands share: consoles, error handling, settings, contexts, formatting.

Commands stay thin: they turn options into a ``Settings``, open a
``Context`` for the command (``command_context``), call the room's public
functions on it, and render what comes back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from typer._click.exceptions import ClickException  # typer's own click (it vendors one)
from typer.core import TyperGroup

from opsloop.errors import InvalidArgument, OpsloopError, SchemaOutOfDate
from opsloop.settings import Settings

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table
    from rich.text import Text

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

    cli_message = exc.details.get("cli_message") if isinstance(exc.details, dict) else None
    message = cli_message if isinstance(cli_message, str) and cli_message else exc.message
    report_line(exc.code, message)


def report_line(code: str, message: str) -> None:
    """``error [CODE]: message`` in red on stderr."""
    from rich.text import Text

    err().print(
        Text.assemble((f"error [{code}]", "bold red"), ": ", (message, "red")),
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


_HTML_LIKE = re.compile(r"<([A-Za-z_][\w./:-]*)>")


def _escape_tags(line: str) -> str:
    """``<home>`` as ``\\<home\\>`` outside backtick spans (Markdown would drop it as HTML)."""
    parts = line.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = _HTML_LIKE.sub(r"\\<\1\\>", parts[i])
    return "`".join(parts)


def markdown_help(text: str | None) -> str | None:
    """A command's help as Markdown that typer renders as written.

    typer renders help as Markdown after dedenting the text after its first
    paragraph again: an indented example block that is all that follows
    ("Examples:" then the commands) loses its indentation and its lines run
    together. Indented blocks become fenced ones (which no dedent changes),
    and ``<placeholders>`` outside code are escaped (Markdown drops them as HTML).
    """
    if not text:
        return text
    lines = inspect.cleandoc(text).split("\n")
    done: list[str] = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
            done.append(line)
        elif fenced:
            done.append(line)
        elif line.startswith(("    ", "\t")) and (not done or not done[-1].strip()):
            block: list[str] = []
            while i < len(lines) and (lines[i].startswith(("    ", "\t")) or not lines[i].strip()):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
                i -= 1
            done += ["```", *inspect.cleandoc("\n".join(block)).split("\n"), "```"]
            continue
        else:
            done.append(_escape_tags(line))
        i += 1
    return "\n".join(done)


def _fix_help(cmd: Any) -> Any:
    """``markdown_help`` on a command's help, its options' help and its subcommands (once)."""
    if cmd is None or getattr(cmd, "_opsloop_help", False):
        return cmd
    cmd._opsloop_help = True
    cmd.help = markdown_help(cmd.help)
    if getattr(cmd, "short_help", None):
        cmd.short_help = markdown_help(cmd.short_help)
    for param in getattr(cmd, "params", []):
        if getattr(param, "help", None):
            param.help = markdown_help(param.help)
    for sub in getattr(cmd, "commands", {}).values():
        _fix_help(sub)
    return cmd


# Other libraries whose log lines would land between a command's own output.
NOISY_LOGGERS = (
    "optuna",
    "transformers",
    "huggingface_hub",
    "sentence_transformers",
    "ray",
    "alembic",
    "httpx",
    "httpcore",
    "uvicorn",
    "urllib3",
    "filelock",
    "accelerate",
    "torch",
    "datasets",
    "gguf",
)
_QUIET_ENV = {
    # Read when these libraries are imported, which commands do lazily, after this is set.
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@contextlib.contextmanager
def quiet_libraries(*, verbose: bool = False) -> Iterator[None]:
    """Only opsloop's own output while a command runs (everything back with ``--verbose``).

    Every library's INFO lines (an Optuna line per trial, httpx requests,
    alembic migrations, uvicorn access lines), the warnings of the libraries
    in ``NOISY_LOGGERS``, Python warnings and tqdm/Hugging Face progress bars
    are left out; errors still show.
    """
    if verbose:
        yield
        return
    saved_env = {k: os.environ.get(k) for k in _QUIET_ENV}
    os.environ.update(_QUIET_ENV)
    saved_disable = logging.root.manager.disable
    logging.disable(logging.INFO)
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    saved_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None:
        hub.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(saved_disable)
        for lg, level in zip(loggers, saved_levels, strict=True):
            # A library that set its own level meanwhile (optuna on import) keeps it.
            if lg.level == logging.ERROR:
                lg.setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class OpsloopGroup(TyperGroup):
    """The root command group: turns any error into ``error [CODE]: message`` and an exit code,
    and renders every command's help as written (see ``markdown_help``).

    An ``OpsloopError`` prints its code and message; any other exception (a
    bug) prints as ``error [INTERNAL]: unexpected ...``: never a traceback,
    unless ``OPSLOOP_DEBUG=1`` (then every error shows its traceback).
    """

    # ``Any``: the context class is typer's vendored click one, which typer does not export.
    def invoke(self, ctx: Any) -> Any:
        verbose = bool(ctx.params.get("verbose")) or os.environ.get("OPSLOOP_VERBOSE", "") in (
            "1",
            "true",
        )
        command = [*getattr(ctx, "_protected_args", []), *ctx.args][:1]
        # The root group quiets other libraries for the whole command (not --verbose);
        # the servers keep the logs their --log-level and --access-log ask for.
        loud = verbose or ctx.parent is not None or command in (["server"], ["serve"])
        try:
            with quiet_libraries(verbose=loud):
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

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Usage errors (a missing argument, an unknown option or command) print as one
        ``error [USAGE]: message`` line too, with the help command to run, not a box."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                sub = getattr(exc, "ctx", None)
                hint = f" (see `{sub.command_path} --help`)" if sub is not None else ""
                report_line("USAGE", exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except typer.Abort:
            report_line("ABORTED", "stopped")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return _fix_help(super().get_command(ctx, cmd_name))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _fix_help(self)
        super().format_help(ctx, formatter)


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


# ---------------------------------------------------------------- tables that fit the terminal


@dataclasses.dataclass(frozen=True)
class Col:
    """A column of a ``fit_table``.

    ``key``: a name or an id, what users copy into other commands: never cut,
    never wrapped, never dropped. Other columns wrap when the terminal is
    narrow (to no less than ``min_width``: 19 keeps a timestamp on one line),
    and the ones with the highest ``drop`` go first when even wrapping does
    not make the table fit (``drop=0``: always shown, wrapped if need be).
    """

    header: str
    key: bool = False
    drop: int = 1
    justify: JustifyMethod = "left"
    style: str | None = None
    min_width: int = 10
    max_width: int | None = None


def _cell_width(cell: str | Text) -> int:
    from rich.text import Text

    text = cell if isinstance(cell, Text) else Text.from_markup(cell)
    return max((Text(line).cell_len for line in text.plain.split("\n")), default=0)


def fit_table(
    cols: Sequence[Col],
    rows: Iterable[Sequence[str | Text]],
    *,
    width: int | None = None,
    **table_kw: Any,
) -> Table:
    """A rich table that fits ``width`` (the terminal's by default) without cutting keys.

    Each column gets its natural width when everything fits. Otherwise the
    non-key columns wrap (widest first, down to ``min_width``) and, if that is
    not enough, the columns with the highest ``drop`` are left out (named in
    the caption). Key columns keep their full text; a terminal too narrow even
    for them folds them onto more lines rather than cropping them.
    """
    from rich.table import Table

    rows = [list(r) for r in rows]
    width = width or out().width
    table_kw.setdefault("title_justify", "left")
    probe = Table(**table_kw)
    pad = probe.padding[1] + probe.padding[3]
    natural = [
        max([_cell_width(c.header), *(_cell_width(r[i]) for r in rows)]) for i, c in enumerate(cols)
    ]
    least = [
        n if c.key else min(n, max(c.min_width, _cell_width(c.header)))
        for c, n in zip(cols, natural, strict=True)
    ]

    def extra(n: int) -> int:
        box = probe.box is not None
        return n * pad + (2 if box and probe.show_edge else 0) + (n - 1 if box else 0)

    kept = list(range(len(cols)))
    # Drop the most droppable (rightmost first among equals) until the least widths fit.
    while sum(least[i] for i in kept) + extra(len(kept)) > width:
        droppable = [i for i in kept if not cols[i].key and cols[i].drop > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (cols[i].drop, i)))
    widths: dict[int, int] = {}
    for i in kept:
        cap = cols[i].max_width
        widths[i] = max(least[i], natural[i] if cap is None else min(natural[i], cap))
    excess = sum(widths.values()) + extra(len(kept)) - width
    while excess > 0:
        shrinkable = [i for i in kept if widths[i] > least[i]]
        widest = max(shrinkable, key=lambda i: (widths[i], i), default=None)
        if widest is None:
            # Not even the keys fit: fold the longest key (a long name) rather than
            # crop it, keeping the shorter ones (ids) whole.
            folding = [i for i in kept if cols[i].key and widths[i] > 8]
            widest = max(folding, key=lambda i: (natural[i], i), default=None)
        if widest is None:
            break
        widths[widest] -= 1
        excess -= 1
    dropped = [cols[i].header for i in range(len(cols)) if i not in kept]
    if dropped:
        table_kw.setdefault(
            "caption",
            f"[dim]not shown (terminal too narrow): {', '.join(dropped)}[/]",
        )
        table_kw.setdefault("caption_justify", "left")
    table = Table(**table_kw)
    for i in kept:
        c = cols[i]
        table.add_column(
            c.header,
            justify=c.justify,
            style=c.style,
            # A fixed width: rich neither squeezes nor crops; text past it wraps (folds).
            width=widths[i],
            overflow="fold",
        )
    for r in rows:
        table.add_row(*[r[i] for i in kept])
    return table
