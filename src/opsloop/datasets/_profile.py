"""A one-pass, bounded-memory profile of a dataset, and its sample rows.

Per column: non-null count and nulls; for numbers min, max, mean and standard
deviation (exact, merged batch by batch with Chan's formula), and the
quantiles p5/p25/p50/p75/p95; for texts their length statistics; for every
scalar column a distinct-count estimate and the top values with counts.

How the approximate parts are made (and when they are exact):

- Quantiles come from a uniform reservoir sample of ``RESERVOIR`` values per
  column (seeded, so a profile is reproducible). While a column holds at most
  ``RESERVOIR`` finite values they are exact (numpy's linear interpolation);
  beyond that the rank error is about ``1/sqrt(RESERVOIR)`` (~0.3%).
- Distinct counts use a K-minimum-values sketch of 64-bit hashes (K =
  ``KMV``): exact below K distinct values, otherwise about 2% relative error.
- Top values keep exact counts while a column has at most ``TOP_CAP``
  distinct values; past that the rarest are pruned (a heavy-hitters sketch:
  frequent values survive, their counts may undercount by the pruned mass),
  and a column whose values are all unique stops being tracked.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from opsloop.datasets._arrow import jsonable, rows_jsonable, type_family
from opsloop.datasets._digest import fast_hash

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

RESERVOIR = 100_000
KMV = 2048
TOP_CAP = 20_000
TOP_SHOWN = 10
HEAD_ROWS = 20
RANDOM_ROWS = 5
SEED = 0
QUANTILES = (("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95))


class _Moments:
    """Count, mean and M2 merged across batches (Chan et al.), plus min and max."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        if len(values) == 0:
            return
        v = values.astype(np.float64, copy=False)
        n_b = len(v)
        mean_b = float(v.mean())
        m2_b = float(((v - mean_b) ** 2).sum())
        lo, hi = float(v.min()), float(v.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    def result(self) -> dict[str, float | None]:
        if self.n == 0:
            return {"min": None, "max": None, "mean": None, "std": None}
        std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
        return {"min": self.min, "max": self.max, "mean": self.mean, "std": std}


class _Reservoir:
    """A uniform sample of at most ``k`` values from a stream (Algorithm R, vectorised)."""

    def __init__(self, k: int, seed: int) -> None:
        import numpy as np

        self.k = k
        self.seen = 0
        self.values = np.empty(k, dtype=np.float64)
        self.rng = np.random.default_rng(seed)

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        m = len(values)
        if m == 0:
            return
        fill = max(0, min(self.k - self.seen, m))
        if fill:
            self.values[self.seen : self.seen + fill] = values[:fill]
        rest = values[fill:]
        if len(rest):
            idx = np.arange(self.seen + fill, self.seen + m, dtype=np.float64)
            j = (self.rng.random(len(rest)) * (idx + 1)).astype(np.int64)
            keep = j < self.k
            self.values[j[keep]] = rest[keep]
        self.seen += m

    def sample(self) -> np.ndarray:
        return self.values[: min(self.seen, self.k)]


class _KMV:
    """K-minimum-values distinct-count sketch over 64-bit hashes."""

    def __init__(self, k: int = KMV) -> None:
        import numpy as np

        self.k = k
        self.mins = np.empty(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        import numpy as np

        if len(self.mins) == self.k:
            hashes = hashes[hashes < self.mins[-1]]  # most values fall out here, cheaply
        if len(hashes) == 0:
            return
        self.mins = np.unique(np.concatenate((self.mins, hashes)))[: self.k]

    def estimate(self) -> tuple[int, bool]:
        if len(self.mins) < self.k:
            return len(self.mins), True
        kth = float(self.mins[-1]) / 2.0**64
        return round((self.k - 1) / kth), False


class _Top:
    """Value counts, exact up to ``TOP_CAP`` distinct values, then pruned to heavy hitters.

    Counts are merged in Arrow (a group-by over the running counts and the batch's), so a
    column with thousands of distinct values costs no Python loop per value.
    """

    def __init__(self) -> None:
        self.table: pa.Table | None = None
        self.exact = True
        self.active = True

    def add(self, arr: pa.Array) -> None:
        if not self.active:
            return
        import pyarrow as pa
        import pyarrow.compute as pc

        vc = pc.value_counts(arr.drop_null())
        batch = pa.table({"v": vc.field("values"), "c": vc.field("counts")})
        if self.table is None:
            merged = batch
        else:
            merged = (
                pa.concat_tables([self.table, batch])
                .group_by("v", use_threads=False)
                .aggregate([("c", "sum")])
                .rename_columns(["v", "c"])
            )
        if merged.num_rows > TOP_CAP:
            merged = merged.sort_by([("c", "descending")])
            if merged.column("c")[min(TOP_SHOWN, merged.num_rows) - 1].as_py() <= 2:
                # No value repeats more than twice among this many: an id-like or free-text
                # column, where "top values" mean nothing; stop paying for them.
                self.active = False
                self.table = None
                return
            merged = merged.slice(0, TOP_CAP // 2)
            self.exact = False
        self.table = merged

    def result(self) -> list[dict[str, Any]] | None:
        if not self.active:
            return None
        if self.table is None:
            return []
        rows = self.table.to_pylist()
        ranked = sorted(rows, key=lambda r: (-r["c"], str(r["v"])))
        return [{"value": jsonable(r["v"]), "count": r["c"]} for r in ranked[:TOP_SHOWN]]


class _Column:
    def __init__(self, name: str, t: pa.DataType, index: int) -> None:
        self.name = name
        self.type = t
        self.family = type_family(t)
        self.count = 0
        self.nulls = 0
        self.non_finite = 0
        self.moments = _Moments() if self.family in ("int", "float") else None
        self.reservoir = _Reservoir(RESERVOIR, SEED + index) if self.moments else None
        self.lengths = _Moments() if self.family == "string" else None
        scalar = self.family not in ("nested", "other", "null")
        self.kmv = _KMV() if scalar else None
        self.top = _Top() if self.family in ("string", "bool", "int", "date") else None
        self.min: Any = None
        self.max: Any = None

    def add(self, arr: pa.Array) -> None:
        import numpy as np
        import pyarrow.compute as pc

        nulls = arr.null_count
        self.nulls += nulls
        self.count += len(arr) - nulls
        if len(arr) == nulls:
            return
        if self.moments is not None and self.reservoir is not None:
            raw = np.asarray(arr.drop_null())
            if self.family == "int":  # exact integer bounds (float64 rounds past 2**53)
                lo, hi = raw.min().item(), raw.max().item()
                self.min = lo if self.min is None else min(self.min, lo)
                self.max = hi if self.max is None else max(self.max, hi)
            v = raw.astype(np.float64, copy=False)
            finite = np.isfinite(v)
            if not finite.all():
                self.non_finite += int((~finite).sum())
                v = v[finite]
            self.moments.add(v)
            self.reservoir.add(v)
        elif self.family in ("timestamp", "date", "time", "duration", "decimal"):
            mm = pc.min_max(arr)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        if self.lengths is not None:
            self.lengths.add(np.asarray(pc.utf8_length(arr).drop_null()))
        if self.kmv is not None:
            # Arrow's hash table dedupes first: cheap for repetitive columns, harmless otherwise.
            values = arr.drop_null() if self.family == "float" else pc.unique(arr.drop_null())
            self.kmv.add(fast_hash(values))
        if self.top is not None:
            self.top.add(arr)

    def result(self) -> dict[str, Any]:
        import numpy as np

        total = self.count + self.nulls
        out: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": (self.nulls / total) if total else 0.0,
        }
        if self.moments is not None and self.reservoir is not None:
            out.update(self.moments.result())
            if self.family == "int":
                out["min"], out["max"] = self.min, self.max
            out["non_finite"] = self.non_finite
            sample = self.reservoir.sample()
            if len(sample):
                qs = np.quantile(sample, [q for _, q in QUANTILES])
                out["quantiles"] = {
                    name: float(x) for (name, _), x in zip(QUANTILES, qs, strict=True)
                }
            else:
                out["quantiles"] = None
            out["quantiles_exact"] = self.reservoir.seen <= self.reservoir.k
        elif self.family in ("timestamp", "date", "time", "duration", "decimal"):
            out["min"] = jsonable(self.min)
            out["max"] = jsonable(self.max)
        if self.lengths is not None:
            out["text_length"] = self.lengths.result()
        if self.kmv is not None:
            est, exact = self.kmv.estimate()
            out["distinct"] = est
            out["distinct_exact"] = exact
        if self.top is not None:
            out["top"] = self.top.result()
            out["top_exact"] = self.top.exact and self.top.active
        return out


class Profiler:
    """Feed canonical batches; ``result()`` is the profile, ``sample()`` the sample rows."""

    def __init__(self, schema: pa.Schema) -> None:
        import numpy as np

        self.schema = schema
        self.rows = 0
        self._cols = [_Column(f.name, f.type, i) for i, f in enumerate(schema)]
        self._head: list[dict[str, Any]] = []
        self._random: list[tuple[int, dict[str, Any]] | None] = [None] * RANDOM_ROWS
        self._rng = np.random.default_rng(SEED)

    def update(self, batch: pa.RecordBatch) -> None:
        for col, arr in zip(self._cols, batch.columns, strict=True):
            col.add(arr)
        self._sample(batch)
        self.rows += batch.num_rows

    def _sample(self, batch: pa.RecordBatch) -> None:
        import numpy as np

        n = batch.num_rows
        if len(self._head) < HEAD_ROWS:
            self._head.extend(rows_jsonable(batch.slice(0, HEAD_ROWS - len(self._head))))
        # Reservoir of row indices past the head, so the random rows add to it.
        start = self.rows
        idx = np.arange(start, start + n)
        eligible = idx >= HEAD_ROWS
        idx = idx[eligible]
        if not len(idx):
            return
        seen = idx - HEAD_ROWS  # position among eligible rows
        j = (self._rng.random(len(idx)) * (seen + 1)).astype(np.int64)
        j = np.where(seen < RANDOM_ROWS, seen, j)
        hit = j < RANDOM_ROWS
        for row_index, slot in zip(idx[hit].tolist(), j[hit].tolist(), strict=True):
            row = rows_jsonable(batch.slice(row_index - start, 1))[0]
            self._random[slot] = (row_index, row)

    def result(self) -> dict[str, Any]:
        return {"row_count": self.rows, "columns": [c.result() for c in self._cols]}

    def sample(self) -> dict[str, Any]:
        picked = sorted((r for r in self._random if r is not None), key=lambda r: r[0])
        return {
            "rows": self._head + [r for _, r in picked],
            "row_indices": list(range(len(self._head))) + [i for i, _ in picked],
        }
