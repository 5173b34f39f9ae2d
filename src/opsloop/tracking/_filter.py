"""The run filter language, parsed into SQL.

Examples::

    metrics.f1 > 0.9 and params.model = "rf" and tags.team = "a"
    (params.lr < 0.01 or params.optimizer in ("adam", "sgd")) and not status = "FAILED"
    name ilike "%baseline%" and metrics.`val loss` is not null

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op literal
                | field ["not"] "in" "(" literal ("," literal)* ")"
                | field "is" ["not"] "null"
    op         := = | == | != | <> | < | <= | > | >= | like | ilike | not like | not ilike
    field      := (metrics|metric|m|params|param|p|tags|tag|t) "." key
                | [attributes "."] attribute
    key        := a bare name (letters, digits, _ . / - :) or a `back-quoted` or "quoted" name

A comparison on a metric uses the run's latest value of that metric; runs
without the metric, param or tag never match a comparison (use ``is null`` to
find them). A param compared with a number compares numerically.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from opsloop.errors import InvalidArgument
from opsloop.tracking._tables import latest_metrics, params, run_tags, runs

MAX_FILTER_LENGTH = 4096

ATTRIBUTES: dict[str, str] = {
    "id": "id",
    "run_id": "id",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "user": "user",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_run_id",
    "notes": "notes",
}
_NUMERIC_ATTRS = {"start_time", "end_time"}
_ENTITY = {
    "metrics": "metric",
    "metric": "metric",
    "m": "metric",
    "params": "param",
    "param": "param",
    "p": "param",
    "tags": "tag",
    "tag": "tag",
    "t": "tag",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<bq>`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w/:\-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise InvalidArgument(
                f"filter: unexpected character {text[pos]!r} at position {pos}",
                details={"position": pos},
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


def _unquote(tok: _Tok) -> str:
    if tok.kind == "bq":
        return tok.text[1:-1]
    body = tok.text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@dataclass(frozen=True)
class Field:
    entity: str  # metric | param | tag | attr
    key: str


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # -- helpers -----------------------------------------------------------

    def _peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def _next(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise InvalidArgument(
                "filter: unexpected end of expression", details={"position": len(self.text)}
            )
        self.i += 1
        return tok

    def _is_word(self, word: str, offset: int = 0) -> bool:
        tok = self._peek(offset)
        return tok is not None and tok.kind == "word" and tok.text.lower() == word

    def _error(self, msg: str, tok: _Tok | None) -> InvalidArgument:
        pos = tok.pos if tok else len(self.text)
        return InvalidArgument(f"filter: {msg} at position {pos}", details={"position": pos})

    # -- grammar -----------------------------------------------------------

    def parse(self) -> ColumnElement[bool]:
        expr = self._or()
        if self._peek() is not None:
            raise self._error(f"unexpected {self._peek().text!r}", self._peek())  # type: ignore[union-attr]
        return expr

    def _or(self) -> ColumnElement[bool]:
        parts = [self._and()]
        while self._is_word("or"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    def _and(self) -> ColumnElement[bool]:
        parts = [self._not()]
        while self._is_word("and"):
            self.i += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def _not(self) -> ColumnElement[bool]:
        if self._is_word("not"):
            self.i += 1
            return sa.not_(self._not())
        tok = self._peek()
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.i += 1
            expr = self._or()
            close = self._next()
            if close.text != ")":
                raise self._error("expected ')'", close)
            return expr
        return self._comparison()

    def _field(self) -> Field:
        tok = self._next()
        if tok.kind in ("bq", "str"):
            return self._attr(_unquote(tok), tok)
        if tok.kind != "word":
            raise self._error(f"expected a field name, got {tok.text!r}", tok)
        nxt = self._peek()
        entity = _ENTITY.get(tok.text.lower())
        if entity and nxt is not None and nxt.kind == "punct" and nxt.text == ".":
            self.i += 1
            key = self._key()
            if entity == "attr":
                return self._attr(key, tok)
            return Field(entity, key)
        return self._attr(tok.text, tok)

    def _attr(self, name: str, tok: _Tok) -> Field:
        col = ATTRIBUTES.get(name.lower())
        if col is None:
            raise self._error(
                f"unknown field {name!r} (use metrics.<key>, params.<key>, tags.<key> or one of "
                f"{', '.join(sorted(ATTRIBUTES))})",
                tok,
            )
        return Field("attr", col)

    def _key(self) -> str:
        # A key is a run of words and dots up to whitespace/operator, or one quoted token.
        tok = self._next()
        if tok.kind in ("bq", "str"):
            return _unquote(tok)
        if tok.kind not in ("word", "num"):
            raise self._error(f"expected a key name, got {tok.text!r}", tok)
        parts = [tok.text]
        end = tok.pos + len(tok.text)
        while True:
            nxt = self._peek()
            if nxt is None or nxt.pos != end or nxt.kind not in ("word", "num", "punct"):
                break
            if nxt.kind == "punct" and nxt.text != ".":
                break
            parts.append(nxt.text)
            end = nxt.pos + len(nxt.text)
            self.i += 1
        return "".join(parts)

    def _literal(self) -> str | float | bool:
        tok = self._next()
        if tok.kind == "num":
            return float(tok.text)
        if tok.kind == "str":
            return _unquote(tok)
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise self._error(f"expected a number or a quoted string, got {tok.text!r}", tok)

    def _comparison(self) -> ColumnElement[bool]:
        field = self._field()
        tok = self._peek()
        if tok is None:
            raise self._error("expected an operator", None)
        # is [not] null
        if self._is_word("is"):
            self.i += 1
            negate = False
            if self._is_word("not"):
                self.i += 1
                negate = True
            if not self._is_word("null"):
                raise self._error("expected 'null'", self._peek())
            self.i += 1
            present = _exists(field, None)
            return present if negate else sa.not_(present)
        negate = False
        if self._is_word("not"):
            self.i += 1
            negate = True
        if self._is_word("in"):
            self.i += 1
            opn = self._next()
            if opn.text != "(":
                raise self._error("expected '(' after 'in'", opn)
            values = [self._literal()]
            while True:
                sep = self._next()
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise self._error("expected ',' or ')'", sep)
                values.append(self._literal())
            return _compare(field, "not in" if negate else "in", values)
        if self._is_word("like") or self._is_word("ilike"):
            op = self._next().text.lower()
            value = self._literal()
            return _compare(field, ("not " if negate else "") + op, value)
        if negate:
            raise self._error("expected 'in', 'like' or 'ilike' after 'not'", self._peek())
        tok = self._next()
        if tok.kind != "op":
            raise self._error(f"expected an operator, got {tok.text!r}", tok)
        op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        return _compare(field, op, self._literal())


def _column_for(field: Field) -> tuple[Any, Any]:
    """(table, value column) for a metric/param/tag field."""
    if field.entity == "metric":
        return latest_metrics, latest_metrics.c.value
    if field.entity == "param":
        return params, params.c.value
    return run_tags, run_tags.c.value


def _exists(field: Field, cond: ColumnElement[bool] | None) -> ColumnElement[bool]:
    if field.entity == "attr":
        col = runs.c[field.key]
        return col.is_not(None) if cond is None else cond
    table, _ = _column_for(field)
    where = [table.c.run_id == runs.c.id, table.c.key == field.key]
    if cond is not None:
        where.append(cond)
    return sa.exists(sa.select(sa.literal(1)).select_from(table).where(*where))


def _apply(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return col == value  # type: ignore[no-any-return]
    if op == "!=":
        return col != value  # type: ignore[no-any-return]
    if op == "<":
        return col < value  # type: ignore[no-any-return]
    if op == "<=":
        return col <= value  # type: ignore[no-any-return]
    if op == ">":
        return col > value  # type: ignore[no-any-return]
    if op == ">=":
        return col >= value  # type: ignore[no-any-return]
    if op == "like":
        return col.like(value)  # type: ignore[no-any-return]
    if op == "ilike":
        return col.ilike(value)  # type: ignore[no-any-return]
    if op == "not like":
        return sa.not_(col.like(value))  # type: ignore[no-any-return]
    if op == "not ilike":
        return sa.not_(col.ilike(value))  # type: ignore[no-any-return]
    if op == "in":
        return col.in_(value)  # type: ignore[no-any-return]
    if op == "not in":
        return col.not_in(value)  # type: ignore[no-any-return]
    raise InvalidArgument(f"filter: unknown operator {op!r}")


def _fmt_num(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def _compare(field: Field, op: str, value: Any) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    is_num = all(isinstance(v, float) and not isinstance(v, bool) for v in values)
    is_str = all(isinstance(v, str) for v in values)
    text_op = op in ("like", "ilike", "not like", "not ilike")
    if text_op and not is_str:
        raise InvalidArgument(f"filter: {op} needs a quoted string pattern for {field.key!r}")

    if field.entity == "metric":
        if not is_num:
            raise InvalidArgument(
                f"filter: metric {field.key!r} compares with numbers, not {value!r}"
            )
        return _exists(field, _apply(latest_metrics.c.value, op, value))

    if field.entity == "param":
        if is_num:
            return _exists(field, _apply(params.c.value_num, op, value))
        if not is_str:
            raise InvalidArgument(f"filter: param {field.key!r} compares with a number or a string")
        return _exists(field, _apply(params.c.value, op, value))

    if field.entity == "tag":
        if is_num and op in ("=", "!=", "in", "not in"):
            conv: Any = [_fmt_num(v) for v in values]
            return _exists(
                field, _apply(run_tags.c.value, op, conv if isinstance(value, list) else conv[0])
            )
        if not is_str:
            raise InvalidArgument(f"filter: tag {field.key!r} compares with quoted strings")
        return _exists(field, _apply(run_tags.c.value, op, value))

    col = runs.c[field.key]
    if field.key in _NUMERIC_ATTRS:
        if not is_num:
            raise InvalidArgument(
                f"filter: {field.key} compares with a number (epoch milliseconds)"
            )
        conv = [int(v) for v in values]
        return _apply(col, op, conv if isinstance(value, list) else conv[0])
    if not is_str:
        raise InvalidArgument(f"filter: {field.key} compares with quoted strings")
    if field.key == "status":
        value = [v.upper() for v in values] if isinstance(value, list) else str(value).upper()
    return _apply(col, op, value)


def parse_filter(text: str | None) -> ColumnElement[bool] | None:
    """The SQL condition on ``runs`` for a filter string (None for an empty filter)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    return _Parser(text).parse()


# -- ordering ------------------------------------------------------------------


def parse_order_by(items: list[str] | None) -> list[Any]:
    """SQL ORDER BY clauses for ``["metrics.f1 DESC", "start_time"]``; nulls sort last."""
    clauses: list[Any] = []
    for raw in items or []:
        text = raw.strip()
        direction = "asc"
        m = re.match(r"^(.*?)\s+(asc|desc)$", text, re.IGNORECASE)
        if m:
            text, direction = m.group(1).strip(), m.group(2).lower()
        if not text:
            raise InvalidArgument(f"order_by: empty field in {raw!r}")
        parser = _Parser(text)
        field = parser._field()
        if parser._peek() is not None:
            raise InvalidArgument(f"order_by: cannot parse {raw!r}")
        if field.entity == "attr":
            expr: Any = runs.c[field.key]
        elif field.entity == "metric":
            expr = (
                sa.select(latest_metrics.c.value)
                .where(latest_metrics.c.run_id == runs.c.id, latest_metrics.c.key == field.key)
                .scalar_subquery()
            )
        elif field.entity == "param":
            sub = (
                sa.select(params.c.value_num)
                .where(params.c.run_id == runs.c.id, params.c.key == field.key)
                .scalar_subquery()
            )
            sub_text = (
                sa.select(params.c.value)
                .where(params.c.run_id == runs.c.id, params.c.key == field.key)
                .scalar_subquery()
            )
            for e in (sub, sub_text):
                clauses.append(sa.nulls_last(e.desc() if direction == "desc" else e.asc()))
            continue
        else:
            expr = (
                sa.select(run_tags.c.value)
                .where(run_tags.c.run_id == runs.c.id, run_tags.c.key == field.key)
                .scalar_subquery()
            )
        clauses.append(sa.nulls_last(expr.desc() if direction == "desc" else expr.asc()))
    return clauses


# -- page tokens -----------------------------------------------------------------


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["o"])
    except Exception as exc:
        raise InvalidArgument("page_token is not one this server issued") from exc
    if offset < 0:
        raise InvalidArgument("page_token is not one this server issued")
    return offset
