"""The top-level commands' helpers: the room helpers (``opsloop.core.cli``) plus a ``Client``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from opsloop.core.cli import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    STATUS_STYLE,
    HomeOption,
    JsonOpt,
    OpsloopGroup,
    err,
    esc,
    exit_code_for,
    fmt_bytes,
    fmt_duration,
    fmt_time,
    fmt_value,
    global_options,
    out,
    parse_pairs,
    print_json,
    report_error,
    resolve_settings,
    room_app,
    styled_status,
)

if TYPE_CHECKING:
    from opsloop.sdk import Client  # lazy: loads sqlalchemy
    from opsloop.settings import Settings

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "STATUS_STYLE",
    "HomeOption",
    "JsonOpt",
    "OpsloopGroup",
    "command_client",
    "err",
    "esc",
    "exit_code_for",
    "fmt_bytes",
    "fmt_duration",
    "fmt_time",
    "fmt_value",
    "global_options",
    "open_client",
    "out",
    "parse_pairs",
    "print_json",
    "report_error",
    "resolve_settings",
    "room_app",
    "styled_status",
]


@contextlib.contextmanager
def open_client(settings: Settings) -> Iterator[Client]:
    """A client for one command; closed (and flushed) when the command ends."""
    from opsloop.sdk import Client  # lazy: loads sqlalchemy

    client = Client(settings=settings)
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def command_client(ctx: typer.Context | None, home: Path | None) -> Iterator[Client]:
    """The client for a command's ``--home`` (or the options before the command)."""
    with open_client(resolve_settings(home=home, ctx=ctx)) as client:
        yield client
