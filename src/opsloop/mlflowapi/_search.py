"""MLflow's search syntax, translated into opsloop's run filter language.

MLflow filters are comparisons joined by ``AND``::

    metrics.rmse < 1 and params.model = 'rf' and tags."mlflow.runName" LIKE 'a%'
    attributes.status = 'FINISHED' and attributes.run_id IN ('a', 'b')

Each comparison is parsed and written out again in opsloop's syntax (keys in
back-quotes, strings in double quotes), so opsloop's own parser turns it into
SQL. MLflow's reserved tags live in opsloop's run columns: ``mlflow.runName``
is the run's name, ``mlflow.user`` its user, ``mlflow.parentRunId`` its parent
and ``mlflow.note.content`` its notes. Experiments and registry searches,
which opsloop filters in Python, use ``Condition.matches``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any

from opsloop.mlflowapi._wire import MlflowError

__all__ = [
    "Condition",
    "logged_model_filter",
    "parse_conditions",
    "run_filter",
    "run_order_by",
]

# MLflow's reserved run tags that opsloop keeps as run columns (filter names).
TAG_COLUMNS = {
    "mlflow.runName": "name",
    "mlflow.user": "user",
    "mlflow.parentRunId": "parent_run_id",
    "mlflow.note.content": "notes",
}
_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attr",
    "attributes": "attr",
    "attr": "attr",
    "run": "attr",
    "dataset": "dataset",
    "datasets": "dataset",
}
_ATTRIBUTES = {
    "run_id": "id",
    "run_name": "name",
    "status": "status",
    "start_time": "start_time",
    "created": "start_time",
    "end_time": "end_time",
    "user_id": "user",
    "experiment_id": "experiment_id",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<bq>`[^`]*`)
  | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    entity: str  # metric | param | tag | attr | dataset
    key: str
    op: str  # = != < <= > >= like ilike in "not in" "is null" "is not null"
    value: Any  # str | float | list | None

    def matches(self, actual: Any, *, missing_differs: bool = False) -> bool:
        """Whether a stored value (a string, a number or None) satisfies this comparison.

        ``missing_differs``: an absent value satisfies ``!=`` (the registry's rule, on
        which the client's ``tag.`mlflow.prompt.is_prompt` != 'true'`` relies).
        """
        if self.op == "is null":
            return actual is None
        if self.op == "is not null":
            return actual is not None
        if actual is None:
            return missing_differs and self.op in ("!=", "not in")
        v = self.value
        if self.op in ("in", "not in"):
            inside = str(actual) in [str(x) for x in v]
            return inside if self.op == "in" else not inside
        if self.op in ("like", "ilike"):
            pattern = str(v).replace("%", "*").replace("_", "?")
            a = str(actual)
            if self.op == "ilike":
                return fnmatch.fnmatchcase(a.lower(), pattern.lower())
            return fnmatch.fnmatchcase(a, pattern)
        if isinstance(v, float):
            try:
                a_num = float(actual)
            except (TypeError, ValueError):
                return False
            return _cmp(a_num, self.op, v)
        return _cmp(str(actual), self.op, str(v))


def _cmp(a: Any, op: str, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Invalid filter '{text}': unexpected character {text[pos]!r} at {pos}",
            )
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
        pos = m.end()
    return out


def _unquote(kind: str, text: str) -> str:
    if kind == "bq":
        return text[1:-1]
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def bad(self, why: str) -> MlflowError:
        return MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{self.text}': {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.bad("unexpected end")
        self.i += 1
        return tok

    def word(self, w: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == w

    def identifier(self, *, default_entity: str | None = "attr") -> tuple[str, str]:
        kind, text = self.next()
        if kind in ("bq", "str"):
            if default_entity is None:
                raise self.bad(f"expected an identifier, got {text}")
            return default_entity, _unquote(kind, text)
        if kind != "word":
            raise self.bad(f"expected an identifier, got {text!r}")
        head, dot, rest = text.partition(".")
        entity = _ENTITIES.get(head.lower()) if dot else None
        if entity is not None:
            if rest:
                return entity, rest
            # metrics."a key" / tags.`mlflow.runName`: the key is the next token.
            k_kind, k_text = self.next()
            if k_kind not in ("bq", "str"):
                raise self.bad(f"expected a key after {text!r}")
            return entity, _unquote(k_kind, k_text)
        if default_entity is None:
            raise self.bad(f"unknown identifier {text!r}")
        return default_entity, text

    def literal(self) -> str | float:
        kind, text = self.next()
        if kind == "str":
            return _unquote(kind, text)
        if kind == "num":
            return float(text)
        raise self.bad(f"expected a quoted string or a number, got {text!r}")

    def comparison(self) -> Condition:
        entity, key = self.identifier()
        if self.word("is"):
            self.i += 1
            neg = False
            if self.word("not"):
                self.i += 1
                neg = True
            if not self.word("null"):
                raise self.bad("expected NULL after IS")
            self.i += 1
            return Condition(entity, key, "is not null" if neg else "is null", None)
        neg = False
        if self.word("not"):
            self.i += 1
            neg = True
        if self.word("in"):
            self.i += 1
            if self.next() != ("punct", "("):
                raise self.bad("expected '(' after IN")
            values: list[Any] = [self.literal()]
            while True:
                kind, text = self.next()
                if text == ")":
                    break
                if text != ",":
                    raise self.bad("expected ',' or ')' in a value list")
                values.append(self.literal())
            return Condition(entity, key, "not in" if neg else "in", values)
        if self.word("like") or self.word("ilike"):
            op = self.next()[1].lower()
            if neg:
                raise self.bad("NOT LIKE is not supported")
            return Condition(entity, key, op, self.literal())
        if neg:
            raise self.bad("expected IN, LIKE or ILIKE after NOT")
        kind, text = self.next()
        if kind != "op":
            raise self.bad(f"expected a comparison operator, got {text!r}")
        op = {"==": "=", "<>": "!="}.get(text, text)
        return Condition(entity, key, op, self.literal())

    def parse(self) -> list[Condition]:
        out = [self.comparison()]
        while self.peek() is not None:
            if not self.word("and"):
                tok = self.peek()
                raise self.bad(
                    f"expected AND, got {tok[1] if tok else ''!r} (MLflow filters join with AND)"
                )
            self.i += 1
            out.append(self.comparison())
        return out


def parse_conditions(text: str | None) -> list[Condition]:
    """An MLflow filter string as its AND-ed comparisons (empty for no filter)."""
    if text is None or not text.strip():
        return []
    if len(text) > 4000:
        raise MlflowError("INVALID_PARAMETER_VALUE", "the filter is longer than 4000 characters")
    return _Parser(text).parse()


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(key: str) -> str:
    if "`" in key:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"key {key!r} may not hold a back-quote")
    return f"`{key}`"


def _lit(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_lit(v) for v in value) + ")"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MlflowError("INVALID_PARAMETER_VALUE", "filters compare with finite numbers")
        return repr(value)
    return _q(str(value))


# A logged model is a run (see _tracking): its attributes in the run's terms.
_MODEL_ATTRIBUTES = {
    "name": "name",
    "model_id": "id",
    "source_run_id": "parent_run_id",
    "status": "status",
    "creation_timestamp": "start_time",
    "creation_time": "start_time",
    "last_updated_timestamp": "end_time",
    "experiment_id": "experiment_id",
    "model_type": "tags.`opsloop.mlflow.model_type`",
}
_MODEL_STATUS = {
    "LOGGED_MODEL_PENDING": "RUNNING",
    "LOGGED_MODEL_READY": "FINISHED",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    "PENDING": "RUNNING",
    "READY": "FINISHED",
    "UPLOAD_FAILED": "FAILED",
}


def _model_value(col: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_model_value(col, v) for v in value]
    if col == "id" and isinstance(value, str):
        return value.removeprefix("m-")
    if col == "status" and isinstance(value, str):
        return _MODEL_STATUS.get(value.upper(), value)
    return value


def logged_model_filter(text: str | None) -> str | None:
    """An MLflow logged-models filter in opsloop's filter language, over the models' runs."""
    out = []
    for c in parse_conditions(text):
        if c.entity != "attr":
            out.append(c)
            continue
        col = _MODEL_ATTRIBUTES.get(c.key.lower())
        if col is None:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"Invalid attribute key '{c.key}' specified. Valid keys are "
                f"{sorted(_MODEL_ATTRIBUTES)}",
            )
        if col.startswith("tags."):
            out.append(Condition("tag", "opsloop.mlflow.model_type", c.op, c.value))
        else:
            out.append(Condition("attr", col, c.op, _model_value(col, c.value)))
    return _emit(out, run_columns=True)


def _field(c: Condition, *, run_columns: bool = False) -> tuple[str, bool]:
    """(opsloop field, numeric?) for an MLflow comparison's left side."""
    if c.entity == "metric":
        return f"metrics.{_key(c.key)}", True
    if c.entity == "param":
        return f"params.{_key(c.key)}", False
    if c.entity == "tag":
        col = TAG_COLUMNS.get(c.key)
        return (col, False) if col else (f"tags.{_key(c.key)}", False)
    if c.entity == "dataset":
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            "filtering runs by datasets.* is not supported by opsloop's MLflow API",
        )
    col = c.key if run_columns else _ATTRIBUTES.get(c.key.lower())
    if col is None:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"Invalid attribute key '{c.key}' specified. Valid keys are {sorted(_ATTRIBUTES)}",
        )
    return col, col in ("start_time", "end_time")


@functools.lru_cache(maxsize=256)
def run_filter(text: str | None) -> str | None:
    """An MLflow runs filter in opsloop's filter language (None for no filter).

    Kept for the last 256 filters (a client repeats its searches); a bad one raises each time.
    """
    return _emit(parse_conditions(text))


def _emit(conds: list[Condition], *, run_columns: bool = False) -> str | None:
    parts = []
    for c in conds:
        field, numeric = _field(c, run_columns=run_columns)
        if c.op in ("is null", "is not null"):
            parts.append(f"{field} {c.op}")
            continue
        value = c.value
        if c.entity == "metric" or numeric:
            vals = value if isinstance(value, list) else [value]
            if not all(isinstance(v, float) for v in vals):
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE",
                    f"Expected numeric value for {c.entity} '{c.key}', got {value!r}",
                )
            if numeric and not all(abs(v) < 2**63 for v in vals):
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"{c.key} compares with epoch milliseconds (int64)"
                )
        elif isinstance(value, list):
            value = [str(v) if isinstance(v, str) else _num_text(v) for v in value]
        elif isinstance(value, float):
            # MLflow compares params, tags and text attributes as strings.
            value = _num_text(value)
        parts.append(f"{field} {c.op} {_lit(value)}")
    return " and ".join(parts) or None


def _num_text(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


_ORDER = re.compile(r"^(?P<field>.+?)(?:\s+(?P<dir>asc|desc))?$", re.IGNORECASE | re.DOTALL)


def run_order_by(items: list[Any]) -> list[str]:
    """MLflow ``order_by`` clauses (``metrics.rmse DESC``, ``start_time``) in opsloop's form."""
    out = []
    for raw in items:
        if not isinstance(raw, str) or not raw.strip():
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause {raw!r}")
        m = _ORDER.match(raw.strip())
        assert m is not None
        parser = _Parser(m.group("field"))
        entity, key = parser.identifier()
        if parser.peek() is not None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{raw}'")
        field, _ = _field(Condition(entity, key, "=", ""))
        out.append(f"{field} {(m.group('dir') or 'asc').lower()}")
    return out
