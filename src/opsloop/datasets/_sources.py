"""Record sources: the ``Source`` interface, type names, and rows given in code.

A ``Source`` yields Arrow record batches with one schema. Sources here hold
rows the caller already has (lists of dicts, dicts of columns, Arrow tables,
DataFrames, iterators of dicts); file readers are in ``_readers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import require_pyarrow
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_SIZE = 1 << 20  # bytes per CSV/JSON block: Arrow reads a few ahead, so this sets memory
BATCH_ROWS = 65_536  # rows per batch for in-memory and Parquet sources
RECORD_CHUNK = 50_000  # records per batch for iterators of dicts
TYPE_NAMES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "int": "int64",
    "int64": "int64",
    "integer": "int64",
    "float": "float64",
    "float64": "float64",
    "double": "float64",
    "bool": "bool",
    "boolean": "bool",
    "timestamp": "timestamp[us]",
    "datetime": "timestamp[us]",
    "date": "date32",
}


class RestartRead(Exception):
    """Reading must start again in another mode: ``action`` is ``grow`` (a row is larger than
    a block: use bigger blocks) or ``full_scan`` (a later block did not fit the types
    inferred from the first: infer from the whole file)."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(reason)
        self.action = action


MAX_BLOCK_SIZE = 1 << 30


def restart_for(exc: Exception) -> RestartRead | None:
    text = str(exc)
    if "straddl" in text:
        return RestartRead("grow", text)
    return None


def arrow_type(name: str) -> pa.DataType:
    """An Arrow type from a simple name (``string``, ``int``, ``float``, ``bool``, ``date``...)."""
    pa = require_pyarrow()
    key = TYPE_NAMES.get(str(name).lower())
    if key is None:
        raise InvalidArgument(f"unknown column type {name!r}: use one of {sorted(TYPE_NAMES)}")
    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp[us]": pa.timestamp("us"),
        "date32": pa.date32(),
    }[key]


class Source:
    """A stream of record batches with one schema."""

    description = "data"
    total_bytes: int | None = None
    full_scan = False
    block_size = BLOCK_SIZE

    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def position(self) -> int | None:
        """Bytes of the input consumed so far (for progress), if known."""
        return None

    def adapt(self, action: str) -> bool:
        """Switch to the mode ``action`` asks for; False when that cannot help."""
        if action == "grow" and self.block_size < MAX_BLOCK_SIZE:
            self.block_size = min(MAX_BLOCK_SIZE, self.block_size * 8)
            return True
        if action == "full_scan" and not self.full_scan:
            self.full_scan = True
            return True
        return False


# ---------------------------------------------------------------------------- files


class TableSource(Source):
    def __init__(self, table: Any) -> None:
        self.table = table
        self.description = "records"

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.table.to_batches(max_chunksize=BATCH_ROWS)


class ReaderSource(Source):
    """Batches from a ``pyarrow.RecordBatchReader`` (or any Arrow C stream)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.description = "arrow stream"

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.reader


class RecordIterSource(Source):
    """Dicts from an iterator, converted ``RECORD_CHUNK`` at a time."""

    def __init__(self, records: Iterable[Any], column_types: Mapping[str, str] | None) -> None:
        self.records = iter(records)
        self.column_types = column_types
        self.description = "records"

    def batches(self) -> Iterator[pa.RecordBatch]:
        schema = None
        done = 0
        while True:
            chunk = [r for _, r in zip(range(RECORD_CHUNK), self.records, strict=False)]
            if not chunk:
                return
            t = records_to_table(chunk, column_types=self.column_types, first_index=done)
            if schema is None:
                schema = t.schema
            elif not t.schema.equals(schema):
                if unify_schemas(schema, t.schema, "records") != schema:
                    raise InvalidArgument(
                        f"records from {done} on do not fit the columns and types of the first "
                        f"{RECORD_CHUNK} ({t.schema} vs {schema}); pass a list to infer the "
                        "schema from all records"
                    )
                t = _conform(t, schema)
            done += len(chunk)
            yield from t.to_batches(max_chunksize=BATCH_ROWS)


def records_to_table(
    records: Sequence[Any],
    *,
    column_types: Mapping[str, str] | None = None,
    first_index: int = 0,
) -> pa.Table:
    """An Arrow table from dicts: columns in first-seen key order, types from all values."""
    pa = require_pyarrow()
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise InvalidArgument("records must be a list of dicts")
    keys: dict[str, None] = {}
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise InvalidArgument(f"record {first_index + i} is a {type(r).__name__}, not a dict")
        for k in r:
            if not isinstance(k, str):
                raise InvalidArgument(f"record {first_index + i} has a non-text key {k!r}")
            keys[k] = None
    types = {k: arrow_type(v) for k, v in (column_types or {}).items()}
    arrays = []
    for k in keys:
        values = [r.get(k) for r in records]
        arrays.append(_array(k, values, types.get(k)))
    return pa.table(dict(zip(keys, arrays, strict=True)))


def _array(name: str, values: Any, t: pa.DataType | None) -> pa.Array:
    pa = require_pyarrow()
    try:
        return pa.array(values, type=t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise InvalidArgument(f"column {name!r} holds values of incompatible types: {exc}") from exc


def columns_to_table(
    columns: Mapping[str, Any], *, column_types: Mapping[str, str] | None = None
) -> pa.Table:
    """An Arrow table from ``{name: list_or_array}``; the columns must have one length."""
    pa = require_pyarrow()
    types = {k: arrow_type(v) for k, v in (column_types or {}).items()}
    arrays = {}
    for k, v in columns.items():
        if not isinstance(k, str):
            raise InvalidArgument(f"column names must be text, got {k!r}")
        arrays[k] = v if isinstance(v, pa.Array | pa.ChunkedArray) else _array(k, v, types.get(k))
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidArgument(f"columns have different lengths: {sorted(lengths)}")
    return pa.table(arrays)


def unify_schemas(a: pa.Schema, b: pa.Schema, where: str) -> pa.Schema:
    pa = require_pyarrow()
    try:
        return pa.unify_schemas([a, b], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidArgument(
            f"{where}: a column holds values of incompatible types: {exc}"
        ) from exc


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    pa = require_pyarrow()
    cols = [
        t.column(f.name).cast(f.type) if f.name in t.column_names else pa.nulls(len(t), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def cast_columns(batch: pa.RecordBatch, types: Mapping[str, pa.DataType]) -> pa.RecordBatch:
    if not types:
        return batch
    pa = require_pyarrow()
    arrays = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        t = types.get(name)
        try:
            arrays.append(col.cast(t) if t is not None and col.type != t else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidArgument(f"cannot read column {name!r} as {t}: {exc}") from exc
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
