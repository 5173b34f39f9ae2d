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
from opsloop.cli import _db, _experiments, _runs
from opsloop.cli._common import EXIT_CODES_HELP, OpsloopGroup
from opsloop.cli._compare import compare
from opsloop.cli._quickstart import quickstart
from opsloop.cli._server import server

# Domain rooms bring their own command groups; their modules import only typer and rich.
from opsloop.datasets.cli import app as _datasets_app
from opsloop.deployments.cli import app as _deployments_app
from opsloop.evaluation.benchmarks.cli import app as _bench_app
from opsloop.evaluation.cli import app as _eval_app
from opsloop.llm.cli import app as _llm_app
from opsloop.llm.cli import secrets_app as _secrets_app
from opsloop.pipelines.cli import app as _pipelines_app
from opsloop.prompts.cli import app as _prompts_app
from opsloop.registry.cli import app as _models_app
from opsloop.retrieval.cli import app as _index_app
from opsloop.selection.cli import select_command
from opsloop.serving.cli import serve_command
from opsloop.tracing.cli import app as _traces_app
from opsloop.tuning.cli import app as _tune_app

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
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = {"home": home, "tracking_uri": tracking_uri}


app.command("server", epilog=EXIT_CODES_HELP)(server)
app.command("quickstart", epilog=EXIT_CODES_HELP)(quickstart)
app.command("serve", epilog=EXIT_CODES_HELP)(serve_command)
app.command("select", epilog=EXIT_CODES_HELP)(select_command)
app.add_typer(_db.app)
app.add_typer(_experiments.app)
_runs.app.command("compare")(compare)
app.add_typer(_runs.app)
app.add_typer(_datasets_app)
app.add_typer(_models_app)
app.add_typer(_prompts_app)
app.add_typer(_pipelines_app)
app.add_typer(_deployments_app)
app.add_typer(_tune_app)
app.add_typer(_traces_app)
app.add_typer(_llm_app)
app.add_typer(_secrets_app)
app.add_typer(_bench_app)
app.add_typer(_eval_app)
app.add_typer(_index_app)


def main() -> None:
    """Entry point of the ``opsloop`` console script."""
    app()
