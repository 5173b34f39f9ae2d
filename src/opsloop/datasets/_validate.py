"""The streaming validator: checks rules batch by batch and builds the row-level report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from opsloop.datasets._arrow import jsonable, require_pyarrow, rows_jsonable, type_family
from opsloop.datasets._rules import _TEXT_AS, DEFAULT_MAX_EXAMPLES, Rule
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_COMPATIBLE = {
    ("float", "int"),
    ("timestamp", "date"),
}


class _State:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.violations = 0
        self.examples: list[dict[str, Any]] = []
        self.column_problem: str | None = None
        self.seen: set[Any] = set()


class Validator:
    """Check ``rules`` over canonical batches; ``report()`` gives the result."""

    def __init__(
        self, rules: list[Rule], schema: pa.Schema, *, max_examples: int = DEFAULT_MAX_EXAMPLES
    ) -> None:
        self.schema = schema
        self.max_examples = max_examples
        self.rows = 0
        self._states = [_State(r) for r in rules]
        for st in self._states:
            col = st.rule.column
            if col is not None and col not in schema.names:
                self._column_problem(st, f"column {col!r} is missing")
            elif st.rule.kind == "type" and col is not None:
                self._check_type_statically(st, schema.field(col).type)
            elif st.rule.kind == "range" and col is not None:
                fam = type_family(schema.field(col).type)
                if fam not in ("int", "float", "null"):
                    self._column_problem(
                        st, f"column {col!r} has type {schema.field(col).type}, not a number"
                    )

    def _column_problem(self, st: _State, message: str) -> None:
        st.column_problem = message
        st.violations += 1
        st.examples.append({"row": None, "value": None, "message": message})

    def _check_type_statically(self, st: _State, t: pa.DataType) -> None:
        want = st.rule.params["type"]
        have = type_family(t)
        if have in (want, "null") or (want, have) in _COMPATIBLE:
            return
        if have == "string" and want in _TEXT_AS:
            return  # checked row by row: which texts do not read as the type
        if want == "int" and have == "float":
            return  # checked row by row: which values are not whole
        if want == "bool" and have == "int":
            return  # checked row by row: which values are not 0 or 1
        self._column_problem(st, f"column {st.rule.column!r} has type {t}, expected {want}")

    # ------------------------------------------------------------------ checking

    def check(self, batch: pa.RecordBatch) -> None:
        offset = self.rows
        self.rows += batch.num_rows
        for st in self._states:
            if st.column_problem is not None:
                continue
            mask = self._violations(st, batch)
            if mask is None:
                continue
            self._record(st, batch, mask, offset)

    def _violations(self, st: _State, batch: pa.RecordBatch) -> np.ndarray | None:
        import numpy as np
        import pyarrow.compute as pc

        pa = require_pyarrow()
        rule = st.rule
        col = batch.column(rule.column) if rule.column is not None else None
        kind = rule.kind
        if kind == "custom":
            return self._custom(st, batch)
        assert col is not None
        if kind == "not_null":
            return np.asarray(col.is_null())
        valid = col.is_valid()
        if kind == "range":
            fam = type_family(col.type)
            if fam == "null":
                return None
            bad = pa.array(np.zeros(len(col), dtype=bool))
            lo, hi = rule.params.get("min"), rule.params.get("max")
            if lo is not None:
                bad = pc.or_(bad, pc.less(col, lo))
            if hi is not None:
                bad = pc.or_(bad, pc.greater(col, hi))
            if fam == "float":
                bad = pc.or_(bad, pc.is_nan(col))
            return np.asarray(pc.and_(bad.fill_null(False), valid))
        if kind == "allowed":
            values = rule.params["values"]
            try:
                value_set = pa.array(values, type=col.type)
                hit = pc.is_in(col, value_set=value_set)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                hit = pc.is_in(col.cast(pa.string()), value_set=pa.array([str(v) for v in values]))
            return np.asarray(pc.and_(pc.invert(hit.fill_null(False)), valid))
        if kind == "regex":
            text = col if type_family(col.type) == "string" else col.cast(pa.string())
            ok = pc.match_substring_regex(text, f"^(?:{rule.params['pattern']})$")
            return np.asarray(pc.and_(pc.invert(ok.fill_null(True)), valid))
        if kind == "type":
            return self._type_rows(st, col)
        if kind == "unique":
            return self._unique(st, col)
        raise InvalidArgument(f"unknown rule kind {kind!r}")  # pragma: no cover

    def _type_rows(self, st: _State, col: pa.Array) -> np.ndarray | None:
        import numpy as np
        import pyarrow.compute as pc

        want = st.rule.params["type"]
        have = type_family(col.type)
        valid = col.is_valid()
        if have == "string" and want in _TEXT_AS:
            ok = pc.match_substring_regex(col, _TEXT_AS[want])
            return np.asarray(pc.and_(pc.invert(ok.fill_null(True)), valid))
        if want == "int" and have == "float":
            whole = pc.equal(col, pc.floor(col)).fill_null(True)
            return np.asarray(pc.and_(pc.invert(whole), valid))
        if want == "bool" and have == "int":
            pa = require_pyarrow()
            ok = pc.is_in(col, value_set=pa.array([0, 1], type=col.type))
            return np.asarray(pc.and_(pc.invert(ok), valid))
        return None

    def _unique(self, st: _State, col: pa.Array) -> np.ndarray:
        import numpy as np

        fam = type_family(col.type)
        out = np.zeros(len(col), dtype=bool)
        seen = st.seen
        for i, v in enumerate(col.to_pylist()):
            if v is None:
                continue
            if fam in ("nested", "other"):
                v = orjson.dumps(jsonable(v, truncate=None), option=orjson.OPT_SORT_KEYS)
            if v in seen:
                out[i] = True
            else:
                seen.add(v)
        return out

    def _custom(self, st: _State, batch: pa.RecordBatch) -> np.ndarray:
        import numpy as np

        pa = require_pyarrow()
        rule = st.rule
        assert rule.fn is not None
        label = rule.name or "custom"
        try:
            if rule.params.get("per") == "row":
                flags: Any = [bool(rule.fn(row)) for row in batch.to_pylist()]
            else:
                flags = rule.fn(batch)
        except Exception as exc:
            raise InvalidArgument(
                f"custom rule {label!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(flags, pa.ChunkedArray):
            flags = flags.combine_chunks()
        if isinstance(flags, pa.Array):
            flags = np.asarray(flags.fill_null(False).cast(pa.bool_()))
        try:
            ok = np.asarray(flags, dtype=bool).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"custom rule {label!r} must return one flag per row") from exc
        if len(ok) != batch.num_rows:
            raise InvalidArgument(
                f"custom rule {label!r} returned {len(ok)} flags for {batch.num_rows} rows"
            )
        return ~ok

    def _record(self, st: _State, batch: pa.RecordBatch, mask: np.ndarray, offset: int) -> None:
        import numpy as np

        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        st.violations += len(idx)
        room = self.max_examples - len(st.examples)
        if room <= 0:
            return
        col = st.rule.column
        for i in idx[:room].tolist():
            if col is not None:
                value = jsonable(batch.column(col)[i].as_py())
            else:
                value = rows_jsonable(batch.slice(i, 1))[0]
            st.examples.append({"row": offset + i, "value": value})

    # ------------------------------------------------------------------ result

    def report(self) -> dict[str, Any]:
        rules = []
        for st in self._states:
            d = st.rule.describe()
            d["violations"] = st.violations
            d["examples"] = st.examples
            d["message"] = st.column_problem
            rules.append(d)
        total = sum(st.violations for st in self._states)
        return {
            "passed": total == 0,
            "rows_checked": self.rows,
            "total_violations": total,
            "max_examples": self.max_examples,
            "rules": rules,
        }
