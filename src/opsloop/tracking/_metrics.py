"""Metric points: packing into chunks, reading histories back, downsampling."""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_LITTLE = sys.byteorder == "little"
CHUNK_POINTS = 100_000


def pack_i64(values: Sequence[int]) -> bytes:
    a = array("q", values)
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


def pack_f64(values: Sequence[float]) -> bytes:
    a = array("d", values)
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


def unpack_i64(data: bytes) -> array[int]:
    a = array("q")
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


def unpack_f64(data: bytes) -> array[float]:
    a = array("d")
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a


@dataclass
class KeyBatch:
    """One key's points from one flush, in arrival order."""

    steps: list[int]
    timestamps: list[int]
    values: list[float]

    def latest_index(self) -> int:
        """Index of the latest point: highest step, then newest timestamp, then last logged."""
        best = 0
        bs, bt = self.steps[0], self.timestamps[0]
        for i in range(1, len(self.steps)):
            s, t = self.steps[i], self.timestamps[i]
            if s > bs or (s == bs and t >= bt):
                best, bs, bt = i, s, t
        return best

    def min_max(self) -> tuple[float | None, float | None]:
        finite = [v for v in self.values if not math.isnan(v)]
        if not finite:
            return None, None
        return min(finite), max(finite)


def clean_float(v: float) -> float | None:
    """NaN becomes None (JSON has no NaN); infinities are kept as floats."""
    return None if math.isnan(v) else v


def assemble(rows: Sequence[Any]) -> tuple[list[int], list[int], list[float]]:
    """Concatenate chunk rows (steps, timestamps, vals blobs), ordered by step then time."""
    s, t, v = assemble_np(rows)
    return s.tolist(), t.tolist(), v.tolist()


def assemble_np(rows: Sequence[Any]) -> tuple[Any, Any, Any]:
    """Like ``assemble`` but as numpy arrays (for downsampling large histories)."""
    import numpy as np

    if not rows:
        e = np.empty(0, dtype="<i8")
        return e, e.copy(), np.empty(0, dtype="<f8")
    s = np.concatenate([np.frombuffer(r.steps, dtype="<i8") for r in rows])
    t = np.concatenate([np.frombuffer(r.timestamps, dtype="<i8") for r in rows])
    v = np.concatenate([np.frombuffer(r.vals, dtype="<f8") for r in rows])
    if len(s) > 1 and not (np.all(s[1:] > s[:-1]) or _sorted_pairs(np, s, t)):
        order = np.lexsort((t, s))
        s, t, v = s[order], t[order], v[order]
    return s, t, v


def _sorted_pairs(np: Any, s: Any, t: Any) -> bool:
    ds = s[1:] - s[:-1]
    return bool(np.all((ds > 0) | ((ds == 0) & (t[1:] >= t[:-1]))))


def downsample(s: Any, t: Any, v: Any, max_points: int, x: str = "step") -> Any:
    """Indices that keep a chart's shape: per bucket of x, the first, last, min and max (M4).

    Returns a sorted numpy index array of at most ``max_points`` entries.
    """
    import numpy as np

    n = len(s)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 4)
    xs = (s if x == "step" else t).astype("f8")
    lo, hi = xs[0], xs[-1]
    if x != "step":
        lo, hi = xs.min(), xs.max()
    span = hi - lo
    if span <= 0:
        b = (np.arange(n) * buckets // n).astype("i8")
    else:
        b = np.minimum(((xs - lo) / span * buckets).astype("i8"), buckets - 1)
    # Steps arrive sorted; wall times need not, so group their buckets first.
    order = np.argsort(b, kind="stable") if x != "step" else np.arange(n)
    bo = b[order]
    starts = np.flatnonzero(np.r_[True, bo[1:] != bo[:-1]])
    ends = np.r_[starts[1:], n] - 1
    vv = np.where(np.isnan(v[order]), np.inf, v[order])
    vv_max = np.where(np.isnan(v[order]), -np.inf, v[order])
    mins = np.minimum.reduceat(vv, starts)
    maxs = np.maximum.reduceat(vv_max, starts)
    # positions of min and max inside each bucket
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    is_min = vv == mins[seg]
    is_max = vv_max == maxs[seg]
    first_min = np.full(len(starts), -1, dtype="i8")
    first_max = np.full(len(starts), -1, dtype="i8")
    idx = np.arange(n)
    # reversed assignment leaves the first occurrence
    first_min[seg[is_min][::-1]] = idx[is_min][::-1]
    first_max[seg[is_max][::-1]] = idx[is_max][::-1]
    keep = np.concatenate([starts, ends, first_min[first_min >= 0], first_max[first_max >= 0]])
    keep = np.unique(order[keep])
    return keep
