"""What a new user sees in the first hour: help that reads as written, tables that fit the
terminal, bad arguments named before anything loads, and only opsloop's own output.

Everything here runs the real command line (Typer's runner, or a real process where the
output of other libraries' loggers and progress bars matters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from opsloop.cli import app
from opsloop.core.cli import markdown_help


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("OPSLOOP_"):
            monkeypatch.delenv(key)


def cli(*args: str, width: int = 120, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app,
        [str(a) for a in args],
        env={"COLUMNS": str(width), **(env or {})},
        terminal_width=width,
    )


# ---------------------------------------------------------------- help


def test_help_keeps_placeholders_in_angle_brackets() -> None:
    root = cli("--help").output
    assert "<home>/secrets.json" in root
    assert "<home>/secrets.json" in cli("secrets", "--help").output
    assert "<home>/cache/models" in cli("llm", "chat", "--help").output


@pytest.mark.parametrize(
    ("command", "examples"),
    [
        (["db", "current"], ["opsloop db current", "opsloop db current --json"]),
        (["experiments", "list"], ["opsloop experiments list", "opsloop experiments list --all"]),
        (["tune", "show"], ["opsloop tune show iris-rf", "opsloop tune show iris-rf --trials"]),
    ],
)
def test_help_examples_stay_one_per_line(command: list[str], examples: list[str]) -> None:
    text = cli(*command, "--help").output
    lines = [line.strip() for line in text.splitlines()]
    for example in examples:
        # Each example starts its own line, and no line holds two of them.
        assert any(line.startswith(example) for line in lines), (example, text)
    assert not [line for line in lines if line.count("opsloop ") > 1], text


def test_markdown_help_fences_indented_blocks_and_leaves_code_alone() -> None:
    text = markdown_help(
        """First line with <home>.

        Examples:

            opsloop x <name>
            opsloop y

        Then `<kept>` and <escaped>.
        """
    )
    assert text == (
        "First line with \\<home\\>.\n\nExamples:\n\n```\nopsloop x <name>\nopsloop y\n```\n\n"
        "Then `<kept>` and \\<escaped\\>."
    )
