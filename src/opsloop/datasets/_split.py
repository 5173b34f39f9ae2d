"""Deterministic splits: random or stratified, exact proportions, stable across machines.

Each row gets a 64-bit key from ``splitmix64(seed, row index)`` (pure integer
arithmetic, so the same seed splits the same way on every machine and numpy
version). Within each stratum (the whole data set when not stratified) rows
are ranked by key and the first ``round(f1 * n)`` go to the first split, the
next to the second, and so on; counts are rounded by largest remainder, so
they add up to the stratum size. Rows keep their original order within each
split. Memory: 17 bytes per row (key, rank, label), plus 4 per row for the
stratum code when stratified; the data itself streams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import require_pyarrow
from opsloop.datasets._digest import splitmix64
from opsloop.datasets._sources import Source
from opsloop.datasets._storage import iter_parquet
from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_SPLITS = 32


def check_fractions(fractions: Any) -> list[tuple[str, float]]:
    """``[(name, fraction)]`` from a mapping; fractions positive, adding up to 1."""
    if not isinstance(fractions, Mapping) or not fractions:
        raise InvalidArgument(
            "fractions must be a non-empty mapping like {'train': 0.8, 'test': 0.2}"
        )
    if len(fractions) > MAX_SPLITS:
        raise InvalidArgument(f"at most {MAX_SPLITS} splits")
    out = []
    for name, f in fractions.items():
        if (
            not isinstance(name, str)
            or not name
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise InvalidArgument(f"split name {name!r} must be letters, digits, '_' or '-'")
        if isinstance(f, bool) or not isinstance(f, int | float) or not (0 < f <= 1):
            raise InvalidArgument(f"fraction of split {name!r} must be in (0, 1], got {f!r}")
        out.append((name, float(f)))
    total = sum(f for _, f in out)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise InvalidArgument(f"split fractions must add up to 1, they add up to {total:g}")
    return out


def parse_fractions(text: str) -> dict[str, float]:
    """``"train=0.8,test=0.2"`` -> ``{"train": 0.8, "test": 0.2}``."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidArgument(
                f"cannot read split {part.strip()!r}: write name=fraction, e.g. train=0.8,test=0.2"
            ) from None
    return out


def allocate(n: int, fractions: list[float]) -> list[int]:
    """Counts adding up to ``n``, by largest remainder (ties to the earlier split)."""
    raw = [f * n for f in fractions]
    counts = [math.floor(r) for r in raw]
    left = n - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def _strata(path: Path, column: str, n: int) -> np.ndarray:
    import numpy as np

    codes = np.empty(n, dtype=np.int32)
    mapping: dict[Any, int] = {}
    pos = 0
    for batch in iter_parquet(path, columns=[column]):
        col = batch.column(0)
        values = col.to_pylist()
        for i, v in enumerate(values):
            key = ("nan",) if isinstance(v, float) and v != v else v
            if isinstance(key, list | dict):
                key = repr(key)
            code = mapping.get(key)
            if code is None:
                code = mapping[key] = len(mapping)
            codes[pos + i] = code
        pos += len(values)
    return codes


def split_labels(
    path: Path,
    n: int,
    fractions: list[tuple[str, float]],
    *,
    seed: int,
    stratify: str | None = None,
) -> np.ndarray:
    """The split index (0, 1, ...) of every row."""
    import numpy as np

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidArgument(f"seed must be a non-negative integer, got {seed!r}")
    seed_mix = splitmix64(np.array([seed], dtype=np.uint64))[0]
    keys = splitmix64(np.arange(n, dtype=np.uint64) ^ seed_mix)
    codes = _strata(path, stratify, n) if stratify is not None else np.zeros(n, dtype=np.int32)
    order = np.lexsort((keys, codes))  # by stratum, then key
    del keys
    labels = np.empty(n, dtype=np.uint8)
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [n]))
    fr = [f for _, f in fractions]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        pos = a
        for k, c in enumerate(allocate(b - a, fr)):
            labels[order[pos : pos + c]] = k
            pos += c
    return labels


class SplitSource(Source):
    """The rows of one split, streamed from the parent's Parquet file in their original order."""

    def __init__(self, path: Path, labels: np.ndarray, k: int, description: str) -> None:
        self.path = path
        self.labels = labels
        self.k = k
        self.description = description

    def batches(self) -> Iterator[pa.RecordBatch]:
        pa = require_pyarrow()
        start = 0
        for batch in iter_parquet(self.path):
            end = start + batch.num_rows
            mask = self.labels[start:end] == self.k
            start = end
            if mask.any():
                yield batch.filter(pa.array(mask))
