"""Checks on a whole answer: does it parse and validate against the route's JSON schema, and
is it grounded in the context the request gave (RAG routes)?

Groundedness is lexical and cheap (no model on the request path): the answer
is cut into sentences; a sentence with at least two content words is
*supported* when at least ``SUPPORT`` of its content words (crudely stemmed;
numbers as written) occur in the request's messages. The score is the share
of supported sentences; the guard acts when it is below the route's
``min_grounded``. It catches answers that bring in names, numbers and facts
the context does not hold; it cannot tell a supported sentence that
contradicts the context (the same words, negated) from one that agrees.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from opsloop.gateway._words import STOP_WORDS, stem

__all__ = ["check_schema", "context_of", "grounded_score", "schema_problem"]

SUPPORT = 0.6
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,]\d+)*")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def _content(text: str) -> list[str]:
    return [
        stem(w.lower()) for w in _WORD.findall(text) if w.lower() not in STOP_WORDS and len(w) > 1
    ]


def context_of(endpoint: str, body: dict[str, Any]) -> str:
    """The context a request gave: the text of all its messages (chat) or its prompt."""
    if endpoint == "chat":
        parts: list[str] = []
        for m in body.get("messages") or []:
            if not isinstance(m, dict):
                continue
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts += [
                    p["text"] for p in c if isinstance(p, dict) and isinstance(p.get("text"), str)
                ]
        return "\n".join(parts)
    p = body.get("prompt")
    if isinstance(p, str):
        return p
    return "\n".join(x for x in p if isinstance(x, str)) if isinstance(p, list) else ""


def grounded_score(answer: str, context: str) -> tuple[float, list[str]]:
    """The share of the answer's sentences supported by ``context``, and the unsupported ones."""
    known = set(_content(context))
    considered = 0
    unsupported: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", answer):
        words = _content(sentence)
        if len(words) < 2:
            continue
        considered += 1
        if sum(w in known for w in words) / len(words) < SUPPORT:
            unsupported.append(sentence.strip())
    if considered == 0:
        return 1.0, []
    return 1.0 - len(unsupported) / considered, unsupported


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema  # lazy: optional extra (opsloop[gateway])

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a usable JSON Schema, or None."""
    try:
        import jsonschema  # lazy: optional extra (opsloop[gateway])
    except ImportError:
        return "output_schema needs jsonschema: pip install 'opsloop[gateway]'"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"output_schema is not a valid JSON Schema: {exc.message}"
    return None


def check_schema(answer: str, schema: dict[str, Any]) -> str | None:
    """None when ``answer`` (optionally in a ```json fence) is JSON valid against ``schema``;
    else what is wrong, with the path of the first error."""
    m = _FENCE.match(answer)
    text = m.group(1) if m else answer
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the answer is not JSON ({exc.msg} at character {exc.pos})"
    v = _validator(json.dumps(schema, sort_keys=True))
    err = next(iter(v.iter_errors(value)), None)
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"the answer does not match the schema at {where}: {err.message}"
