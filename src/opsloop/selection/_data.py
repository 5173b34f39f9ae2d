"""Evaluation rows and prompts: a dataset version, a JSONL file or rows, turned into chat messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opsloop.core import Context
from opsloop.datasets import Datasets
from opsloop.errors import InvalidArgument
from opsloop.prompts import Prompts

Messages = list[dict[str, str]]
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_ROWS = 100_000


def datasets_of(ctx: Context) -> Datasets:
    """The datasets client of ``ctx`` (one per context)."""
    return ctx.room(Datasets)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; ``InvalidArgument`` names the bad line."""
    if not path.is_file():
        raise InvalidArgument(f"rows file {path} does not exist")
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidArgument(f"{path}:{n}: not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise InvalidArgument(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
    return rows


def load_rows(data: Any, ctx: Context) -> tuple[list[dict[str, Any]], str | None]:
    """The rows to evaluate, and the dataset version id when they came from one."""
    version_id: str | None = None
    if isinstance(data, Path):
        rows = read_jsonl(data)
    elif isinstance(data, str):
        if not data.strip():
            raise InvalidArgument("data must name a dataset version like 'qa@1'")
        datasets = datasets_of(ctx)
        version = datasets.get(data)  # NotFound names the missing dataset
        version_id = version.id
        rows = list(datasets.iter_rows(version.id))
    elif hasattr(data, "id") and hasattr(data, "row_count"):  # a DatasetVersion
        version_id = str(data.id)
        rows = list(datasets_of(ctx).iter_rows(version_id))
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        rows = list(data)
        if not all(isinstance(r, Mapping) for r in rows):
            raise InvalidArgument("data rows must be dicts")
        rows = [dict(r) for r in rows]
    else:
        raise InvalidArgument(
            f"data must be a dataset version ('name@version'), a JSONL path or a list of dicts, "
            f"not {type(data).__name__}"
        )
    if not rows:
        raise InvalidArgument("the evaluation data has no rows")
    if len(rows) > MAX_ROWS:
        raise InvalidArgument(f"at most {MAX_ROWS} evaluation rows, got {len(rows)}")
    return rows, version_id


def check_columns(rows: list[dict[str, Any]], needed: Sequence[str]) -> None:
    for i, row in enumerate(rows):
        missing = [c for c in needed if c not in row]
        if missing:
            raise InvalidArgument(
                f"row {i} has no column(s) {missing}; it has {sorted(row)}",
                details={"row": i, "missing": missing},
            )


def render_template(template: str, values: Mapping[str, Any]) -> str:
    """``{{ name }}`` filled from ``values`` in one pass; missing names raise ``InvalidArgument``."""
    missing = sorted({m for m in _VAR.findall(template) if m not in values})
    if missing:
        raise InvalidArgument(
            f"the prompt uses variable(s) {missing} that the row lacks; it has {sorted(values)}",
            details={"missing": missing},
        )
    return _VAR.sub(lambda m: str(values[m.group(1)]), template)


def _as_messages(value: Any, where: str) -> Messages:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise InvalidArgument(f"{where}: expected text or a non-empty list of chat messages")
    out: Messages = []
    for m in value:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise InvalidArgument(f"{where}: every chat message needs a 'role' and a 'content'")
        content = m.get("content")
        if not isinstance(content, str):
            raise InvalidArgument(f"{where}: message content must be text")
        out.append({"role": str(m["role"]), "content": content})
    return out


def make_prompter(
    prompt: Any, *, input_column: str, ctx: Context
) -> tuple[Callable[[dict[str, Any]], Messages], str]:
    """A function row -> chat messages, and a short description of the prompt for the run.

    ``prompt``: ``None`` (the input column is the user turn, or already a list
    of chat messages), a template with ``{{variable}}`` placeholders, a
    ``prompts:/NAME@LABEL`` URI, or a prompt version object with ``render``.
    """
    if prompt is None:

        def plain(row: dict[str, Any]) -> Messages:
            return _as_messages(row[input_column], f"column {input_column!r}")

        return plain, f"column:{input_column}"
    if isinstance(prompt, str) and prompt.startswith("prompts:/"):
        prompt = ctx.room(Prompts).get(prompt)
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidArgument("the prompt template is empty")
        template = prompt

        def text(row: dict[str, Any]) -> Messages:
            return [{"role": "user", "content": render_template(template, row)}]

        return text, template
    render = getattr(prompt, "render", None)
    if callable(render):
        names = list(getattr(prompt, "variables", None) or [])

        def versioned(row: dict[str, Any]) -> Messages:
            values = {k: row[k] for k in names if k in row} if names else dict(row)
            return _as_messages(render(**values), "the rendered prompt")

        return versioned, str(getattr(prompt, "uri", "") or repr(prompt))
    raise InvalidArgument(
        "prompt must be a template string, a prompts:/ URI or a prompt version, "
        f"not {type(prompt).__name__}"
    )


def reference_of(row: dict[str, Any], column: str) -> Any:
    v = row[column]
    if isinstance(v, list):
        return [str(x) for x in v]
    return "" if v is None else str(v)
