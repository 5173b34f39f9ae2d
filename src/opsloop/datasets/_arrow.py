"""Arrow helpers: the lazy pyarrow import, canonical column types, JSON-safe values.

A dataset's content is defined by its canonical Arrow schema and its rows in
order. Canonical types erase differences that say nothing about the data:
every integer width becomes ``int64``, every float ``float64``, large and view
strings ``string``, dictionaries their value type, second and millisecond
timestamps ``timestamp[us]``. So the same rows read from CSV, JSONL, Parquet
written by pandas, or Python records, get the same schema and the same digest.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import math
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

MAX_SAMPLE_TEXT = 1000  # characters kept per text value in samples and examples


def require_pyarrow() -> Any:
    """``pyarrow``, or an ImportError that says which extra installs it."""
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise ImportError("opsloop datasets need pyarrow: pip install 'opsloop[data]'") from exc
    return pyarrow


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The canonical form of an Arrow type (see the module docstring)."""
    pa = require_pyarrow()
    types = pa.types
    if types.is_dictionary(t):
        return canonical_type(t.value_type)
    if types.is_integer(t):
        return t if t == pa.uint64() else pa.int64()
    if types.is_floating(t):
        return pa.float64()
    if types.is_string(t) or types.is_large_string(t) or types.is_string_view(t):
        return pa.string()
    if (
        types.is_binary(t)
        or types.is_large_binary(t)
        or types.is_binary_view(t)
        or types.is_fixed_size_binary(t)
    ):
        return pa.binary()
    if types.is_timestamp(t):
        return pa.timestamp(t.unit if t.unit in ("us", "ns") else "us", t.tz)
    if types.is_date(t):
        return pa.date32()
    if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
        return pa.list_(canonical_type(t.value_type))
    if types.is_list_view(t) or types.is_large_list_view(t):
        return pa.list_(canonical_type(t.value_type))
    if types.is_struct(t):
        return pa.struct(
            [
                pa.field(t.field(i).name, canonical_type(t.field(i).type))
                for i in range(t.num_fields)
            ]
        )
    if types.is_map(t):
        return pa.map_(canonical_type(t.key_type), canonical_type(t.item_type))
    return t


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """Every field canonical and nullable; no metadata. Duplicate or empty names are refused."""
    pa = require_pyarrow()
    names = list(schema.names)
    if not names:
        raise InvalidArgument("the data has no columns")
    seen: set[str] = set()
    for n in names:
        if not n:
            raise InvalidArgument("a column has an empty name")
        if n in seen:
            raise InvalidArgument(f"column {n!r} appears twice")
        seen.add(n)
    return pa.schema([pa.field(f.name, canonical_type(f.type)) for f in schema])


def to_canonical(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast to the canonical ``schema`` (same column names, in order)."""
    pa = require_pyarrow()
    if batch.schema.names != schema.names:
        raise InvalidArgument(
            f"columns changed within the data: expected {schema.names}, got {batch.schema.names}"
        )
    if batch.schema.equals(schema):
        return batch
    try:
        arrays = [
            col if col.type == f.type else col.cast(f.type)
            for col, f in zip(batch.columns, schema, strict=True)
        ]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidArgument(f"cannot convert a batch to the dataset schema: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def type_name(t: pa.DataType) -> str:
    """The stored name of a type (Arrow's own spelling, e.g. ``int64``, ``double``, ``string``)."""
    return str(t)


def type_family(t: pa.DataType) -> str:
    """One of ``int``, ``float``, ``bool``, ``string``, ``binary``, ``timestamp``, ``date``,
    ``time``, ``duration``, ``decimal``, ``null``, ``nested``, ``other``."""
    pa = require_pyarrow()
    types = pa.types
    if types.is_integer(t):
        return "int"
    if types.is_floating(t):
        return "float"
    if types.is_boolean(t):
        return "bool"
    if types.is_string(t) or types.is_large_string(t):
        return "string"
    if types.is_binary(t) or types.is_large_binary(t):
        return "binary"
    if types.is_timestamp(t):
        return "timestamp"
    if types.is_date(t):
        return "date"
    if types.is_time(t):
        return "time"
    if types.is_duration(t):
        return "duration"
    if types.is_decimal(t):
        return "decimal"
    if types.is_null(t):
        return "null"
    if types.is_nested(t):
        return "nested"
    return "other"


def jsonable(v: Any, *, truncate: int | None = MAX_SAMPLE_TEXT) -> Any:
    """A JSON-safe form of a value read from Arrow: NaN/inf become None, times ISO strings,
    bytes base64, decimals strings; long texts cut to ``truncate`` characters."""
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, str):
        if truncate is not None and len(v) > truncate:
            return v[:truncate] + "…"
        return v
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        raw = bytes(v)
        if truncate is not None and len(raw) > truncate:
            raw = raw[:truncate]
        return base64.b64encode(raw).decode("ascii")
    if isinstance(v, dict):
        return {str(k): jsonable(x, truncate=truncate) for k, x in v.items()}
    if isinstance(v, list | tuple):
        if v and isinstance(v[0], tuple) and len(v[0]) == 2:  # Arrow maps come back as pairs
            return [[jsonable(a, truncate=truncate), jsonable(b, truncate=truncate)] for a, b in v]
        return [jsonable(x, truncate=truncate) for x in v]
    return str(v)


def rows_jsonable(table: Any, *, truncate: int | None = MAX_SAMPLE_TEXT) -> list[dict[str, Any]]:
    """Rows of an Arrow table or batch as JSON-safe dicts."""
    return [
        {k: jsonable(v, truncate=truncate) for k, v in row.items()} for row in table.to_pylist()
    ]
