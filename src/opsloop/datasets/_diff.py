"""The difference between two versions: schema changes, and rows added, removed, changed.

Rows are compared over the columns both versions have (a column whose type
changed is compared by its text form). Each row is reduced to a 64-bit
BLAKE2b hash of its values; memory is 16 bytes per row and side, the data
itself streams (two passes: hashes, then the example rows).

- With a ``key`` column: rows are matched by key; a key only in the new
  version is an added row, only in the old a removed one, in both with other
  values a changed one (with the columns that changed). Keys must be unique.
- Without a key: the versions are compared as multisets of rows; a changed
  row shows as one removed and one added.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from opsloop.datasets._arrow import jsonable, require_pyarrow, type_family
from opsloop.datasets._storage import iter_parquet, take_rows
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_EXAMPLES = 100
_NAN = "\x00nan"


def _h(doc: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(doc, digest_size=8).digest(), "little")


def _values(col: pa.Array, as_text: bool) -> list[Any]:
    pa = require_pyarrow()
    if as_text:
        col = col.cast(pa.string())
    values: list[Any] = col.to_pylist()
    if type_family(col.type) == "float":
        values = [_NAN if v is not None and v != v else v for v in values]
    return values


def _hashes(
    path: Path, columns: list[str], as_text: set[str], key: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    import numpy as np

    row_h: list[np.ndarray] = []
    key_h: list[np.ndarray] = []
    read = list(columns) + ([key] if key is not None and key not in columns else [])
    for batch in iter_parquet(path, columns=read):
        cols = [_values(batch.column(c), c in as_text) for c in columns]
        out = np.empty(batch.num_rows, dtype=np.uint64)
        for i, row in enumerate(zip(*cols, strict=True)):
            out[i] = _h(orjson.dumps([jsonable(v, truncate=None) for v in row]))
        row_h.append(out)
        if key is not None:
            kv = _values(batch.column(key), False)
            key_h.append(
                np.array(
                    [_h(orjson.dumps(jsonable(v, truncate=None))) for v in kv], dtype=np.uint64
                )
            )
    rows = np.concatenate(row_h) if row_h else np.empty(0, dtype=np.uint64)
    keys = (np.concatenate(key_h) if key_h else np.empty(0, dtype=np.uint64)) if key else None
    return rows, keys


def schema_changes(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    ta = {c["name"]: c["type"] for c in a}
    tb = {c["name"]: c["type"] for c in b}
    return {
        "added": [n for n in tb if n not in ta],
        "removed": [n for n in ta if n not in tb],
        "retyped": [
            {"column": n, "from": ta[n], "to": tb[n]} for n in ta if n in tb and ta[n] != tb[n]
        ],
    }


def diff_files(
    path_a: Path,
    schema_a: list[dict[str, Any]],
    path_b: Path,
    schema_b: list[dict[str, Any]],
    *,
    key: str | None = None,
    max_examples: int = 10,
) -> dict[str, Any]:
    """Counts and examples of what changed from version A to version B."""
    import numpy as np

    if not 0 <= max_examples <= MAX_EXAMPLES:
        raise InvalidArgument(f"max_examples must be between 0 and {MAX_EXAMPLES}")
    schema = schema_changes(schema_a, schema_b)
    names_b = {c["name"] for c in schema_b}
    common = [c["name"] for c in schema_a if c["name"] in names_b]
    retyped = {r["column"] for r in schema["retyped"]}
    if key is not None and (key not in common or key in retyped):
        raise InvalidArgument(
            f"key column {key!r} must be in both versions with the same type",
            details={"key": key},
        )
    rows_a, keys_a = _hashes(path_a, common, retyped, key)
    rows_b, keys_b = _hashes(path_b, common, retyped, key)
    ex: dict[str, list[Any]] = {"added": [], "removed": [], "changed": []}
    if key is None:
        added_idx, removed_idx = _multiset_diff(rows_a, rows_b)
        changed = 0
        changed_pairs: list[tuple[int, int]] = []
    else:
        assert keys_a is not None and keys_b is not None
        _check_unique(keys_a, key, "the first version")
        _check_unique(keys_b, key, "the second version")
        common_k, ia, ib = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
        differs = rows_a[ia] != rows_b[ib]
        changed = int(differs.sum())
        order = np.argsort(ib[differs])  # examples in the new version's row order
        changed_pairs = list(
            zip(ia[differs][order].tolist(), ib[differs][order].tolist(), strict=True)
        )
        added_idx = np.setdiff1d(np.arange(len(keys_b)), ib)
        removed_idx = np.setdiff1d(np.arange(len(keys_a)), ia)
        del common_k
    n_added, n_removed = len(added_idx), len(removed_idx)
    if max_examples:
        cols_b = [c["name"] for c in schema_b]
        cols_a = [c["name"] for c in schema_a]
        want_b = added_idx[:max_examples].tolist() + [b for _, b in changed_pairs[:max_examples]]
        want_a = removed_idx[:max_examples].tolist() + [a for a, _ in changed_pairs[:max_examples]]
        got_b = take_rows(path_b, want_b, cols_b)
        got_a = take_rows(path_a, want_a, cols_a)
        ex["added"] = [{"row": i, "values": got_b[i]} for i in added_idx[:max_examples].tolist()]
        ex["removed"] = [
            {"row": i, "values": got_a[i]} for i in removed_idx[:max_examples].tolist()
        ]
        for ia_, ib_ in changed_pairs[:max_examples]:
            before, after = got_a[ia_], got_b[ib_]
            cols = [c for c in common if before.get(c) != after.get(c)]
            ex["changed"].append(
                {
                    "key": after.get(key) if key else None,
                    "row_before": ia_,
                    "row_after": ib_,
                    "columns": cols,
                    "before": before,
                    "after": after,
                }
            )
    unchanged = (len(rows_b) - n_added - changed) if key else len(rows_b) - n_added
    return {
        "key": key,
        "schema": schema,
        "compared_columns": common,
        "rows": {
            "before": len(rows_a),
            "after": len(rows_b),
            "added": n_added,
            "removed": n_removed,
            "changed": changed,
            "unchanged": unchanged,
        },
        "examples": ex,
    }


def _check_unique(keys: np.ndarray, key: str, where: str) -> None:
    import numpy as np

    if len(np.unique(keys)) != len(keys):
        raise InvalidArgument(
            f"key column {key!r} has repeated values in {where}: diff by key needs unique keys",
            details={"key": key},
        )


def _multiset_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices in B beyond A's count of the same row (added), and in A beyond B's (removed)."""
    import numpy as np

    def extra(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # Occurrence number of each row among equal rows in x; extra if above y's count.
        order = np.argsort(x, kind="stable")
        sx = x[order]
        first = np.searchsorted(sx, sx, side="left")
        occurrence = np.empty(len(x), dtype=np.int64)
        occurrence[order] = np.arange(len(x)) - first
        uy, cy = np.unique(y, return_counts=True)
        pos = np.searchsorted(uy, x)
        pos_c = np.minimum(pos, max(len(uy) - 1, 0))
        in_y = (len(uy) > 0) & (uy[pos_c] == x) if len(uy) else np.zeros(len(x), dtype=bool)
        count_y = np.where(in_y, cy[pos_c] if len(uy) else 0, 0)
        return np.flatnonzero(occurrence >= count_y)

    return extra(b, a), extra(a, b)
