"""Tracking types that cross the SDK and the REST API."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from enum import StrEnum
from itertools import repeat
from operator import is_
from typing import Any, Literal, cast, overload

from pydantic import BaseModel, ConfigDict, Field

from opsloop.tracking._metrics import build_point, build_points, iter_points

__all__ = [
    "ArtifactInfo",
    "Experiment",
    "LatestMetric",
    "MetricHistory",
    "MetricPoint",
    "MetricPoints",
    "Run",
    "RunComparison",
    "RunPage",
    "RunStatus",
]


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Experiment(_Model):
    id: str
    name: str
    description: str = ""
    lifecycle_stage: str = "active"
    created_at: int
    updated_at: int
    tags: dict[str, str] = Field(default_factory=dict)
    run_count: int | None = None


class LatestMetric(_Model):
    """A metric key's latest value (highest step, then newest time) and its range."""

    value: float | None
    step: int
    timestamp: int
    min: float | None = None
    max: float | None = None
    count: int = 0


class Run(_Model):
    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    notes: str = ""
    user: str = ""
    lifecycle_stage: str = "active"
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, LatestMetric] = Field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


class MetricPoint(_Model):
    key: str
    value: float
    step: int = 0
    timestamp: int


class MetricPoints(Sequence[MetricPoint]):
    """One metric's points as columns, read as a sequence of ``MetricPoint``.

    ``MetricHistory.points()`` returns one. Making 100,000 pydantic objects
    takes longer than most uses need, so nothing is made up front:

    - ``steps``, ``timestamps`` and ``values`` are the columns as tuples
      (``values`` with NaN where the history has ``None``); a chart or numpy
      reads these and never makes a point;
    - ``pts[i]`` makes that point; ``pts[a:b]`` (any slice) is a
      ``MetricPoints`` of those rows;
    - iterating makes the points a few hundred at a time, so a loop that
      does not keep them holds only those few (and never wakes the cyclic
      garbage collector);
    - ``to_list()`` is every point in a new ``list[MetricPoint]`` (what
      ``points()`` returned before), made in one pass: to keep them all it
      is faster than ``list(pts)`` (up to about 20%; see
      ``benchmarks/metric_points.py``).

    The points are equal to validated ``MetricPoint(key=..., value=...,
    step=..., timestamp=...)`` objects but made anew on each access
    (``pts[0] == pts[0]``, not ``is``). It equals another ``MetricPoints``
    with the same key and columns (NaN equal to NaN at the same row), and a
    ``list`` or ``tuple`` of ``MetricPoint`` whose points are equal one by
    one (as two lists compare). It pickles as its columns. It cannot be
    changed, yet like the list it replaces it is unhashable.
    """

    __slots__ = ("_key", "_nan_values", "_steps", "_timestamps", "_values")

    def __init__(
        self,
        key: str,
        steps: Sequence[int],
        timestamps: Sequence[int],
        values: Sequence[float | None],
    ) -> None:
        steps, timestamps, values = tuple(steps), tuple(timestamps), tuple(values)
        if not (len(steps) == len(timestamps) == len(values)):
            raise ValueError(
                f"columns differ in length: {len(steps)} steps, {len(timestamps)} timestamps, "
                f"{len(values)} values"
            )
        self._key = key
        self._steps: tuple[int, ...] = steps
        self._timestamps: tuple[int, ...] = timestamps
        self._values: tuple[float | None, ...] = values
        self._nan_values: tuple[float, ...] | None = None

    # ------------------------------------------------------------------ columns

    @property
    def key(self) -> str:
        return self._key

    @property
    def steps(self) -> tuple[int, ...]:
        return self._steps

    @property
    def timestamps(self) -> tuple[int, ...]:
        return self._timestamps

    @property
    def values(self) -> tuple[float, ...]:
        """The values, NaN where the history has ``None`` (made once, on first use)."""
        got = self._nan_values
        if got is None:
            vals = self._values
            if any(map(is_, vals, repeat(None))):
                nan = math.nan
                got = tuple([nan if v is None else v for v in vals])
            else:
                got = cast("tuple[float, ...]", vals)  # no None in it
            self._nan_values = got
        return got

    # ------------------------------------------------------------------ sequence

    def __len__(self) -> int:
        return len(self._steps)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...

    @overload
    def __getitem__(self, index: slice) -> MetricPoints: ...

    def __getitem__(self, index: int | slice) -> MetricPoint | MetricPoints:
        if isinstance(index, slice):
            return MetricPoints(
                self._key, self._steps[index], self._timestamps[index], self._values[index]
            )
        try:
            s = self._steps[index]
        except IndexError:
            raise IndexError("MetricPoints index out of range") from None
        except TypeError:
            raise TypeError(
                f"MetricPoints indices must be integers or slices, not {type(index).__name__}"
            ) from None
        return build_point(MetricPoint, self._key, s, self._timestamps[index], self._values[index])

    def __iter__(self) -> Iterator[MetricPoint]:
        return iter_points(MetricPoint, self._key, self._steps, self._timestamps, self._values)

    def __reversed__(self) -> Iterator[MetricPoint]:
        return iter(self[::-1])

    def to_list(self) -> list[MetricPoint]:
        """Every point as a ``MetricPoint``, in a new list."""
        return build_points(MetricPoint, self._key, self._steps, self._timestamps, self._values)

    # ------------------------------------------------------------------ value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MetricPoints):
            if other is self:
                return True
            if (
                self._key != other._key
                or self._steps != other._steps
                or self._timestamps != other._timestamps
            ):
                return False
            if self._values == other._values:
                return True
            return all(map(_same_value, self.values, other.values))
        if isinstance(other, list | tuple):
            if len(other) != len(self):
                return False
            return all(map(_point_eq, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # unhashable, like the list it replaces

    def __repr__(self) -> str:
        n = len(self._steps)
        if n == 0:
            steps = "[]"
        elif n <= 4:
            steps = repr(list(self._steps))
        else:
            first = ", ".join(map(repr, self._steps[:3]))
            steps = f"[{first}, ..., {self._steps[-1]!r}]"
        return f"MetricPoints(key={self._key!r}, len={n}, steps={steps})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (MetricPoints, (self._key, self._steps, self._timestamps, self._values))

    def __copy__(self) -> MetricPoints:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> MetricPoints:
        return self


def _same_value(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _point_eq(a: MetricPoint, b: object) -> bool:
    return bool(a == b)


class MetricHistory(BaseModel):
    """A metric's points as three parallel columns, ordered by step then time.

    ``downsampled`` is true when the server reduced the points to fit
    ``max_points`` (keeping each bucket's first, last, min and max).
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float | None]
    total_points: int
    downsampled: bool = False

    def points(self) -> MetricPoints:
        """The points, in column order, as a read-only sequence of ``MetricPoint``.

        A snapshot of the columns (later changes to this history do not show):
        ``.steps``, ``.timestamps`` and ``.values`` (``None`` as NaN) read them
        without making a ``MetricPoint`` per point; indexing and iterating make
        the points on access (equal to validated ones, ``None`` values as NaN);
        ``to_list()`` gives them all as a ``list``. See ``MetricPoints``.
        """
        return MetricPoints(self.key, self.steps, self.timestamps, self.values)

    def __len__(self) -> int:
        return len(self.steps)


class ArtifactInfo(_Model):
    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None
    media_type: str | None = None


class RunPage(_Model):
    runs: list[Run]
    next_page_token: str | None = None
    total: int | None = None


class RunComparison(_Model):
    """Runs side by side: which params differ, and every run's latest metrics.

    ``goals`` gives each metric's direction, owned by the tracking service: set on
    the experiment (``Client.set_metric_goal``) or inferred from the name (loss,
    error, latency, ... minimize; else maximize; ``system/`` metrics none).
    ``best`` is the run with the best latest value for that goal (the first
    given, on a tie), None without a goal or a value.
    """

    runs: list[Run]
    param_keys: list[str]
    differing_params: list[str]
    metric_keys: list[str]
    metrics: dict[str, dict[str, float | None]]  # metric key -> run id -> latest value
    goals: dict[str, Literal["maximize", "minimize"] | None] = Field(default_factory=dict)
    best: dict[str, str | None] = Field(default_factory=dict)  # metric key -> run id
    extra: dict[str, Any] = Field(default_factory=dict)
