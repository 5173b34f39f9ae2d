"""Feedback's values: the built-in scores, input checks, row-to-entity conversion, targets.

Pure functions shared by the service (``_service.py``); nothing here touches the database.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from opsloop.errors import InvalidArgument, PayloadTooLarge
from opsloop.feedback._errors import ScoreValueInvalid
from opsloop.feedback.entities import Annotation, ScoreDefinition

TRACE_RE = re.compile(r"^[0-9a-f]{32}$")
SPAN_RE = re.compile(r"^[0-9a-f]{16}$")
PREDICTION_RE = re.compile(r"^[A-Za-z0-9][\w.:\-]{0,127}$")
DEFINABLE_KINDS = ("boolean", "categorical", "numeric", "text")
MAX_TEXT = 100_000
MAX_CATEGORIES = 100
MAX_META_BYTES = 65_536

BUILTIN_SCORES: dict[str, ScoreDefinition] = {
    "thumbs": ScoreDefinition(
        name="thumbs", kind="boolean", builtin=True, description="Thumbs up (true) or down."
    ),
    "comment": ScoreDefinition(name="comment", kind="text", builtin=True, description="A comment."),
    "correction": ScoreDefinition(
        name="correction", kind="text", builtin=True, description="A corrected answer."
    ),
    "preference": ScoreDefinition(
        name="preference",
        kind="preference",
        categories=["a", "b", "tie"],
        builtin=True,
        description="Which of two responses is better: a, b or tie.",
    ),
}


def text_field(value: Any, field: str, limit: int = MAX_TEXT, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise InvalidArgument(f"{field} must be a non-empty string", details={"field": field})
    if len(value) > limit:
        raise PayloadTooLarge(
            f"{field} is longer than {limit} characters", details={"field": field}
        )
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise InvalidArgument(f"{field} holds a NUL character", details={"field": field})
    return value


def opt_text_field(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else text_field(value, field, limit)


def bound_field(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a finite number", details={"field": field})
    return float(value)


def definition_of(row: Any) -> ScoreDefinition:
    return ScoreDefinition(
        name=row.name,
        kind=row.kind,
        categories=orjson.loads(row.categories) if row.categories else None,
        min_value=row.min_value,
        max_value=row.max_value,
        description=row.description or "",
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def value_of(row: Any) -> bool | float | str | None:
    if row.kind == "boolean":
        return None if row.value_num is None else bool(row.value_num)
    if row.kind == "numeric":
        return row.value_num  # type: ignore[no-any-return]
    return row.value_text  # type: ignore[no-any-return]


def annotation_of(row: Any) -> Annotation:
    return Annotation(
        id=row.id,
        key=row.key,
        target_kind=row.target_kind,
        target_id=row.target_id,
        trace_id=row.trace_id,
        span_id=row.span_id,
        session_id=row.session_id,
        prediction_id=row.prediction_id,
        name=row.name,
        kind=row.kind,
        value=value_of(row),
        comment=row.comment,
        correction=row.correction,
        response_a=row.response_a,
        response_b=row.response_b,
        source=row.source,
        author=row.author,
        metadata=orjson.loads(row.meta) if row.meta else {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check_value(d: ScoreDefinition, value: Any) -> tuple[float | None, str | None]:
    """``value`` checked against its score: ``(value_num, value_text)`` as stored."""

    def bad(msg: str) -> ScoreValueInvalid:
        return ScoreValueInvalid(
            f"score {d.name!r} ({d.kind}): {msg}, got {value!r}",
            details={"score": d.name, "kind": d.kind},
        )

    if value is None:
        raise bad("a value is required")
    if d.kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise bad("the value must be true or false")
        return (1.0 if value else 0.0), ("true" if value else "false")
    if d.kind in ("categorical", "preference"):
        if not isinstance(value, str) or value not in (d.categories or []):
            raise bad(f"the value must be one of {d.categories}")
        return None, value
    if d.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("the value must be a number")
        if not math.isfinite(value):
            raise bad("the value must be finite")
        if d.min_value is not None and value < d.min_value:
            raise bad(f"the value is below the minimum {d.min_value:g}")
        if d.max_value is not None and value > d.max_value:
            raise bad(f"the value is above the maximum {d.max_value:g}")
        return float(value), None
    if not isinstance(value, str) or not value.strip():
        raise bad("the value must be non-empty text")
    if len(value) > MAX_TEXT:
        raise PayloadTooLarge(f"score {d.name!r}: the text is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise bad("the text holds a NUL character")
    return None, value


def target_of(
    trace_id: str | None,
    span_id: str | None,
    session_id: str | None,
    prediction_id: str | None,
) -> dict[str, Any]:
    """The annotation's target columns, checked: exactly one of trace, span, session, prediction."""
    if span_id is not None and trace_id is None:
        raise InvalidArgument(
            "a span is named by trace_id and span_id", details={"field": "trace_id"}
        )
    given = [
        k
        for k, v in (("trace", trace_id), ("session", session_id), ("prediction", prediction_id))
        if v is not None
    ]
    if len(given) != 1:
        raise InvalidArgument(
            "give exactly one target: trace_id (with span_id for a span), session_id or "
            f"prediction_id; got {given or 'none'}",
            details={"field": "target"},
        )
    cols: dict[str, Any] = {
        "trace_id": None,
        "span_id": None,
        "session_id": None,
        "prediction_id": None,
    }
    if trace_id is not None:
        t = trace_id.lower() if isinstance(trace_id, str) else trace_id
        if not isinstance(t, str) or not TRACE_RE.match(t):
            raise InvalidArgument(
                f"trace_id {trace_id!r} must be 32 hex digits", details={"field": "trace_id"}
            )
        cols["trace_id"] = t
        if span_id is not None:
            s = span_id.lower() if isinstance(span_id, str) else span_id
            if not isinstance(s, str) or not SPAN_RE.match(s):
                raise InvalidArgument(
                    f"span_id {span_id!r} must be 16 hex digits", details={"field": "span_id"}
                )
            cols["span_id"] = s
            return {"target_kind": "span", "target_id": f"{t}/{s}", **cols}
        return {"target_kind": "trace", "target_id": t, **cols}
    if session_id is not None:
        cols["session_id"] = text_field(session_id, "session_id", 256)
        return {"target_kind": "session", "target_id": session_id, **cols}
    if not isinstance(prediction_id, str) or not PREDICTION_RE.match(prediction_id):
        raise InvalidArgument(
            f"prediction_id {prediction_id!r} must be the id a model server answered with "
            "(letters, digits, '_', '-', '.', ':'; at most 128)",
            details={"field": "prediction_id"},
        )
    cols["prediction_id"] = prediction_id
    return {"target_kind": "prediction", "target_id": prediction_id, **cols}
