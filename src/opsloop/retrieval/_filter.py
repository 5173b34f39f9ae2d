"""Metadata filters, checked and compiled to SQL over the index's key-value table.

Every scalar metadata value (and every scalar element of a list value) is a
row ``kv(iid, key, t, v)`` with a type tag ``t`` (0 null, 1 bool, 2 number,
3 text), indexed on ``(key, t, v)``. A filter compiles to a compound SELECT
of item ids: a leaf condition is an indexed range or equality over ``kv``,
``$and`` an INTERSECT, ``$or`` a UNION, and a negation (``$ne``, ``$nin``)
the live items EXCEPT the matching ones, so a key that is missing matches
``$ne`` and ``$nin`` (as in MongoDB). Comparing across types never matches:
``{"year": {"$gte": 2020}}`` skips items whose ``year`` is the text "2021".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from opsloop.errors import InvalidArgument

T_NULL, T_BOOL, T_NUM, T_TEXT = 0, 1, 2, 3
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
MAX_KEY_LEN = 256


def check_key(key: object, where: str = "metadata") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"{where} keys must be non-empty strings, got {key!r}")
    if key.startswith("$"):
        raise InvalidArgument(f"{where} key {key!r} must not start with '$' (operators do)")
    if len(key) > MAX_KEY_LEN:
        raise InvalidArgument(f"{where} key {key[:40]!r}... is over {MAX_KEY_LEN} characters")
    return key


def typed(value: object, where: str) -> tuple[int, Any]:
    """``(type tag, stored value)`` of a scalar; ``InvalidArgument`` for anything else."""
    if value is None:
        return T_NULL, None
    if isinstance(value, bool):
        return T_BOOL, int(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidArgument(f"{where}: {value!r} is outside the 64-bit integer range")
        return T_NUM, value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}: {value!r} is not a finite number")
        return T_NUM, value
    if isinstance(value, str):
        return T_TEXT, value
    raise InvalidArgument(
        f"{where}: {value!r} ({type(value).__name__}) is not a string, number, bool or null"
    )


def kv_rows(metadata: Mapping[str, Any]) -> Iterator[tuple[str, int, Any]]:
    """The ``(key, t, v)`` rows a metadata dict is indexed under (nested dicts are not)."""
    for key, value in metadata.items():
        if isinstance(value, list | tuple):
            for item in value:
                if item is None or isinstance(item, bool | int | float | str):
                    yield (key, *typed(item, f"metadata[{key!r}]"))
        elif value is None or isinstance(value, bool | int | float | str):
            yield (key, *typed(value, f"metadata[{key!r}]"))


class _Compiler:
    def __init__(self) -> None:
        self.params: list[Any] = []

    def node(self, f: object, path: str) -> str:
        if not isinstance(f, Mapping):
            raise InvalidArgument(f"filter{path} must be an object, got {type(f).__name__}")
        if not f:
            raise InvalidArgument(f"filter{path} is empty")
        parts: list[str] = []
        for key, cond in f.items():
            if key in ("$and", "$or"):
                if not isinstance(cond, list) or not cond:
                    raise InvalidArgument(f"filter{path}.{key} needs a non-empty list of filters")
                subs = [self.node(c, f"{path}.{key}[{i}]") for i, c in enumerate(cond)]
                parts.append(self.combine(subs, "INTERSECT" if key == "$and" else "UNION"))
            elif isinstance(key, str) and key.startswith("$"):
                raise InvalidArgument(
                    f"filter{path}: unknown operator {key!r} at the top of a filter; "
                    f"use $and or $or, or a metadata key"
                )
            else:
                check_key(key, "filter")
                parts.append(self.field(key, cond, f"{path}.{key}"))
        return self.combine(parts, "INTERSECT")

    def field(self, key: str, cond: object, path: str) -> str:
        if not isinstance(cond, Mapping):
            return self.eq(key, cond, path)
        if not cond:
            raise InvalidArgument(f"filter{path} has no operator")
        parts = []
        for op, value in cond.items():
            where = f"filter{path}.{op}"
            if op == "$eq":
                parts.append(self.eq(key, value, where))
            elif op == "$ne":
                parts.append(self.negate(self.eq(key, value, where)))
            elif op in _RANGE_SQL:
                t, v = typed(value, where)
                if t not in (T_NUM, T_TEXT):
                    raise InvalidArgument(f"{where} needs a number or a string, got {value!r}")
                self.params += [key, t, v]
                parts.append(f"SELECT iid FROM kv WHERE key = ? AND t = ? AND v {_RANGE_SQL[op]} ?")
            elif op in ("$in", "$nin"):
                if not isinstance(value, list | tuple) or not value:
                    raise InvalidArgument(f"{where} needs a non-empty list of values")
                members = self.members(key, value, where)
                parts.append(members if op == "$in" else self.negate(members))
            else:
                raise InvalidArgument(
                    f"filter{path}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}"
                )
        return self.combine(parts, "INTERSECT")

    def eq(self, key: str, value: object, where: str) -> str:
        if isinstance(value, list | tuple | Mapping):
            raise InvalidArgument(
                f"{where}: equality needs a string, number, bool or null (use $in for a list)"
            )
        t, v = typed(value, where)
        if t == T_NULL:
            self.params += [key, t]
            return "SELECT iid FROM kv WHERE key = ? AND t = ?"
        self.params += [key, t, v]
        return "SELECT iid FROM kv WHERE key = ? AND t = ? AND v = ?"

    def members(self, key: str, values: Any, where: str) -> str:
        by_type: dict[int, list[Any]] = {}
        for i, value in enumerate(values):
            t, v = typed(value, f"{where}[{i}]")
            by_type.setdefault(t, []).append(v)
        ors, params = [], [key]
        for t, vs in sorted(by_type.items()):
            if t == T_NULL:
                ors.append("t = 0")
            else:
                ors.append(f"(t = {t} AND v IN ({', '.join('?' * len(vs))}))")
                params += vs
        self.params += params
        return f"SELECT iid FROM kv WHERE key = ? AND ({' OR '.join(ors)})"

    @staticmethod
    def negate(sql: str) -> str:
        return f"SELECT iid FROM items EXCEPT SELECT * FROM ({sql})"

    @staticmethod
    def combine(parts: list[str], op: str) -> str:
        if len(parts) == 1:
            return parts[0]
        return f" {op} ".join(f"SELECT * FROM ({p})" for p in parts)


def compile_filter(f: object) -> tuple[str, list[Any]]:
    """``(sql, params)``: a SELECT of the ``rid`` of every live item the filter matches."""
    c = _Compiler()
    sql = c.node(f, "")
    return f"SELECT rid FROM items WHERE iid IN ({sql})", c.params
