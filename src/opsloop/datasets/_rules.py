"""Validation rules and the streaming validator that checks them batch by batch.

Rules are declared in code (``Rule.range("age", min=0)``) or in a YAML/JSON
document::

    columns:
      id:      {unique: true, not_null: true}
      age:     {type: int, min: 0, max: 130}
      country: {allowed: [FR, DE, US]}
      email:   {regex: '[^@]+@[^@]+'}
    rules:               # the same, as a list
      - {rule: range, column: score, min: 0, max: 1}

Kinds: ``type``, ``range``, ``not_null``, ``unique``, ``allowed``, ``regex``
and ``custom`` (a Python callable; code only). Nulls pass every rule but
``not_null``. ``regex`` must match the whole value (RE2 syntax, as Arrow
runs it). ``unique`` keeps the set of values seen, so its memory grows with
the number of distinct values.

The report lists, per rule, how many rows broke it and the first
``max_examples`` of them (row index, value); a problem with a whole column
(missing, wrong type) is one violation with ``row`` None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import jsonable, require_pyarrow
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    pass

KINDS = ("type", "range", "not_null", "unique", "allowed", "regex", "custom")
TYPES = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "double": "float",
    "string": "string",
    "str": "string",
    "text": "string",
    "bool": "bool",
    "boolean": "bool",
    "timestamp": "timestamp",
    "datetime": "timestamp",
    "date": "date",
}
# Full-value patterns a text must match to be read as the type (RE2).
_TEXT_AS = {
    "int": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|[iI]nf(inity)?|[nN]a[nN])\s*$",
    "bool": r"^\s*(?i:true|false|0|1|yes|no)\s*$",
    "date": r"^\s*\d{4}-\d{2}-\d{2}\s*$",
    "timestamp": r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?\s*$",
}
DEFAULT_MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Rule:
    """One validation rule. Build with the class methods; ``describe()`` is its JSON form."""

    kind: str
    column: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    fn: Callable[..., Any] | None = field(default=None, compare=False)

    @classmethod
    def type(cls, column: str, type: str) -> Rule:
        if not isinstance(type, str) or type.lower() not in TYPES:
            raise InvalidArgument(
                f"unknown type {type!r} in a type rule on {column!r}: use one of "
                f"{sorted(set(TYPES.values()))}"
            )
        return cls("type", _col(column), {"type": TYPES[type.lower()]})

    @classmethod
    def range(cls, column: str, min: float | None = None, max: float | None = None) -> Rule:
        for label, v in (("min", min), ("max", max)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise InvalidArgument(f"range rule on {column!r}: {label} must be a number")
        if min is None and max is None:
            raise InvalidArgument(f"range rule on {column!r} needs min or max")
        if min is not None and max is not None and min > max:
            raise InvalidArgument(f"range rule on {column!r}: min {min} is above max {max}")
        return cls("range", _col(column), {"min": min, "max": max})

    @classmethod
    def not_null(cls, column: str) -> Rule:
        return cls("not_null", _col(column))

    @classmethod
    def unique(cls, column: str) -> Rule:
        return cls("unique", _col(column))

    @classmethod
    def allowed(cls, column: str, values: Sequence[Any]) -> Rule:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise InvalidArgument(f"allowed rule on {column!r} needs a non-empty list of values")
        return cls("allowed", _col(column), {"values": list(values)})

    @classmethod
    def regex(cls, column: str, pattern: str) -> Rule:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgument(f"regex rule on {column!r} needs a pattern")
        pa = require_pyarrow()
        import pyarrow.compute as pc

        try:
            pc.match_substring_regex(pa.array([""]), f"^(?:{pattern})$")
        except pa.ArrowInvalid as exc:
            raise InvalidArgument(f"regex rule on {column!r}: invalid pattern: {exc}") from exc
        return cls("regex", _col(column), {"pattern": pattern})

    @classmethod
    def custom(
        cls,
        name: str,
        fn: Callable[..., Any],
        *,
        column: str | None = None,
        per: str = "batch",
    ) -> Rule:
        """A check in Python. ``per="batch"``: ``fn(batch: pyarrow.RecordBatch)`` returns one
        truthy-means-valid flag per row; ``per="row"``: ``fn(row: dict) -> bool``."""
        if not callable(fn):
            raise InvalidArgument(f"custom rule {name!r} needs a callable")
        if per not in ("batch", "row"):
            raise InvalidArgument(f"custom rule {name!r}: per must be 'batch' or 'row'")
        return cls("custom", column, {"per": per}, name=name, fn=fn)

    def describe(self) -> dict[str, Any]:
        return {
            "rule": self.kind,
            "column": self.column,
            "name": self.name or (f"{self.kind}({self.column})" if self.column else self.kind),
            "params": {k: jsonable(v) for k, v in self.params.items()},
        }


def _col(column: Any) -> str:
    if not isinstance(column, str) or not column:
        raise InvalidArgument(f"a rule needs a column name, got {column!r}")
    return column


_COLUMN_KEYS = {"type", "min", "max", "not_null", "nullable", "unique", "allowed", "regex"}


def _rules_for_column(column: str, spec: Any) -> list[Rule]:
    if not isinstance(spec, Mapping):
        raise InvalidArgument(f"rules for column {column!r} must be a mapping, got {spec!r}")
    unknown = set(spec) - _COLUMN_KEYS
    if unknown:
        raise InvalidArgument(
            f"unknown rule key(s) {sorted(unknown)} for column {column!r}: "
            f"use {sorted(_COLUMN_KEYS)}"
        )
    out: list[Rule] = []
    if "type" in spec:
        out.append(Rule.type(column, spec["type"]))
    if "min" in spec or "max" in spec:
        out.append(Rule.range(column, spec.get("min"), spec.get("max")))
    if spec.get("not_null") or spec.get("nullable") is False:
        out.append(Rule.not_null(column))
    if spec.get("unique"):
        out.append(Rule.unique(column))
    if "allowed" in spec:
        out.append(Rule.allowed(column, spec["allowed"]))
    if "regex" in spec:
        out.append(Rule.regex(column, spec["regex"]))
    return out


def _rule_from_item(item: Any) -> list[Rule]:
    if not isinstance(item, Mapping) or "rule" not in item:
        raise InvalidArgument(f"each item of 'rules' needs a 'rule' key, got {item!r}")
    kind = item["rule"]
    column = _col(item.get("column"))
    rest = {k: v for k, v in item.items() if k not in ("rule", "column")}
    if kind == "custom":
        raise InvalidArgument("custom rules hold Python code: declare them with Rule.custom()")
    if kind not in KINDS:
        raise InvalidArgument(f"unknown rule {kind!r}: use one of {list(KINDS)}")
    try:
        if kind == "type":
            return [Rule.type(column, rest.pop("type"))]
        if kind == "range":
            return [Rule.range(column, rest.pop("min", None), rest.pop("max", None))]
        if kind == "allowed":
            return [Rule.allowed(column, rest.pop("values"))]
        if kind == "regex":
            return [Rule.regex(column, rest.pop("pattern"))]
    except KeyError as exc:
        raise InvalidArgument(f"rule {kind!r} on {column!r} is missing {exc.args[0]!r}") from None
    return [Rule.not_null(column) if kind == "not_null" else Rule.unique(column)]


def load_rules(spec: Any) -> list[Rule]:
    """Rules from a list of ``Rule``, a mapping (the document above), or a ``.yaml``/``.json``
    file path. Raises ``InvalidArgument`` naming what is wrong."""
    if spec is None:
        return []
    if isinstance(spec, Rule):
        return [spec]
    if isinstance(spec, str | Path):
        spec = _read_rules_file(Path(spec))
    if isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
        out: list[Rule] = []
        for item in spec:
            out.extend([item] if isinstance(item, Rule) else _rule_from_item(item))
        return out
    if not isinstance(spec, Mapping):
        raise InvalidArgument(f"rules must be a mapping, a list or a file path, got {spec!r}")
    unknown = set(spec) - {"columns", "rules"}
    if unknown:
        raise InvalidArgument(
            f"unknown top-level rule key(s) {sorted(unknown)}: use columns, rules"
        )
    rules: list[Rule] = []
    columns = spec.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise InvalidArgument("'columns' must map column names to rules")
    for col, col_spec in columns.items():
        rules.extend(_rules_for_column(str(col), col_spec))
    items = spec.get("rules") or []
    if not isinstance(items, Sequence):
        raise InvalidArgument("'rules' must be a list")
    for item in items:
        rules.extend(_rule_from_item(item))
    return rules


def _read_rules_file(path: Path) -> Any:
    if not path.is_file():
        raise InvalidArgument(f"rules file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(f"rules file {path} is not valid JSON: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - the data extra installs it
            raise ImportError("YAML rules need PyYAML: pip install 'opsloop[data]'") from exc
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"rules file {path} is not valid YAML: {exc}") from exc
    raise InvalidArgument(f"rules file {path} must end in .yaml, .yml or .json")


class ValidationFailed(InvalidArgument):
    """A dataset version broke its validation rules and ``on_error="reject"`` stored nothing.

    ``details["report"]`` holds the row-level report (also ``.report``).
    """

    code = "DATASET_VALIDATION_FAILED"
    http_status = 400

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message, details={"report": report})
        self.report = report

    @classmethod
    def _from_payload(cls, message: str, details: dict[str, Any] | None) -> ValidationFailed:
        report = (details or {}).get("report")
        return cls(message, report if isinstance(report, dict) else {})
