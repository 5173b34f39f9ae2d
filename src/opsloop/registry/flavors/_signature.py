"""Input/output signatures: what a model accepts and returns, checked at predict time.

A signature is two lists of ``ColumnSpec(name, type, optional, shape)``.
Types: ``double``, ``long``, ``string``, ``boolean``, ``tensor`` (a nested list
of numbers, with an optional ``shape`` where ``-1`` means any length).

Prediction input comes as records (``[{"a": 1, "b": "x"}, ...]``) or as
columns (``{"a": [1, ...], "b": ["x", ...]}``); ``validate_input`` turns
either into columns in signature order and raises ``InvalidArgument`` naming
the column, the row and the problem.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = ["TYPES", "ColumnSpec", "Signature", "infer_signature", "to_columns", "validate_input"]

TYPES = ("double", "long", "string", "boolean", "tensor")
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class ColumnSpec:
    """One named input or output column."""

    name: str
    type: str
    optional: bool = False
    shape: tuple[int, ...] | None = None  # tensors only; -1 = any length

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or len(self.name) > 256:
            raise InvalidArgument(f"column name must be a non-empty string, got {self.name!r}")
        if self.type not in TYPES:
            raise InvalidArgument(
                f"column {self.name!r} has unknown type {self.type!r}; use one of {', '.join(TYPES)}"
            )
        if self.shape is not None and self.type != "tensor":
            raise InvalidArgument(f"column {self.name!r}: only tensor columns have a shape")
        if self.shape is not None and not all(-1 <= n < 2**63 for n in self.shape):
            raise InvalidArgument(f"column {self.name!r}: shape lengths are -1 (any) or sizes")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.optional:
            d["optional"] = True
        if self.shape is not None:
            d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnSpec:
        if not isinstance(d, Mapping):
            raise InvalidArgument(f"a column spec must be an object, got {d!r}")
        shape = d.get("shape")
        try:
            dims = None if shape is None else tuple(int(s) for s in shape)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgument(
                f"a column's shape is a list of integers, got {shape!r}"
            ) from None
        return cls(
            name=d.get("name"),  # type: ignore[arg-type]
            type=d.get("type"),  # type: ignore[arg-type]
            optional=bool(d.get("optional", False)),
            shape=dims,
        )


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and gives (``outputs``)."""

    inputs: list[ColumnSpec] = field(default_factory=list)
    outputs: list[ColumnSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        for side, cols in (("input", self.inputs), ("output", self.outputs)):
            names = [c.name for c in cols]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise InvalidArgument(f"duplicate {side} column(s) {sorted(dup)} in signature")

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Signature | None:
        if d is None:
            return None
        if not isinstance(d, Mapping):
            raise InvalidArgument("a signature must be an object with 'inputs' and 'outputs'")
        inputs, outputs = d.get("inputs") or [], d.get("outputs") or []
        if not isinstance(inputs, (list, tuple)) or not isinstance(outputs, (list, tuple)):
            raise InvalidArgument("a signature's inputs and outputs are lists of column specs")
        return cls(
            inputs=[ColumnSpec.from_dict(c) for c in inputs],
            outputs=[ColumnSpec.from_dict(c) for c in outputs],
        )

    def __str__(self) -> str:
        def side(cols: list[ColumnSpec]) -> str:
            return ", ".join(f"{c.name}: {c.type}{'?' if c.optional else ''}" for c in cols)

        return f"({side(self.inputs)}) -> ({side(self.outputs)})"


# ---------------------------------------------------------------------------- validation


def to_columns(data: Any) -> tuple[dict[str, list[Any]], int]:
    """Records or columns as ``({column: values}, row_count)``; ``InvalidArgument`` otherwise."""
    if isinstance(data, Mapping):
        cols: dict[str, list[Any]] = {}
        n: int | None = None
        for k, v in data.items():
            if not isinstance(k, str):
                raise InvalidArgument(f"column names must be strings, got {k!r}")
            if isinstance(v, str | bytes) or not isinstance(v, (Sequence, *_array_like())):
                raise InvalidArgument(
                    f"column {k!r} must be a list of values (columns format), got {type(v).__name__}"
                )
            values = list(v)  # type: ignore[call-overload]
            if n is None:
                n = len(values)
            elif len(values) != n:
                raise InvalidArgument(
                    f"columns have different lengths: {k!r} has {len(values)} values, expected {n}",
                    details={"column": k},
                )
            cols[k] = values
        if n is None:
            raise InvalidArgument("no input columns given")
        _check_rows(n)
        return cols, n
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        _check_rows(len(data))
        names: dict[str, None] = {}
        for i, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise InvalidArgument(
                    f"row {i} must be an object of column values (records format), "
                    f"got {type(row).__name__}",
                    details={"row": i},
                )
            for k in row:
                names.setdefault(k, None)
        out = {k: [row.get(k) for row in data] for k in names}
        return out, len(data)
    raise InvalidArgument(
        "prediction input must be records (a list of objects) or columns (an object of lists), "
        f"got {type(data).__name__}"
    )


def _array_like() -> tuple[type, ...]:
    # numpy arrays are accepted as column values without importing numpy eagerly.
    np = sys.modules.get("numpy")
    return (np.ndarray,) if np is not None else ()


def _check_rows(n: int) -> None:
    if n == 0:
        raise InvalidArgument("prediction input has no rows")
    if n > MAX_ROWS:
        raise InvalidArgument(f"prediction input has {n} rows; the limit is {MAX_ROWS}")


def validate_input(signature: Signature | None, data: Any) -> tuple[dict[str, list[Any]], int]:
    """Check ``data`` against the signature; return columns in signature order, values coerced.

    Without a signature the columns are returned as given. Coercions: a
    ``long`` column accepts integral floats (``3.0`` from JSON), a ``double``
    column accepts integers; numpy scalars become Python values.
    """
    cols, n = to_columns(data)
    if signature is None or not signature.inputs:
        return cols, n
    known = set(signature.input_names)
    extra = [k for k in cols if k not in known]
    if extra:
        raise InvalidArgument(
            f"unexpected input column(s) {extra}; the model's signature takes {signature.input_names}",
            details={"unexpected": extra, "expected": signature.input_names},
        )
    out: dict[str, list[Any]] = {}
    for spec in signature.inputs:
        values = cols.get(spec.name)
        if values is None:
            if spec.optional:
                out[spec.name] = [None] * n
                continue
            raise InvalidArgument(
                f"missing input column {spec.name!r} ({spec.type}); "
                f"the model's signature takes {signature.input_names}",
                details={"column": spec.name, "expected": spec.type},
            )
        out[spec.name] = [_coerce(spec, i, v) for i, v in enumerate(values)]
    return out, n


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _coerce(spec: ColumnSpec, row: int, v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v) and spec.type != "double"):
        if spec.optional:
            return None
        raise InvalidArgument(
            f"input column {spec.name!r} row {row} is null, but the signature requires a {spec.type}",
            details={"column": spec.name, "row": row, "expected": spec.type, "got": "null"},
        )
    if hasattr(v, "item") and not isinstance(v, list) and getattr(v, "ndim", 0) == 0:
        v = v.item()  # numpy scalar
    t = spec.type
    ok = True
    if t == "double":
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        v = float(v) if ok else v
    elif t == "long":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t == "string":
        ok = isinstance(v, str)
    elif t == "boolean":
        ok = isinstance(v, bool)
    elif t == "tensor":
        if hasattr(v, "tolist"):
            v = v.tolist()
        shape = _tensor_shape(v)
        ok = shape is not None
        if shape is not None and spec.shape is not None:
            want = spec.shape[1:]  # the first dimension is the batch (rows)
            if len(shape) != len(want) or any(
                w not in (-1, s) for w, s in zip(want, shape, strict=True)
            ):
                raise InvalidArgument(
                    f"input column {spec.name!r} row {row} has shape {list(shape)}, "
                    f"the signature expects {list(want)} (-1 = any)",
                    details={
                        "column": spec.name,
                        "row": row,
                        "expected": list(want),
                        "got": list(shape),
                    },
                )
    if not ok:
        raise InvalidArgument(
            f"input column {spec.name!r} row {row} must be {_article(t)}, got {_type_name(v)} {v!r:.60}",
            details={"column": spec.name, "row": row, "expected": t, "got": _type_name(v)},
        )
    return v


def _article(t: str) -> str:
    return {
        "double": "a double (number)",
        "long": "a long (integer)",
        "string": "a string",
        "boolean": "a boolean",
        "tensor": "a tensor (nested list of numbers)",
    }[t]


def _tensor_shape(v: Any) -> tuple[int, ...] | None:
    """The shape of a rectangular nested list of numbers, or None if it is not one."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return ()
    if not isinstance(v, list):
        return None
    if not v:
        return (0,)
    inner = [_tensor_shape(x) for x in v]
    first = inner[0]
    if first is None or any(s != first for s in inner):
        return None
    return (len(v), *first)


# ---------------------------------------------------------------------------- inference


def _scalar_type(values: Sequence[Any]) -> tuple[str, bool]:
    """(type, optional) of a list of Python or numpy scalars."""
    optional = any(v is None for v in values)
    vals = [
        v.item() if hasattr(v, "item") and getattr(v, "ndim", 0) == 0 else v
        for v in values
        if v is not None
    ]
    if not vals:
        return "string", True
    if all(isinstance(v, bool) for v in vals):
        return "boolean", optional
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return "long", optional
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        return "double", optional
    if all(isinstance(v, str) for v in vals):
        return "string", optional
    if all(_tensor_shape(v.tolist() if hasattr(v, "tolist") else v) is not None for v in vals):
        return "tensor", optional
    raise InvalidArgument(f"cannot infer a column type from values like {vals[0]!r}")


def _dtype_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"f": "double", "i": "long", "u": "long", "b": "boolean"}.get(kind, "string")


def _specs(example: Any, default_name: str) -> list[ColumnSpec]:
    if example is None:
        return []
    # DataFrame-like (pandas, polars): named columns with dtypes; no import needed.
    if (
        hasattr(example, "columns")
        and hasattr(example, "dtypes")
        and not isinstance(example, Mapping)
    ):
        dtypes = (
            list(example.dtypes)
            if not isinstance(example.dtypes, Mapping)
            else list(example.dtypes.values())
        )
        out = []
        for name, dt in zip(list(example.columns), dtypes, strict=True):
            t = _dtype_type(dt)
            if t == "string":
                t, opt = _scalar_type(list(example[name]))
            else:
                opt = False
            out.append(ColumnSpec(str(name), t, opt))
        return out
    if hasattr(example, "ndim") and hasattr(example, "dtype"):  # numpy array
        if example.ndim == 1:
            return [ColumnSpec(default_name, _dtype_type(example.dtype))]
        return [ColumnSpec(default_name, "tensor", shape=(-1, *example.shape[1:]))]
    if isinstance(example, Mapping):
        cols, _ = to_columns(example)
        return [ColumnSpec(k, *_scalar_type(v)) for k, v in cols.items()]
    if isinstance(example, Sequence) and not isinstance(example, str | bytes):
        if example and all(isinstance(r, Mapping) for r in example):
            cols, _ = to_columns(example)
            return [ColumnSpec(k, *_scalar_type(v)) for k, v in cols.items()]
        t, opt = _scalar_type(list(example))
        if t == "tensor":
            first = example[0]
            first = first.tolist() if hasattr(first, "tolist") else first
            row_shape = _tensor_shape(first) or ()
            return [ColumnSpec(default_name, "tensor", opt, (-1, *row_shape))]
        return [ColumnSpec(default_name, t, opt)]
    if isinstance(example, str):
        return [ColumnSpec(default_name, "string")]
    raise InvalidArgument(f"cannot infer a signature from a {type(example).__name__}")


def infer_signature(example_input: Any, example_output: Any = None) -> Signature:
    """A signature from example data.

    Inputs: records, columns, a DataFrame, a numpy array (1-D: one column
    ``input``; 2-D: one ``tensor`` column ``input`` of shape ``[-1, n]``) or a
    list of strings (one ``string`` column ``input``). Outputs likewise, with
    the default column name ``prediction``.
    """
    return Signature(_specs(example_input, "input"), _specs(example_output, "prediction"))
