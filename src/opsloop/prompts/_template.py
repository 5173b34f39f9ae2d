"""Prompt templates: ``{{ variable }}`` placeholders in a text or in chat messages.

Syntax: ``{{ name }}`` (spaces inside the braces are optional) where ``name``
is a Python-style identifier. ``\\{{`` writes a literal ``{{``. Any other
``{{`` is an error at creation time, naming its line and column, so a typo
never silently reaches a model as text. A lone ``}}`` is plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgument, PromptVariablesError

KINDS = ("text", "chat")
MAX_TEMPLATE_CHARS = 1_000_000
MAX_MESSAGES = 1_000
MAX_VARIABLES = 1_000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_ROLE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}\Z")


@dataclass(frozen=True)
class _Var:
    name: str


def _where(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse(text: str, *, where: str = "template") -> list[str | _Var]:
    """Split ``text`` into literals and variables; ``InvalidArgument`` on a malformed ``{{``."""
    out: list[str | _Var] = []
    buf: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        j = text.find("{{", i)
        if j < 0:
            buf.append(text[i:])
            break
        if j > 0 and text[j - 1] == "\\":
            buf.append(text[i : j - 1] + "{{")
            i = j + 2
            continue
        buf.append(text[i:j])
        m = _PLACEHOLDER.match(text, j)
        line, col = _where(text, j)
        if m is None:
            raise InvalidArgument(
                f"{where}: '{{{{' at line {line}, column {col} does not open a "
                "'{{ variable }}' placeholder (write '\\{{' for a literal '{{')",
                details={"where": where, "line": line, "column": col},
            )
        name = m.group(1)
        if not _IDENT.match(name):
            raise InvalidArgument(
                f"{where}: placeholder {m.group(0)!r} at line {line}, column {col} does not "
                "name a variable: use letters, digits and '_', not starting with a digit",
                details={"where": where, "line": line, "column": col, "placeholder": m.group(0)},
            )
        if buf:
            out.append("".join(buf))
            buf = []
        out.append(_Var(name))
        i = m.end()
    if buf and "".join(buf):
        out.append("".join(buf))
    return out


def _names(segments: Sequence[str | _Var], into: list[str]) -> None:
    for s in segments:
        if isinstance(s, _Var) and s.name not in into:
            into.append(s.name)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _fill(segments: Sequence[str | _Var], values: Mapping[str, str]) -> str:
    return "".join(values[s.name] if isinstance(s, _Var) else s for s in segments)


@dataclass(frozen=True)
class Template:
    """A checked template: its kind, the original value and the variables it uses."""

    kind: str
    source: str | list[dict[str, str]]
    parts: tuple[tuple[str, tuple[str | _Var, ...]], ...]  # (role or "", segments)
    used: tuple[str, ...]  # variables in order of first use

    @property
    def variables(self) -> list[str]:
        return list(self.used)

    def render(
        self,
        variables: Mapping[str, Any],
        *,
        declared: Sequence[str] | None = None,
        label: str = "prompt",
        ignore_unknown: bool = False,
    ) -> str | list[dict[str, str]]:
        """Fill the placeholders; ``PromptVariablesError`` names missing and unknown variables."""
        expected = list(declared) if declared is not None else list(self.used)
        missing = [v for v in expected if v not in variables]
        unknown = [] if ignore_unknown else sorted(k for k in variables if k not in expected)
        if missing or unknown:
            bits = []
            if missing:
                bits.append(
                    f"missing variable{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                )
            if unknown:
                bits.append(
                    f"unknown variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                )
            raise PromptVariablesError(
                f"{label}: {'; '.join(bits)} (expected: {', '.join(expected) or 'none'})",
                details={"missing": missing, "unknown": unknown, "expected": expected},
            )
        values = {k: _text(variables[k]) for k in self.used}
        if self.kind == "text":
            return _fill(self.parts[0][1], values)
        return [{"role": role, "content": _fill(segs, values)} for role, segs in self.parts]


def compile_template(template: Any) -> Template:
    """Check a text (``str``) or chat (list of ``{"role", "content"}``) template."""
    if isinstance(template, str):
        if len(template) > MAX_TEMPLATE_CHARS:
            raise InvalidArgument(f"a template holds at most {MAX_TEMPLATE_CHARS} characters")
        segs = tuple(parse(template))
        used: list[str] = []
        _names(segs, used)
        return Template("text", template, (("", segs),), tuple(used))
    if not isinstance(template, (list, tuple)) or not template:
        raise InvalidArgument(
            "a template is a string (text) or a non-empty list of "
            '{"role": ..., "content": ...} messages (chat)'
        )
    if len(template) > MAX_MESSAGES:
        raise InvalidArgument(f"a chat template holds at most {MAX_MESSAGES} messages")
    parts: list[tuple[str, tuple[str | _Var, ...]]] = []
    used = []
    messages: list[dict[str, str]] = []
    total = 0
    for i, msg in enumerate(template):
        if not isinstance(msg, Mapping) or set(msg) != {"role", "content"}:
            raise InvalidArgument(
                f"message {i} must be an object with exactly 'role' and 'content'",
                details={"message": i},
            )
        role, content = msg["role"], msg["content"]
        if not isinstance(role, str) or not _ROLE.match(role):
            raise InvalidArgument(
                f"message {i}: role {role!r} is not valid (e.g. system, user, assistant)",
                details={"message": i},
            )
        if not isinstance(content, str):
            raise InvalidArgument(f"message {i}: content must be a string", details={"message": i})
        total += len(content)
        if total > MAX_TEMPLATE_CHARS:
            raise InvalidArgument(f"a template holds at most {MAX_TEMPLATE_CHARS} characters")
        segs = tuple(parse(content, where=f"message {i} ({role})"))
        _names(segs, used)
        parts.append((role, segs))
        messages.append({"role": role, "content": content})
    return Template("chat", messages, tuple(parts), tuple(used))


def check_declared(tpl: Template, variables: Sequence[str] | None) -> list[str]:
    """The version's variables: the declared list, which must match the placeholders exactly."""
    if variables is None:
        return tpl.variables
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        raise InvalidArgument("variables must be a list of names")
    if len(variables) > MAX_VARIABLES:
        raise InvalidArgument(f"a prompt declares at most {MAX_VARIABLES} variables")
    seen: list[str] = []
    for v in variables:
        if not isinstance(v, str) or not _IDENT.match(v):
            raise InvalidArgument(f"variable name {v!r} is not valid")
        if v in seen:
            raise InvalidArgument(f"variable {v!r} is declared twice")
        seen.append(v)
    undeclared = [v for v in tpl.used if v not in seen]
    unused = [v for v in seen if v not in tpl.used]
    if undeclared or unused:
        bits = []
        if undeclared:
            bits.append(f"the template uses undeclared {', '.join(undeclared)}")
        if unused:
            bits.append(
                f"declared {', '.join(unused)} never appear{'s' if len(unused) == 1 else ''} in it"
            )
        raise PromptVariablesError(
            f"declared variables do not match the template: {'; '.join(bits)}",
            details={"undeclared": undeclared, "unused": unused, "placeholders": tpl.variables},
        )
    return seen
