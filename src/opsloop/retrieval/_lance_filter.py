"""Metadata in a LanceDB table, and filters compiled to LanceDB ``where`` SQL (a prefilter).

A Lance table has a fixed schema while metadata keys are free, so an item's
metadata is kept three ways:

- ``metadata``: the JSON text, returned with hits;
- ``kv``: a list of tokens, one per scalar value (and per scalar element of a list
  value), ``json.dumps([key, type tag, value])``: equality, ``$in`` and their
  negations are ``array_has`` / ``array_has_any`` over it;
- range columns per key, ``r_<hash of key>_{nmin,nmax,smin,smax}``: the smallest
  and largest number and text among the key's values, added to the table the
  first time a key holds a number or a text. "Some value > x" is ``nmax > x``,
  "some value < x" is ``nmin < x``, so each range operator is one comparison.

The semantics are those of the SQL compiler in ``_filter`` (and the in-memory
columns of ``_columns``): a leaf matches when any of the key's values does,
``$ne``/``$nin`` match items without a matching value (a missing key too), and a
value of another type never matches (``{"year": {"$gte": 2020}}`` skips the text
"2021"). Numbers compare as float64, texts by code point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from opsloop.retrieval._filter import T_NULL, T_NUM, T_TEXT, typed

RANGE_KINDS = ("nmin", "nmax", "smin", "smax")


def token(key: str, t: int, v: Any) -> str:
    if t == T_NUM:
        v = float(v)
    return json.dumps([key, t, v], ensure_ascii=False, separators=(",", ":"))


def range_column(key: str, kind: str) -> str:
    return f"r_{hashlib.sha1(key.encode()).hexdigest()[:20]}_{kind}"


def row_columns(kv: Iterable[tuple[str, int, Any]]) -> tuple[list[str], dict[str, Any]]:
    """``(kv tokens, {range column: value})`` of one item's ``kv`` rows."""
    tokens: list[str] = []
    ranges: dict[str, Any] = {}
    for key, t, v in kv:
        tokens.append(token(key, t, v))
        if t in (T_NUM, T_TEXT):
            value = float(v) if t == T_NUM else v
            lo, hi = (
                range_column(key, "nmin" if t == T_NUM else "smin"),
                range_column(key, "nmax" if t == T_NUM else "smax"),
            )
            ranges[lo] = value if lo not in ranges else min(ranges[lo], value)
            ranges[hi] = value if hi not in ranges else max(ranges[hi], value)
    return tokens, ranges


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value))


_RANGE = {"$gt": (">", "max"), "$gte": (">=", "max"), "$lt": ("<", "min"), "$lte": ("<=", "min")}


class WhereCompiler:
    """Compiles a filter (already checked by ``compile_filter``) to a ``where`` clause;
    ``columns`` are the table's columns (a range over a key never seen matches nothing)."""

    def __init__(self, columns: Iterable[str]) -> None:
        self.columns = set(columns)

    def node(self, f: Mapping[str, Any]) -> str:
        parts = []
        for key, cond in f.items():
            if key in ("$and", "$or"):
                subs = [self.node(c) for c in cond]
                parts.append("(" + (" AND " if key == "$and" else " OR ").join(subs) + ")")
            else:
                parts.append(self.field(key, cond))
        return "(" + " AND ".join(parts) + ")"

    def field(self, key: str, cond: Any) -> str:
        if not isinstance(cond, Mapping):
            return self.eq(key, cond)
        parts = []
        for op, value in cond.items():
            if op == "$eq":
                parts.append(self.eq(key, value))
            elif op == "$ne":
                parts.append(f"(NOT {self.eq(key, value)})")
            elif op in _RANGE:
                parts.append(self.range(key, op, value))
            elif op == "$in":
                parts.append(self.members(key, value))
            else:  # "$nin"
                parts.append(f"(NOT {self.members(key, value)})")
        return "(" + " AND ".join(parts) + ")"

    @staticmethod
    def eq(key: str, value: Any) -> str:
        t, v = typed(value, "filter")
        return f"array_has(kv, {_lit(token(key, t, None if t == T_NULL else v))})"

    @staticmethod
    def members(key: str, values: Any) -> str:
        toks = []
        for value in values:
            t, v = typed(value, "filter")
            toks.append(_lit(token(key, t, None if t == T_NULL else v)))
        return f"array_has_any(kv, [{', '.join(toks)}])"

    def range(self, key: str, op: str, value: Any) -> str:
        t, v = typed(value, "filter")
        sql_op, end = _RANGE[op]
        col = range_column(key, ("n" if t == T_NUM else "s") + end)
        if col not in self.columns:
            return "false"
        # Nulls (no value of that type) compare to null: no match, and never negated.
        return f"({col} IS NOT NULL AND {col} {sql_op} {_lit(v)})"


def where_sql(flt: Mapping[str, Any], columns: Iterable[str]) -> str:
    return WhereCompiler(columns).node(flt)
