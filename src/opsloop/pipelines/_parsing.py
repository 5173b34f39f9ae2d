"""Getting JSON out of model text and checking it against a JSON schema.

Small models wrap JSON in prose or Markdown fences, add trailing commas, or
stop half-way. ``extract_json`` tries, in order: the whole text, each fenced
block, then each balanced ``{...}``/``[...]`` span (string-aware), each also
with trailing commas removed. ``validate`` checks a value against a schema
(``jsonschema``, the draft the schema names, 2020-12 by default) and returns
the errors as short readable lines, the form the repair prompt sends back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = ["check_schema", "extract_json", "schema_example", "validate"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_NOT_FOUND = object()


def _balanced(text: str) -> Iterator[str]:
    """Every balanced JSON-looking object or array span, outermost first, left to right."""
    for start, ch in enumerate(text):
        if ch not in "{[":
            continue
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    yield text[start : i + 1]
                    break


def _loads(candidate: str) -> Any:
    for s in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(s)
        except ValueError:
            continue
    return _NOT_FOUND


def extract_json(text: str) -> Any:
    """The first JSON value found in ``text``; ``InvalidArgument`` when there is none."""
    if not isinstance(text, str):
        raise InvalidArgument(f"expected model text, got {type(text).__name__}")
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for c in candidates:
        if c:
            v = _loads(c)
            if v is not _NOT_FOUND:
                return v
    for tried, span in enumerate(_balanced(text)):
        v = _loads(span)
        if v is not _NOT_FOUND:
            return v
        if tried > 50:
            break
    raise InvalidArgument(
        "the text holds no JSON value"
        + (" (an object or array was cut off)" if "{" in text else ""),
        details={"text": text[:500]},
    )


def _validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def check_schema(schema: Any) -> dict[str, Any]:
    """``schema`` as a dict, checked against its meta-schema; ``InvalidArgument`` otherwise."""
    import jsonschema

    if not isinstance(schema, Mapping):
        raise InvalidArgument(f"a JSON schema must be an object, got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidArgument(f"not a valid JSON schema: {exc.message}") from None
    return dict(schema)


def validate(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Readable schema violations (``at $.items[0]: 'x' is not of type 'integer'``), at most 5."""
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path))
    out = []
    for e in errors[:5]:
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path)
        out.append(f"at {where}: {e.message}")
    return out


def schema_example(schema: Mapping[str, Any], depth: int = 0) -> Any:
    """A skeleton value of the schema's shape (``{"city": "<string>", "n": 0}``).

    Small models copy a shown example far more reliably than they follow a
    JSON schema, which they tend to echo back; the skeleton is the form the
    structured-output prompt shows.
    """
    if depth > 6:
        return None
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        opts = schema.get(key)
        if isinstance(opts, list) and opts and isinstance(opts[0], Mapping):
            return schema_example(opts[0], depth + 1)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    props = schema.get("properties")
    if t == "object" or (t is None and isinstance(props, Mapping)):
        return {
            str(k): schema_example(v, depth + 1)
            for k, v in (props or {}).items()
            if isinstance(v, Mapping)
        }
    if t == "array":
        items = schema.get("items")
        return [schema_example(items, depth + 1)] if isinstance(items, Mapping) else []
    return {"string": "<string>", "integer": 0, "number": 0.0, "boolean": True, "null": None}.get(
        str(t), "<value>"
    )
