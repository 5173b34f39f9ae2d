"""Metadata filters evaluated in memory: the ``kv`` rows of a snapshot as numpy columns.

SQLite keeps every scalar metadata value as a row ``kv(iid, key, t, v)`` (see
``_filter``). Evaluating a filter there costs a query per filter, tens of
milliseconds at 100,000 items. A snapshot keeps the same rows in memory, per
key: the rid, the type tag, the value as a number, and the value as a text
code. A filter then becomes a few vector comparisons and a bool per rid, with
the SQL compiler's semantics: a leaf matches an item when any of its values
for that key does, ``$ne``/``$nin`` are the live items without the matching
ones (a missing key matches them), values of another type never match.

Rows are only ever appended to a snapshot (a rebuild makes a new snapshot),
so the columns are brought up to date by reading the kv rows of the rids past
the ones already read; rows deleted since stay in the columns and are masked
out by the snapshot's live rows.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opsloop.retrieval._filter import T_NULL, T_NUM, T_TEXT, typed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    B = npt.NDArray[np.bool_]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class _Key:
    """The values of one metadata key: parallel columns, grown in chunks."""

    def __init__(self) -> None:
        self.chunks: list[tuple[Any, Any, Any, Any]] = []
        self._cols: tuple[Any, Any, Any, Any] | None = None

    def extend(self, rid: Any, t: Any, num: Any, code: Any) -> None:
        self.chunks.append((rid, t, num, code))
        self._cols = None

    def cols(self) -> tuple[Any, Any, Any, Any]:
        import numpy as np

        if self._cols is None:
            if len(self.chunks) > 1:
                cat = [np.concatenate([c[i] for c in self.chunks]) for i in range(4)]
                self.chunks = [(cat[0], cat[1], cat[2], cat[3])]
            self._cols = self.chunks[0]
        return self._cols


class MetaColumns:
    """A snapshot's metadata, by key, for filters evaluated with numpy."""

    def __init__(self) -> None:
        self.synced = 0  # kv rows of rids below this are read
        self.keys: dict[str, _Key] = {}
        self.codes: dict[str, int] = {}  # text value -> code
        self.words: list[str] = []  # code -> text value

    def sync(self, con: sqlite3.Connection, n_rows: int) -> None:
        """Read the kv rows of rids ``synced .. n_rows`` (in the caller's read transaction)."""
        import numpy as np

        if n_rows <= self.synced:
            return
        per_key: dict[str, tuple[list[int], list[int], list[float], list[int]]] = {}
        codes, words = self.codes, self.words
        nan = float("nan")
        for rid, key, t, v in con.execute(
            "SELECT i.rid, k.key, k.t, k.v FROM items i JOIN kv k ON k.iid = i.iid "
            "WHERE i.rid >= ? AND i.rid < ?",
            (self.synced, n_rows),
        ):
            cols = per_key.get(key)
            if cols is None:
                cols = per_key[key] = ([], [], [], [])
            cols[0].append(rid)
            cols[1].append(t)
            if t == T_TEXT:
                c = codes.get(v)
                if c is None:
                    c = codes[v] = len(words)
                    words.append(v)
                cols[2].append(nan)
                cols[3].append(c)
            else:
                cols[2].append(nan if v is None else float(v))
                cols[3].append(-1)
        for key, (rid, tt, num, code) in per_key.items():
            self.keys.setdefault(key, _Key()).extend(
                np.array(rid, dtype=np.int64),
                np.array(tt, dtype=np.int8),
                np.array(num, dtype=np.float64),
                np.array(code, dtype=np.int64),
            )
        self.synced = n_rows

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, f: Mapping[str, Any], alive: B) -> B:
        """The live rows ``f`` matches (``f`` was checked by ``compile_filter`` already)."""
        mask: B = self._node(f, alive) & alive
        return mask

    def _node(self, f: Mapping[str, Any], alive: B) -> B:
        out: B | None = None
        for key, cond in f.items():
            if key in ("$and", "$or"):
                subs = [self._node(c, alive) for c in cond]
                part = subs[0]
                for s in subs[1:]:
                    part = (part & s) if key == "$and" else (part | s)
            else:
                part = self._field(key, cond, alive)
            out = part if out is None else (out & part)
        assert out is not None
        return out

    def _field(self, key: str, cond: Any, alive: B) -> B:
        if not isinstance(cond, Mapping):
            return self._eq(key, cond, alive)
        out: B | None = None
        for op, value in cond.items():
            if op == "$eq":
                part = self._eq(key, value, alive)
            elif op == "$ne":
                part = alive & ~self._eq(key, value, alive)
            elif op in _OPS:
                part = self._range(key, op, value, alive)
            elif op == "$in":
                part = self._members(key, value, alive)
            else:  # "$nin"
                part = alive & ~self._members(key, value, alive)
            out = part if out is None else (out & part)
        assert out is not None
        return out

    def _rows(self, key: str, sel: Callable[[Any, Any, Any], Any], alive: B) -> B:
        """The rids with a value of ``key`` for which ``sel(t, num, code)`` holds."""
        import numpy as np

        mask = np.zeros(len(alive), dtype=bool)
        col = self.keys.get(key)
        if col is None:
            return mask
        rid, t, num, code = col.cols()
        hit = rid[sel(t, num, code)]
        mask[hit[hit < len(mask)]] = True
        return mask

    def _eq(self, key: str, value: Any, alive: B) -> B:
        t, v = typed(value, "filter")
        if t == T_NULL:
            return self._rows(key, lambda tt, num, code: tt == T_NULL, alive)
        if t == T_TEXT:
            c = self.codes.get(v)
            if c is None:
                return self._rows(key, lambda tt, num, code: tt < 0, alive)  # nothing
            return self._rows(key, lambda tt, num, code: (tt == T_TEXT) & (code == c), alive)
        fv = float(v)
        return self._rows(key, lambda tt, num, code: (tt == t) & (num == fv), alive)

    def _range(self, key: str, op: str, value: Any, alive: B) -> B:
        import numpy as np

        t, v = typed(value, "filter")
        cmp = _OPS[op]
        if t == T_NUM:
            fv = float(v)
            return self._rows(key, lambda tt, num, code: (tt == T_NUM) & cmp(num, fv), alive)
        # Text compares with text, by code point (SQLite's BINARY order on UTF-8).
        ok = np.fromiter((cmp(w, v) for w in self.words), dtype=bool, count=len(self.words))
        if not ok.any():
            return self._rows(key, lambda tt, num, code: tt < 0, alive)
        return self._rows(
            key, lambda tt, num, code: (tt == T_TEXT) & ok[np.maximum(code, 0)], alive
        )

    def _members(self, key: str, values: Any, alive: B) -> B:
        out: B | None = None
        for value in values:
            part = self._eq(key, value, alive)
            out = part if out is None else (out | part)
        assert out is not None
        return out
