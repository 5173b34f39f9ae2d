"""Score fields of the trace filter (the ``tracing.filter_field`` hook).

Adds to ``opsloop traces list --filter``, ``GET /api/v1/traces?filter=`` and
the UI's trace list::

    score.helpfulness >= 4            some annotation of the score has a value >= 4
    score.thumbs = "false"            booleans compare as "true"/"false" (or 1/0)
    score.tone in ("rude", "curt")    categories compare as strings
    score.helpfulness.human < 3       only annotations from this source (human, llm_judge, code)
    score.helpfulness.author = "ann"  annotated by ann; score.helpfulness.source = "code"
    score.helpfulness is null         missing: the trace has no annotation of the score
    score.helpfulness.human is null   no human has scored it (a judge may have)

An annotation counts for a trace when it targets the trace or one of its spans.
Each condition is an ``EXISTS`` over ``annotations`` on its
``(trace_id, name, value_num)`` index, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from opsloop.errors import InvalidArgument
from opsloop.feedback._tables import annotations_t
from opsloop.feedback.entities import SOURCES

__all__ = ["score_condition"]

_FIELD = re.compile(r"^score\.([A-Za-z][A-Za-z0-9_]{0,63})(?:\.([A-Za-z_]+))?$")
_A = annotations_t.c

_OPS: dict[str, Any] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "like": lambda c, v: c.like(v),
    "ilike": lambda c, v: c.ilike(v),
    "not like": lambda c, v: sa.not_(c.like(v)),
    "not ilike": lambda c, v: sa.not_(c.ilike(v)),
    "in": lambda c, v: c.in_(v),
    "not in": lambda c, v: c.not_in(v),
}


def score_condition(field: str, op: str, value: Any, trace_id: Any) -> ColumnElement[bool] | None:
    """The condition for a ``score.`` field, or None for a field that is not one."""
    m = _FIELD.match(field)
    if m is None:
        if field.lower().startswith("score."):
            raise InvalidArgument(
                f"filter: {field!r} is not a score field (score.NAME, score.NAME.SOURCE, "
                "score.NAME.author, score.NAME.source)"
            )
        return None
    name, part = m.group(1), m.group(2)
    where: list[ColumnElement[bool]] = [_A.trace_id == trace_id, _A.name == name]
    column: Any = None
    if part is None or part in SOURCES:
        if part is not None:
            where.append(_A.source == part)
    elif part in ("author", "source"):
        column = _A.author if part == "author" else _A.source
    else:
        raise InvalidArgument(
            f"filter: unknown score part {part!r} in {field!r} "
            f"(use {', '.join(SOURCES)}, author or source)"
        )
    if op in ("is null", "is not null"):
        exists = sa.exists(sa.select(sa.literal(1)).where(*where))
        return sa.not_(exists) if op == "is null" else exists
    values = value if isinstance(value, list) else [value]
    if column is None:
        numeric = all(isinstance(v, float) for v in values)
        if not numeric and not all(isinstance(v, str) for v in values):
            raise InvalidArgument(
                f"filter: {field} compares with numbers or with strings, not both"
            )
        if numeric and "like" in op:
            raise InvalidArgument(f"filter: {field} like compares with a quoted string")
        column = _A.value_num if numeric else _A.value_text
        where.append(column.is_not(None))
    elif not all(isinstance(v, str) for v in values):
        raise InvalidArgument(f"filter: {field} compares with quoted strings")
    where.append(_OPS[op](column, value))
    return sa.exists(sa.select(sa.literal(1)).where(*where))
