"""Trace filters: structured ones (``TraceFilter``) and a small filter string.

The filter string reads like the run filter (``opsloop.tracking._filter``)::

    status = "error" and model = "gpt-4o" and latency_ms > 500
    (user = "u1" or user = "u2") and cost >= 0.01 and name ilike "%chat%"
    tag = "prod" and not session is null

Fields: ``id``, ``name``, ``status``, ``user``, ``session``, ``model``,
``latency_ms``, ``cost``, ``input_tokens``, ``output_tokens``, ``tokens``,
``spans``, ``errors``, ``tag``, ``service``, ``experiment_id``,
``deployment_id``, ``start_time`` (epoch ms). Operators: ``= != < <= > >=``,
``[not] like``, ``[not] ilike``, ``[not] in (...)``, ``is [not] null``;
combine with ``and``, ``or``, ``not`` and parentheses.

Rooms above tracing add fields through the ``tracing.filter_field`` hook
(``FILTER_FIELD_HOOK``): a callable ``(field, op, value, trace_id) -> condition
or None`` answering for the fields it knows (the feedback room's
``score.NAME ...``), so the trace filter reaches their tables without tracing
importing them. ``op`` is one of the operators above or ``is null`` / ``is not
null`` (``value`` None); ``trace_id`` is the ``traces.id`` column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from opsloop.core import hooks
from opsloop.errors import InvalidArgument
from opsloop.tracing._tables import trace_models, traces

MAX_FILTER_LENGTH = 4096
FILTER_FIELD_HOOK = "tracing.filter_field"
_T = traces.c


@dataclass
class TraceFilter:
    """Conditions a listed trace must meet; None means "any". Times are epoch ms."""

    name: str | None = None
    name_contains: str | None = None
    status: str | None = None
    has_error: bool | None = None
    user_id: str | None = None
    session_id: str | None = None
    model: str | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_cost: float | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    tag: str | None = None
    service_name: str | None = None
    experiment_id: str | None = None
    deployment_id: str | None = None
    filter: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_condition(tag: str) -> ColumnElement[bool]:
    # Tags are stored as a JSON list; a quoted element is an exact tag match.
    return _T.tags.like(f"%{_like_escape(orjson.dumps(tag).decode())}%", escape="\\")


def _status_value(v: str) -> str:
    s = v.upper()
    if s not in ("OK", "ERROR"):
        raise InvalidArgument(f"trace status is OK or ERROR, not {v!r}")
    return s


def uses_model(model: str) -> ColumnElement[bool]:
    """``traces`` rows with a span of ``model``."""
    m = trace_models.alias("tm_uses").c
    return sa.exists(sa.select(sa.literal(1)).where(m.trace_id == _T.id, m.model == model))


def conditions(f: TraceFilter) -> list[ColumnElement[bool]]:
    """SQL conditions on ``traces`` for every filter but ``model`` (which drives the query)."""
    c: list[ColumnElement[bool]] = []
    if f.name is not None:
        c.append(_T.name == f.name)
    if f.name_contains:
        c.append(_T.name.ilike(f"%{_like_escape(f.name_contains)}%", escape="\\"))
    if f.status is not None:
        c.append(_T.status == _status_value(f.status))
    if f.has_error is not None:
        c.append(_T.status == ("ERROR" if f.has_error else "OK"))
    if f.user_id is not None:
        c.append(_T.user_id == f.user_id)
    if f.session_id is not None:
        c.append(_T.session_id == f.session_id)
    if f.min_latency_ms is not None:
        c.append(_T.duration_us >= int(f.min_latency_ms * 1000))
    if f.max_latency_ms is not None:
        c.append(_T.duration_us <= int(f.max_latency_ms * 1000))
    if f.min_cost is not None:
        c.append(_T.total_cost >= f.min_cost)
    if f.tag is not None:
        c.append(_tag_condition(f.tag))
    if f.service_name is not None:
        c.append(_T.service_name == f.service_name)
    if f.experiment_id is not None:
        c.append(_T.experiment_id == f.experiment_id)
    if f.deployment_id is not None:
        c.append(_T.deployment_id == f.deployment_id)
    parsed = parse_filter(f.filter)
    if parsed is not None:
        c.append(parsed)
    return c


# ---------------------------------------------------------------- the filter string

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][\w.]*)
    """,
    re.VERBOSE,
)

# field -> (column expression, kind); kind is "str", "num", or a converter name.
_FIELDS: dict[str, tuple[Any, str]] = {
    "id": (_T.id, "str"),
    "trace_id": (_T.id, "str"),
    "name": (_T.name, "str"),
    "status": (_T.status, "status"),
    "user": (_T.user_id, "str"),
    "user_id": (_T.user_id, "str"),
    "session": (_T.session_id, "str"),
    "session_id": (_T.session_id, "str"),
    "latency_ms": (_T.duration_us / 1000.0, "num"),
    "duration_ms": (_T.duration_us / 1000.0, "num"),
    "cost": (_T.total_cost, "num"),
    "total_cost": (_T.total_cost, "num"),
    "input_tokens": (_T.input_tokens, "num"),
    "output_tokens": (_T.output_tokens, "num"),
    "tokens": (_T.input_tokens + _T.output_tokens, "num"),
    "spans": (_T.span_count, "num"),
    "span_count": (_T.span_count, "num"),
    "errors": (_T.error_count, "num"),
    "error_count": (_T.error_count, "num"),
    "service": (_T.service_name, "str"),
    "service_name": (_T.service_name, "str"),
    "experiment_id": (_T.experiment_id, "str"),
    "deployment_id": (_T.deployment_id, "str"),
    "start_time": (_T.start_us / 1000, "num"),
    "model": (None, "model"),
    "tag": (None, "tag"),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise InvalidArgument(
                    f"filter: unexpected character {text[pos]!r} at position {pos}",
                    details={"position": pos},
                )
            if m.lastgroup != "ws":
                self.toks.append((m.lastgroup or "", m.group(), pos))
            pos = m.end()
        self.i = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> tuple[str, str, int]:
        tok = self._peek()
        if tok is None:
            raise InvalidArgument("filter: unexpected end of expression")
        self.i += 1
        return tok

    def _word(self, w: str) -> bool:
        tok = self._peek()
        if tok is not None and tok[0] == "word" and tok[1].lower() == w:
            self.i += 1
            return True
        return False

    def _err(self, msg: str, tok: tuple[str, str, int] | None) -> InvalidArgument:
        pos = tok[2] if tok else len(self.text)
        return InvalidArgument(f"filter: {msg} at position {pos}", details={"position": pos})

    def parse(self) -> ColumnElement[bool]:
        expr = self._or()
        if self._peek() is not None:
            raise self._err(f"unexpected {self._peek()[1]!r}", self._peek())  # type: ignore[index]
        return expr

    def _or(self) -> ColumnElement[bool]:
        parts = [self._and()]
        while self._word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    def _and(self) -> ColumnElement[bool]:
        parts = [self._not()]
        while self._word("and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def _not(self) -> ColumnElement[bool]:
        if self._word("not"):
            return sa.not_(self._not())
        tok = self._peek()
        if tok is not None and tok[1] == "(":
            self.i += 1
            expr = self._or()
            close = self._next()
            if close[1] != ")":
                raise self._err("expected ')'", close)
            return expr
        return self._comparison()

    def _literal(self) -> str | float:
        tok = self._next()
        if tok[0] == "num":
            return float(tok[1])
        if tok[0] == "str":
            return re.sub(r"\\(.)", r"\1", tok[1][1:-1])
        raise self._err(f"expected a number or a quoted string, got {tok[1]!r}", tok)

    def _unknown(self, tok: tuple[str, str, int]) -> InvalidArgument:
        return self._err(f"unknown field {tok[1]!r} (fields: {', '.join(sorted(_FIELDS))})", tok)

    def _extension(self, tok: tuple[str, str, int]) -> ColumnElement[bool]:
        """A field another room adds (``tracing.filter_field`` hooks), parsed generically."""
        value: Any
        if self._word("is"):
            negate = self._word("not")
            if not self._word("null"):
                raise self._err("expected 'null'", self._peek())
            op, value = ("is not null" if negate else "is null"), None
        else:
            negate = self._word("not")
            if self._word("in"):
                opn = self._next()
                if opn[1] != "(":
                    raise self._err("expected '(' after 'in'", opn)
                values = [self._literal()]
                while (sep := self._next())[1] != ")":
                    if sep[1] != ",":
                        raise self._err("expected ',' or ')'", sep)
                    values.append(self._literal())
                op, value = ("not in" if negate else "in"), values
            elif like := "like" if self._word("like") else "ilike" if self._word("ilike") else "":
                op, value = ("not " if negate else "") + like, self._literal()
            elif negate:
                raise self._err("expected 'in', 'like' or 'ilike' after 'not'", self._peek())
            else:
                op_tok = self._next()
                if op_tok[0] != "op":
                    raise self._err(f"expected an operator, got {op_tok[1]!r}", op_tok)
                op = {"==": "=", "<>": "!="}.get(op_tok[1], op_tok[1])
                value = self._literal()
        for hook in hooks(FILTER_FIELD_HOOK):
            cond = hook(tok[1], op, value, _T.id)
            if cond is not None:
                return cond  # type: ignore[no-any-return]
        raise self._unknown(tok)

    def _comparison(self) -> ColumnElement[bool]:
        tok = self._next()
        if tok[0] != "word":
            raise self._unknown(tok)
        if tok[1].lower() not in _FIELDS:
            return self._extension(tok)
        col, kind = _FIELDS[tok[1].lower()]
        if self._word("is"):
            negate = self._word("not")
            if not self._word("null"):
                raise self._err("expected 'null'", self._peek())
            if col is None:
                raise self._err(f"{tok[1]} does not support 'is null'", tok)
            return col.is_not(None) if negate else col.is_(None)  # type: ignore[no-any-return]
        negate = self._word("not")
        if self._word("in"):
            opn = self._next()
            if opn[1] != "(":
                raise self._err("expected '(' after 'in'", opn)
            values = [self._literal()]
            while True:
                sep = self._next()
                if sep[1] == ")":
                    break
                if sep[1] != ",":
                    raise self._err("expected ',' or ')'", sep)
                values.append(self._literal())
            return _build(tok[1], col, kind, "not in" if negate else "in", values)
        for op in ("like", "ilike"):
            if self._word(op):
                return _build(tok[1], col, kind, ("not " if negate else "") + op, self._literal())
        if negate:
            raise self._err("expected 'in', 'like' or 'ilike' after 'not'", self._peek())
        op_tok = self._next()
        if op_tok[0] != "op":
            raise self._err(f"expected an operator, got {op_tok[1]!r}", op_tok)
        op = {"==": "=", "<>": "!="}.get(op_tok[1], op_tok[1])
        return _build(tok[1], col, kind, op, self._literal())


def _apply(col: Any, op: str, v: Any) -> ColumnElement[bool]:
    ops: dict[str, Any] = {
        "=": lambda: col == v,
        "!=": lambda: col != v,
        "<": lambda: col < v,
        "<=": lambda: col <= v,
        ">": lambda: col > v,
        ">=": lambda: col >= v,
        "like": lambda: col.like(v),
        "ilike": lambda: col.ilike(v),
        "not like": lambda: sa.not_(col.like(v)),
        "not ilike": lambda: sa.not_(col.ilike(v)),
        "in": lambda: col.in_(v),
        "not in": lambda: col.not_in(v),
    }
    return ops[op]()  # type: ignore[no-any-return]


def _build(field: str, col: Any, kind: str, op: str, value: Any) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    if kind == "num":
        if not all(isinstance(v, float) for v in values) or "like" in op:
            raise InvalidArgument(f"filter: {field} compares with numbers")
        return _apply(col, op, value)
    if not all(isinstance(v, str) for v in values):
        raise InvalidArgument(f"filter: {field} compares with quoted strings")
    if kind == "status":
        if "like" in op:
            raise InvalidArgument("filter: status compares with = or in")
        conv = [_status_value(v) for v in values]
        return _apply(col, op, conv if isinstance(value, list) else conv[0])
    if kind == "model":
        # "a trace uses model X": the negations mean "uses no model matching".
        positive = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}.get(op, op)
        if positive not in ("=", "in", "like", "ilike"):
            raise InvalidArgument("filter: model compares with =, !=, in, like or ilike")
        m = trace_models.alias("tm_filter").c  # aliased: the outer query may join trace_models
        exists = sa.exists(
            sa.select(sa.literal(1)).where(m.trace_id == _T.id, _apply(m.model, positive, value))
        )
        return exists if positive == op else sa.not_(exists)
    if kind == "tag":
        if op == "=":
            return _tag_condition(value)
        if op == "!=":
            return sa.or_(_T.tags.is_(None), sa.not_(_tag_condition(value)))
        if op == "in":
            return sa.or_(*[_tag_condition(v) for v in values])
        raise InvalidArgument("filter: tag compares with =, != or in")
    return _apply(col, op, value)


def parse_filter(text: str | None) -> ColumnElement[bool] | None:
    """The SQL condition on ``traces`` for a filter string (None for an empty one)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    return _Parser(text).parse()
