"""Metric points: packing into chunks, reading histories back, downsampling."""

from __future__ import annotations

import gc
import math
import sys
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

_LITTLE = sys.byteorder == "little"
CHUNK_POINTS = 100_000
P = TypeVar("P", bound="BaseModel")


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


# ---------------------------------------------------------------------------- points

_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
_POINT_FIELDS = ("key", "value", "step", "timestamp")


@cache
def _slot_setters(cls: type[BaseModel]) -> tuple[Any, Any, Any, Any] | None:
    """Setters of the four per-instance slots pydantic gives every model, or None if absent.

    ``BaseModel.model_construct`` fills exactly these (``__dict__``, the fields set,
    the extra and private dicts); calling their slot descriptors directly makes the
    same instance without its per-call Python overhead. They are looked up on the
    class's bases (pydantic's ``BaseModel`` declares them), so nothing is imported.
    """
    for base in cls.__mro__:
        slots = vars(base)
        if all(hasattr(slots.get(n), "__set__") for n in _SLOTS):
            s = [slots[n].__set__ for n in _SLOTS]
            return s[0], s[1], s[2], s[3]
    return None


def build_points(
    cls: type[P],
    key: str,
    steps: Sequence[int],
    timestamps: Sequence[int],
    values: Sequence[float | None],
) -> list[P]:
    """``cls(key=key, value=v, step=s, timestamp=t)`` for each point, ``None`` values as NaN.

    The columns were validated when the history was built, so each point is
    made the way ``model_construct`` makes one, minus its per-call overhead: no
    validation, one dict per point (a dict display, the fastest way to make
    one), and the instances and their four slots filled by C-level ``map``
    passes with no Python frame per point. The fields set and the ``None``
    extra/private values are shared by all points (the model is frozen, so
    nothing adds to the set; ``model_copy`` copies it). The cyclic garbage
    collector is paused while the points are made (it would otherwise walk the
    growing heap of new objects again and again; none of them can be part of a
    cycle). The first call per class checks the fast path against validated
    construction and falls back if they differ (a pydantic with other internals).
    """
    n = len(steps)
    if len(timestamps) != n or len(values) != n:
        raise ValueError(
            f"columns differ in length: {n} steps, {len(timestamps)} timestamps, "
            f"{len(values)} values"
        )
    setters = _slot_setters(cls)
    if setters is None or not _fast_path_ok(cls):
        return [
            cls(key=key, value=math.nan if v is None else v, step=s, timestamp=t)
            for s, t, v in zip(steps, timestamps, values, strict=True)
        ]
    set_dict, set_fields, set_extra, set_private = setters
    fields = set(_POINT_FIELDS)
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        out: list[P] = list(map(object.__new__, repeat(cls, n)))
        nan = math.nan
        dicts = [
            {"key": key, "value": nan if v is None else v, "step": s, "timestamp": t}
            for s, t, v in zip(steps, timestamps, values, strict=True)
        ]
        deque(map(set_dict, out, dicts), maxlen=0)
        deque(map(set_fields, out, repeat(fields, n)), maxlen=0)
        deque(map(set_extra, out, repeat(None, n)), maxlen=0)
        deque(map(set_private, out, repeat(None, n)), maxlen=0)
    finally:
        if paused:
            gc.enable()
    return out


# Points made per step by ``iter_points``. Each point is two objects the cyclic
# collector counts (the instance and its dict); 256 points stay under its
# default first threshold (700), so a loop that drops each point before the
# next step triggers no collection at all, where larger steps trigger one or
# more per step; smaller steps pay more per-step overhead.
ITER_CHUNK = 256
# The first step is smaller: it tells whether the reader keeps the points before
# enough are made to wake the collector (which a whole-list build then would again).
_FIRST_CHUNK = 32
_getrefcount = getattr(sys, "getrefcount", None)


def iter_points(
    cls: type[P],
    key: str,
    steps: Sequence[int],
    timestamps: Sequence[int],
    values: Sequence[float | None],
) -> Iterator[P]:
    """The points of ``build_points``, made as they are read.

    A reader that drops each point (a ``for`` loop) gets them ``ITER_CHUNK``
    at a time: only those few are alive at once and the collector is never
    woken. A reader that keeps them (``list(...)``, ``sorted(...)``) would
    make the collector walk the growing heap again and again, so once the
    first point of the last step is found still referenced (CPython's
    reference count; never elsewhere), the rest is made in one pass, as
    ``build_points`` makes a whole list.
    """
    n = len(steps)
    if len(timestamps) != n or len(values) != n:
        raise ValueError(
            f"columns differ in length: {n} steps, {len(timestamps)} timestamps, "
            f"{len(values)} values"
        )
    done = 0
    probe: list[Any] = [None]  # the first point of the last step

    def step() -> list[P]:
        nonlocal done
        start = done
        if start >= n:
            return []
        end = start + (ITER_CHUNK if start else _FIRST_CHUNK)
        # Referenced here and as getrefcount's argument only: the reader dropped it.
        if start and _getrefcount is not None and _getrefcount(probe[0]) > 2:
            end = n
        pts = build_points(cls, key, steps[start:end], timestamps[start:end], values[start:end])
        probe[0] = pts[0]
        done = min(end, n)
        if done >= n:
            probe[0] = None
        return pts

    return chain.from_iterable(iter(step, []))


def build_point(cls: type[P], key: str, step: int, timestamp: int, value: float | None) -> P:
    """One point the way ``build_points`` makes each (for indexing a column-backed sequence)."""
    setters = _slot_setters(cls)
    v = math.nan if value is None else value
    if setters is None or not _fast_path_ok(cls):
        return cls(key=key, value=v, step=step, timestamp=timestamp)
    p: P = object.__new__(cls)
    setters[0](p, {"key": key, "value": v, "step": step, "timestamp": timestamp})
    setters[1](p, set(_POINT_FIELDS))
    setters[2](p, None)
    setters[3](p, None)
    return p


@cache
def _fast_path_ok(cls: type[BaseModel]) -> bool:
    """Whether a point made by ``build_points``' fast path equals a validated one, in every way."""
    setters = _slot_setters(cls)
    assert setters is not None
    fast = object.__new__(cls)
    for setter, value in zip(
        setters,
        ({"key": "k", "value": 1.5, "step": 2, "timestamp": 3}, set(_POINT_FIELDS), None, None),
        strict=True,
    ):
        setter(fast, value)
    ref = cls(key="k", value=1.5, step=2, timestamp=3)
    try:
        return bool(
            cls.model_config.get("frozen")  # the points share one fields set: never mutated
            and fast == ref
            and repr(fast) == repr(ref)
            and hash(fast) == hash(ref)
            and fast.model_dump() == ref.model_dump()
            and fast.model_fields_set == ref.model_fields_set
            and fast.model_dump_json() == ref.model_dump_json()
        )
    except Exception:
        return False
