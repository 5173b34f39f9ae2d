"""The content digest of a dataset version, computed while the data streams past.

The digest covers the canonical schema and every value in row order, and does
not depend on how the rows were cut into batches: each column feeds separate
SHA-256 streams (validity bytes, fixed-width values, or string lengths plus
string bytes), and each stream is a plain concatenation in row order, so two
batches of 3 and 5 rows hash exactly like one batch of 8. Nested and unusual
types are hashed as one canonical JSON document per value.

Also here: fast 64-bit hashes of Arrow values (numpy, vectorised) used by the
profile's distinct-count sketch. They are not cryptographic and not part of
any digest.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from opsloop.datasets._arrow import jsonable, require_pyarrow, type_family, type_name

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

DIGEST_FORMAT = "opsloop-dataset-v1"
_FIXED = {"int", "float", "bool", "timestamp", "date", "time", "duration"}


def _int_storage(arr: pa.Array) -> pa.Array:
    """Fixed-width values as integers or float64, nulls filled with zero."""
    pa = require_pyarrow()
    t = arr.type
    fam = type_family(t)
    if fam == "float":
        return arr.fill_null(0.0)
    if fam == "bool":
        return arr.cast(pa.uint8()).fill_null(0)
    if fam == "int":
        return arr.fill_null(0)
    width = t.bit_width
    return arr.cast(pa.int64() if width == 64 else pa.int32()).fill_null(0)


def _buffers(arr: pa.Array) -> tuple[Any, bytes]:
    """(lengths as int64 numpy, the value bytes) of a string or binary array without nulls."""
    import numpy as np

    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = arr.buffers()[2]
    raw = b"" if data is None else memoryview(data)[int(offsets[0]) : int(offsets[-1])].tobytes()
    return np.diff(offsets).astype("<i8"), raw


class ContentHasher:
    """Feed canonical record batches in order; ``digest()`` gives ``sha256:<hex>``."""

    def __init__(self, schema: pa.Schema, *, extra: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.extra = extra or {}
        self.rows = 0
        self._streams: list[dict[str, Any]] = []
        for f in schema:
            fam = type_family(f.type)
            kind = "fixed" if fam in _FIXED else "bytes" if fam in ("string", "binary") else "json"
            streams = {"valid": hashlib.sha256()}
            if kind == "fixed":
                streams["values"] = hashlib.sha256()
            elif kind == "bytes":
                streams["lengths"] = hashlib.sha256()
                streams["data"] = hashlib.sha256()
            else:
                streams["json"] = hashlib.sha256()
            self._streams.append({"kind": kind, "h": streams})

    def update(self, batch: pa.RecordBatch) -> None:
        import numpy as np

        self.rows += batch.num_rows
        for col, st in zip(batch.columns, self._streams, strict=True):
            h = st["h"]
            if col.null_count:
                h["valid"].update(np.asarray(col.is_valid()).astype(np.uint8).tobytes())
            else:
                h["valid"].update(b"\x01" * len(col))
            if st["kind"] == "fixed":
                values = np.asarray(_int_storage(col))
                if values.dtype.kind == "f":
                    values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
                h["values"].update(values.astype(values.dtype.newbyteorder("<")).tobytes())
            elif st["kind"] == "bytes":
                filled = col.fill_null("" if type_family(col.type) == "string" else b"")
                lengths, raw = _buffers(filled)
                h["lengths"].update(lengths.tobytes())
                h["data"].update(raw)
            else:
                js = h["json"]
                for v in col.to_pylist():
                    doc = orjson.dumps(jsonable(v, truncate=None), option=orjson.OPT_SORT_KEYS)
                    js.update(len(doc).to_bytes(8, "little"))
                    js.update(doc)

    def digest(self) -> str:
        doc = {
            "format": DIGEST_FORMAT,
            "schema": [[f.name, type_name(f.type)] for f in self.schema],
            "rows": self.rows,
            "columns": [
                {name: h.hexdigest() for name, h in st["h"].items()} for st in self._streams
            ],
            "extra": self.extra,
        }
        return (
            "sha256:" + hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()
        )


# ----------------------------------------------------------------------------- fast hashes


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of uint64 values (vectorised; wraps modulo 2**64)."""
    import numpy as np

    z = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


_P = 0x100000001B3  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 2**64)
_SUB = 1 << 18  # string bytes hashed per step, bounding the temporary arrays


def _hash_bytes_chunk(lengths: np.ndarray, raw: bytes) -> np.ndarray:
    import numpy as np

    n = len(lengths)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    if not raw:
        return splitmix64(lengths.astype(np.uint64))
    d = np.frombuffer(raw, dtype=np.uint8).astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        pw = np.cumprod(np.full(len(d), _P, dtype=np.uint64))  # P^1 .. P^m
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(d * pw, dtype=np.uint64)))
        inv = np.concatenate(([np.uint64(1)], np.cumprod(np.full(len(d), _P_INV, dtype=np.uint64))))
        poly = (prefix[ends] - prefix[starts]) * inv[starts]
        out = splitmix64(poly ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    assert len(out) == n
    return out


def fast_hash(arr: pa.Array) -> np.ndarray:
    """64-bit hashes of the non-null values of ``arr`` (vectorised for numbers and strings)."""
    import numpy as np

    arr = arr.drop_null()
    fam = type_family(arr.type)
    if fam in _FIXED:
        values = np.asarray(_int_storage(arr))
        if values.dtype.kind == "f":
            values = np.where(np.isnan(values), np.nan, values)
            values = values + 0.0  # -0.0 and 0.0 count as one value
        return splitmix64(
            values.astype(np.float64 if values.dtype.kind == "f" else np.int64).view(np.uint64)
        )
    if fam in ("string", "binary"):
        lengths, raw = _buffers(arr)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        parts = []
        i, n = 0, len(lengths)
        while i < n:
            # Rows up to about _SUB bytes at a time (at least one row).
            j = max(i + 1, int(np.searchsorted(ends, starts[i] + _SUB, side="right")))
            parts.append(_hash_bytes_chunk(lengths[i:j], raw[int(starts[i]) : int(ends[j - 1])]))
            i = j
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    out = np.empty(len(arr), dtype=np.uint64)
    for i, v in enumerate(arr.to_pylist()):
        doc = orjson.dumps(jsonable(v, truncate=None), option=orjson.OPT_SORT_KEYS)
        out[i] = int.from_bytes(hashlib.blake2b(doc, digest_size=8).digest(), "little")
    return out
