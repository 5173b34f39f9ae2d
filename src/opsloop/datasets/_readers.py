"""Where rows come from: CSV, TSV, JSONL, JSON, Parquet files and records in code.

Every source yields Arrow record batches with one schema, streaming: files
are read block by block (Arrow's CSV, JSON and Parquet readers), never whole.
Arrow infers CSV and JSONL column types from the first block; when a later
block disagrees (a column of numbers that turns to text), the source raises
``RestartRead`` and the builder starts again in the robust mode, which
first scans the whole file for each column's type, then reads it with those
types (two streaming passes instead of one).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from opsloop.datasets._arrow import require_pyarrow
from opsloop.datasets._sources import (
    BATCH_ROWS,
    BLOCK_SIZE,
    RECORD_CHUNK,
    ReaderSource,
    RecordIterSource,
    RestartRead,
    Source,
    TableSource,
    arrow_type,
    cast_columns,
    columns_to_table,
    records_to_table,
    restart_for,
    unify_schemas,
)
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CsvSource", "JsonlSource", "ParquetSource", "Source", "open_file", "open_source"]

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        f = fmt.lower().lstrip(".")
        if f not in set(FORMATS.values()):
            raise InvalidArgument(
                f"unknown format {fmt!r}: use one of {sorted(set(FORMATS.values()))}"
            )
        return f
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise InvalidArgument(
            f"cannot tell the format of {path.name!r} (extension {ext or 'none'!r}): use a file "
            f"ending in {', '.join(sorted(FORMATS))} or pass format=",
            details={"path": str(path)},
        )
    return FORMATS[ext]


class _FileSource(Source):
    def __init__(self, path: Path, column_types: Mapping[str, str] | None) -> None:
        if not path.is_file():
            raise InvalidArgument(f"{path} is not a file", details={"path": str(path)})
        self.path = path
        self.description = str(path)
        self.total_bytes = path.stat().st_size
        self.column_types = {k: arrow_type(v) for k, v in (column_types or {}).items()}
        self._raw: Any = None

    def _open(self) -> Any:
        pa = require_pyarrow()
        self._raw = pa.OSFile(str(self.path), "rb")
        if self.path.suffix.lower() in _COMPRESSED:
            codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}[
                self.path.suffix.lower()
            ]
            return pa.CompressedInputStream(self._raw, codec)
        return self._raw

    def position(self) -> int | None:
        try:
            return int(self._raw.tell()) if self._raw is not None else None
        except Exception:
            return None

    def _fail(self, what: str, exc: Exception) -> InvalidArgument:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return InvalidArgument(f"{what} {self.path.name}: {msg}", details={"path": str(self.path)})


class CsvSource(_FileSource):
    def __init__(
        self,
        path: Path,
        *,
        delimiter: str = ",",
        column_types: Mapping[str, str] | None = None,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        super().__init__(path, column_types)
        self.delimiter = delimiter
        self.block_size = block_size
        self._inferred: dict[str, pa.DataType] | None = None

    def _reader(self, types: Mapping[str, pa.DataType]) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.open_csv(
            self._open(),
            read_options=pacsv.ReadOptions(block_size=self.block_size),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                strings_can_be_null=True, column_types=dict(types)
            ),
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        pa = require_pyarrow()
        types = dict(self.column_types)
        if self.full_scan:
            if self._inferred is None:
                self._inferred = self._infer_all()
            types = {**self._inferred, **self.column_types}
        try:
            reader = self._reader(types)
            yield from reader
        except pa.ArrowInvalid as exc:
            restart = restart_for(exc)
            if restart is None and "conversion error" in str(exc) and not self.full_scan:
                restart = RestartRead("full_scan", str(exc))
            if restart is not None:
                raise restart from exc
            raise self._fail("malformed CSV", exc) from exc
        finally:
            if self._raw is not None:
                self._raw.close()

    def _infer_all(self) -> dict[str, pa.DataType]:
        """Each column's type from every value: the first candidate all values cast to."""
        pa = require_pyarrow()
        try:
            names = self._reader({}).schema.names
        except pa.ArrowInvalid as exc:
            raise restart_for(exc) or self._fail("malformed CSV", exc) from exc
        finally:
            self._raw.close()
        candidates = [pa.int64(), pa.bool_(), pa.date32(), pa.timestamp("s"), pa.float64()]
        feasible = {n: list(candidates) for n in names}
        seen_value = dict.fromkeys(names, False)
        try:
            for batch in self._reader(dict.fromkeys(names, pa.string())):
                for name, col in zip(names, batch.columns, strict=True):
                    values = col.drop_null()
                    if not len(values):
                        continue
                    seen_value[name] = True
                    keep = []
                    for t in feasible[name]:
                        try:
                            values.cast(t)
                            keep.append(t)
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            pass
                    feasible[name] = keep
        except pa.ArrowInvalid as exc:
            raise restart_for(exc) or self._fail("malformed CSV", exc) from exc
        finally:
            self._raw.close()
        return {
            n: (feasible[n][0] if feasible[n] else pa.string()) if seen_value[n] else pa.null()
            for n in names
        }


class JsonlSource(_FileSource):
    def __init__(
        self,
        path: Path,
        *,
        column_types: Mapping[str, str] | None = None,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        super().__init__(path, column_types)
        self.block_size = block_size

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.full_scan:
            yield from self._python_batches()
            return
        pa = require_pyarrow()
        import pyarrow.json as pajson

        schema = pa.schema(list(self.column_types.items())) if self.column_types else None
        try:
            reader = pajson.open_json(
                self._open(),
                read_options=pajson.ReadOptions(block_size=self.block_size),
                parse_options=pajson.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="infer"
                ),
            )
            yield from reader
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            # Arrow's JSON errors count rows within a block; the Python pass names the line.
            raise (restart_for(exc) or RestartRead("full_scan", str(exc))) from exc
        finally:
            if self._raw is not None:
                self._raw.close()

    def _lines(self) -> Iterator[list[Any]]:
        """Parsed objects in chunks, each line checked (with its line number in errors)."""
        chunk: list[Any] = []
        stream = self._open()
        try:
            buf = b""
            lineno = 0
            while True:
                block = stream.read(self.block_size)
                if not block:
                    break
                buf += block
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    lineno += 1
                    obj = self._parse(line, lineno)
                    if obj is not None:
                        chunk.append(obj)
                if len(chunk) >= RECORD_CHUNK:
                    yield chunk
                    chunk = []
            if buf.strip():
                obj = self._parse(buf, lineno + 1)
                if obj is not None:
                    chunk.append(obj)
            if chunk:
                yield chunk
        finally:
            self._raw.close()

    def _parse(self, line: bytes, lineno: int) -> Any:
        if not line.strip():
            return None
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(
                f"malformed JSONL {self.path.name} line {lineno}: {exc}",
                details={"path": str(self.path), "line": lineno},
            ) from None
        if not isinstance(obj, dict):
            raise InvalidArgument(
                f"malformed JSONL {self.path.name} line {lineno}: expected an object, "
                f"got {type(obj).__name__}",
                details={"path": str(self.path), "line": lineno},
            )
        return obj

    def _python_batches(self) -> Iterator[pa.RecordBatch]:
        pa = require_pyarrow()
        schema: Any = None
        for chunk in self._lines():  # pass 1: one schema for the whole file
            t = records_to_table(chunk, column_types=self.column_types)
            schema = t.schema if schema is None else unify_schemas(schema, t.schema, str(self.path))
        if schema is None:
            return
        for chunk in self._lines():  # pass 2: read with that schema
            try:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise self._fail("cannot read JSONL", exc) from exc


class ParquetSource(_FileSource):
    def __init__(self, path: Path, *, column_types: Mapping[str, str] | None = None) -> None:
        super().__init__(path, column_types)
        self._rows_done = 0
        self._rows_total = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        pa = require_pyarrow()
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(str(self.path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise self._fail("not a readable Parquet file:", exc) from exc
        self._rows_total = pf.metadata.num_rows
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS):
                self._rows_done += batch.num_rows
                yield cast_columns(batch, self.column_types)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self._fail("cannot read Parquet file", exc) from exc
        finally:
            pf.close()

    def position(self) -> int | None:
        if not self._rows_total or self.total_bytes is None:
            return None
        return int(self.total_bytes * self._rows_done / self._rows_total)


def open_file(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    column_types: Mapping[str, str] | None = None,
    block_size: int = BLOCK_SIZE,
) -> Source:
    """The source for a CSV, TSV, JSONL, JSON (array or lines) or Parquet file."""
    p = Path(path)
    kind = detect_format(p, fmt)
    if not p.is_file():
        raise InvalidArgument(f"{p} is not a file", details={"path": str(p)})
    if kind in ("csv", "tsv"):
        return CsvSource(
            p,
            delimiter="\t" if kind == "tsv" else ",",
            column_types=column_types,
            block_size=block_size,
        )
    if kind == "parquet":
        return ParquetSource(p, column_types=column_types)
    if kind == "json" and _starts_with_array(p):
        try:
            records = orjson.loads(
                p.read_bytes()
            )  # a JSON array is read whole: use JSONL for big data
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"malformed JSON {p.name}: {exc}") from None
        src = TableSource(records_to_table(records, column_types=column_types))
        src.description = str(p)
        return src
    return JsonlSource(p, column_types=column_types, block_size=block_size)


def _starts_with_array(p: Path) -> bool:
    with open(p, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"[")


# ---------------------------------------------------------------------------- in code


def open_source(
    data: Any,
    *,
    fmt: str | None = None,
    column_types: Mapping[str, str] | None = None,
    block_size: int = BLOCK_SIZE,
) -> Source:
    """A ``Source`` for a file path, a list of dicts, a dict of columns, a pandas DataFrame,
    an Arrow table/batch/reader, or an iterator of dicts."""
    pa = require_pyarrow()
    if isinstance(data, str | os.PathLike):
        return open_file(data, fmt=fmt, column_types=column_types, block_size=block_size)
    if isinstance(data, Source):
        return data
    if isinstance(data, pa.Table):
        return TableSource(data)
    if isinstance(data, pa.RecordBatch):
        return TableSource(pa.Table.from_batches([data]))
    if isinstance(data, pa.RecordBatchReader):
        return ReaderSource(data)
    if type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "columns"):
        try:
            return TableSource(pa.Table.from_pandas(data, preserve_index=None))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"cannot convert the DataFrame: {exc}") from exc
    if hasattr(data, "__arrow_c_stream__"):
        return ReaderSource(pa.RecordBatchReader.from_stream(data))
    if isinstance(data, Mapping):
        return TableSource(columns_to_table(data, column_types=column_types))
    if isinstance(data, Sequence) and not isinstance(data, bytes):
        return TableSource(records_to_table(data, column_types=column_types))
    if isinstance(data, Iterable):
        return RecordIterSource(data, column_types)
    raise InvalidArgument(
        f"cannot make a dataset from a {type(data).__name__}: pass a file path, a list of "
        "dicts, a dict of columns, a DataFrame or an Arrow table"
    )
