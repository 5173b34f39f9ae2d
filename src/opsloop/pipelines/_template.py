"""Pipeline state paths and the ``{{ path | filter }}`` templates steps render from the state.

The state is a dict: the pipeline's inputs, then each step's output under its
``output_key``. A path is dotted (``retrieve.0.text``: a key, then a list
index). Templates use the prompt registry's ``{{ variable }}`` syntax, with
dotted paths and a few filters (``json``, ``numbered``, ``join``, ``upper``,
``lower``, ``trim``). Nothing in a template is evaluated as code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = ["FILTERS", "get_path", "render", "resolve_value", "template_roots"]

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*((?:\|\s*[a-z_]+\s*)*)\}\}")
_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)*$")
_EXACT = re.compile(r"^\s*\{\{\s*([A-Za-z_][\w.]*)\s*\}\}\s*$")
_MISSING = object()


def check_path(path: str) -> str:
    if not isinstance(path, str) or not _PATH.match(path):
        raise InvalidArgument(f"{path!r} is not a state path (name or name.key.0)")
    return path


def get_path(state: Mapping[str, Any], path: str, default: Any = _MISSING) -> Any:
    """The value at a dotted path; ``InvalidArgument`` naming the path when it is missing."""
    cur: Any = state
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, Sequence) and not isinstance(cur, str) and part.isdigit():
            i = int(part)
            if i >= len(cur):
                cur = _MISSING
                break
            cur = cur[i]
        else:
            obj = getattr(cur, part, _MISSING) if not isinstance(cur, Mapping) else _MISSING
            cur = obj
            if cur is _MISSING:
                break
    if cur is _MISSING:
        if default is not _MISSING:
            return default
        known = sorted(k for k in state if not k.startswith("_"))
        raise InvalidArgument(
            f"{path!r} is not in the pipeline state (it holds {known})",
            details={"path": path, "known": known},
        )
    return cur


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False, default=str)


def _numbered(v: Any) -> str:
    """``[1] text`` lines, for retrieved hits (dicts with ``text``/``title``) or plain strings."""
    if not isinstance(v, Sequence) or isinstance(v, str):
        return _text(v)
    lines = []
    for i, item in enumerate(v, 1):
        if isinstance(item, Mapping):
            body = item.get("text") or item.get("snippet") or ""
            title = item.get("title") or (item.get("metadata") or {}).get("title")
            lines.append(f"[{i}] {title}: {body}" if title else f"[{i}] {body}")
        else:
            lines.append(f"[{i}] {_text(item)}")
    return "\n".join(lines)


FILTERS: dict[str, Any] = {
    "json": lambda v: json.dumps(v, ensure_ascii=False, default=str),
    "numbered": _numbered,
    "join": lambda v: "\n".join(_text(x) for x in v) if isinstance(v, list) else _text(v),
    "upper": lambda v: _text(v).upper(),
    "lower": lambda v: _text(v).lower(),
    "trim": lambda v: _text(v).strip(),
}


def _filters(chain: str) -> list[str]:
    return [f.strip() for f in chain.split("|") if f.strip()]


def check_template(template: str) -> None:
    """``InvalidArgument`` for an unknown filter or an unclosed ``{{``."""
    if not isinstance(template, str):
        raise InvalidArgument("a template must be a string")
    for m in _VAR.finditer(template):
        for f in _filters(m.group(2)):
            if f not in FILTERS:
                raise InvalidArgument(
                    f"unknown template filter {f!r}; known: {', '.join(sorted(FILTERS))}"
                )
    rest = _VAR.sub("", template)
    if "{{" in rest:
        raise InvalidArgument(
            "the template has a '{{' that is not a '{{ name }}' placeholder "
            "(names are letters, digits, '_' and '.')"
        )


def template_roots(template: str) -> list[str]:
    """The first path segment of every placeholder, in order of appearance."""
    out: list[str] = []
    for m in _VAR.finditer(template):
        root = m.group(1).split(".")[0]
        if root not in out:
            out.append(root)
    return out


def render(template: str, state: Mapping[str, Any]) -> str:
    """The template with every placeholder replaced by the state value (non-strings as JSON)."""

    def sub(m: re.Match[str]) -> str:
        v = get_path(state, m.group(1))
        filters = _filters(m.group(2))
        for f in filters:
            v = FILTERS[f](v)
        return _text(v)

    return _VAR.sub(sub, template)


def resolve_value(value: Any, state: Mapping[str, Any]) -> Any:
    """A step argument: ``"{{ path }}"`` alone gives the raw value, other strings are rendered,
    lists and dicts are resolved item by item, anything else is kept."""
    if isinstance(value, str):
        m = _EXACT.match(value)
        if m:
            return get_path(state, m.group(1))
        return render(value, state) if "{{" in value else value
    if isinstance(value, Mapping):
        return {k: resolve_value(v, state) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_value(v, state) for v in value]
    return value


def value_roots(value: Any) -> list[str]:
    """Every placeholder root inside a step argument (strings, lists, dicts)."""
    if isinstance(value, str):
        return template_roots(value)
    out: list[str] = []
    items = (
        value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    )
    for v in items:
        for r in value_roots(v):
            if r not in out:
                out.append(r)
    return out
