"""``Trial``: what an objective function receives, one per trial, tied to its child run."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument
from opsloop.tracking import check_key, int64, metric_value
from opsloop.tuning.entities import INTERMEDIATE

if TYPE_CHECKING:
    import optuna

    from opsloop.tracking import Tracking


class TrialPruned(Exception):
    """Raise inside an objective to stop a trial early; it is recorded as PRUNED.

    ``trial.report(value, step, prune=True)`` raises it when the pruner says so.
    Optuna's own ``optuna.TrialPruned`` is accepted too.
    """


class Timer:
    """The result of ``trial.timer(key)``: ``seconds`` is set when the block ends."""

    def __init__(self) -> None:
        self.seconds: float | None = None


class Trial:
    """One trial: its sampled ``params``, its child run, and the calls that record it.

    ``report`` logs an intermediate value on the run (metric
    ``intermediate/<first objective>``) and hands it to the pruner;
    ``log_metric`` and ``timer`` record metrics the objective may also use
    as objective values (a timed ``train_seconds`` can be minimised).
    """

    def __init__(
        self,
        optuna_trial: optuna.Trial,
        *,
        client: Tracking,
        run_id: str,
        study_name: str,
        objectives: Sequence[str],
        params: dict[str, Any],
        multi_objective: bool,
    ) -> None:
        self._ot = optuna_trial
        self._client = client
        self.run_id = run_id
        self.study_name = study_name
        self.objectives = list(objectives)
        self.params: dict[str, Any] = dict(params)
        self._multi = multi_objective
        self._report_key = INTERMEDIATE + self.objectives[0]
        self.metrics: dict[str, float] = {}  # latest value of every metric logged through the trial
        self.extra_params: dict[str, Any] = {}  # suggested inside the objective (define-by-run)
        self.last_step: int | None = None
        self._next: dict[str, int] = {}  # next free step per metric key
        # Points wait here and go out with the trial's final write (one transaction
        # for a short trial); a long trial hands them to the client's background
        # buffer every flush interval, so they show up while it runs.
        self._points: list[tuple[str, float, int, int]] = []
        self._keys: set[str] = set()
        self._handoff_s = float(client.settings.flush_interval_s)
        self._handoff_at = time.monotonic() + self._handoff_s

    @property
    def number(self) -> int:
        return int(self._ot.number)

    @property
    def optuna_trial(self) -> optuna.Trial:
        """The underlying ``optuna.Trial`` (for anything this wrapper does not cover)."""
        return self._ot

    # ------------------------------------------------------------------ pruning

    def report(self, value: float, step: int, *, prune: bool = False) -> None:
        """Record an intermediate value at ``step`` (an epoch, a boosting round).

        It is logged on the trial's run and given to the pruner. With
        ``prune=True`` this raises ``TrialPruned`` when the pruner says stop.
        Multi-objective studies log the value but cannot prune (Optuna's rule).
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidArgument(f"report step must be a non-negative integer, got {step!r}")
        v = self._add(self._report_key, value, step)
        self.last_step = step
        if not self._multi:
            self._ot.report(v, step)
            if prune and self._ot.should_prune():
                raise TrialPruned(f"pruned at step {step} (value {v:.6g})")

    def should_prune(self) -> bool:
        """Whether the pruner would stop this trial now (always False for several objectives)."""
        return False if self._multi else bool(self._ot.should_prune())

    # ------------------------------------------------------------------ logging

    def _add(self, key: str, value: Any, step: int) -> float:
        if key not in self._keys:
            check_key("metric", key)
            self._keys.add(key)
        v = value if type(value) is float else metric_value(key, value)
        self._points.append((key, v, int64("metric step", step), int(time.time() * 1000)))
        if time.monotonic() >= self._handoff_at:
            self.hand_off()
        return v

    def hand_off(self) -> None:
        """Give the waiting points to the client's background buffer."""
        pts, self._points = self._points, []
        self._handoff_at = time.monotonic() + self._handoff_s
        for key, v, step, ts in pts:
            self._client.log_metric(self.run_id, key, v, step=step, timestamp=ts)

    def take_points(self) -> list[tuple[str, float, int, int]]:
        """The points not handed off yet (the final write of the trial stores them)."""
        pts, self._points = self._points, []
        return pts

    def _step(self, key: str, step: int | None) -> int:
        if step is None:
            step = self._next.get(key, 0)
        elif isinstance(step, bool) or not isinstance(step, int):
            raise InvalidArgument(f"metric step must be an integer, got {step!r}")
        self._next[key] = max(self._next.get(key, 0), step + 1)
        return step

    def next_step(self, key: str) -> int:
        """The step after the last one logged for ``key`` through this trial (0 if none)."""
        return self._next.get(key, 0)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Log a metric on the trial's run (buffered; written with the trial's end, or sooner).

        Without ``step``, steps count up from 0 per key.
        """
        self.metrics[key] = self._add(key, value, self._step(key, step))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def set_tag(self, key: str, value: Any) -> None:
        self._client.set_tag(self.run_id, key, value)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value with the trial in Optuna's storage."""
        self._ot.set_user_attr(key, value)

    @contextlib.contextmanager
    def timer(self, key: str = "train_seconds") -> Iterator[Timer]:
        """Time the block (wall clock) and log its seconds as metric ``key``.

        The time is logged even when the block raises; an objective named
        ``key`` takes this value unless the objective returns its own.
        """
        t = Timer()
        start = time.perf_counter()
        try:
            yield t
        finally:
            t.seconds = time.perf_counter() - start
            self.log_metric(key, t.seconds)

    def measure_latency(
        self,
        fn: Callable[..., Any],
        *args: Any,
        key: str = "latency_ms",
        repeats: int = 5,
        warmup: int = 1,
        **kwargs: Any,
    ) -> float:
        """Call ``fn(*args, **kwargs)`` ``warmup + repeats`` times; log and return the median ms.

        The median of the timed calls, so one slow call (a page fault, a
        garbage collection) does not decide a latency objective.
        """
        if repeats < 1 or warmup < 0:
            raise InvalidArgument("repeats must be >= 1 and warmup >= 0")
        for _ in range(warmup):
            fn(*args, **kwargs)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(*args, **kwargs)
            times.append((time.perf_counter() - t0) * 1000.0)
        ms = float(statistics.median(times))
        self.log_metric(key, ms)
        return ms

    # ------------------------------------------------------------------ define-by-run

    def suggest_float(
        self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None
    ) -> float:
        """Sample a parameter the space does not hold (it is logged on the run at the end)."""
        v = float(self._ot.suggest_float(name, low, high, log=log, step=step))
        self.extra_params[name] = self.params[name] = v
        return v

    def suggest_int(
        self, name: str, low: int, high: int, *, log: bool = False, step: int = 1
    ) -> int:
        v = int(self._ot.suggest_int(name, low, high, log=log, step=step))
        self.extra_params[name] = self.params[name] = v
        return v

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        v = self._ot.suggest_categorical(name, list(choices))
        self.extra_params[name] = self.params[name] = v
        return v

    # ------------------------------------------------------------------ results

    def resolve_values(self, out: Any) -> list[float]:
        """The objective values from what the objective returned.

        A number (one objective), a sequence (one per objective, in order), or
        a mapping by objective name; a name the mapping lacks is taken from a
        metric the trial logged (``timer``, ``measure_latency``, ``log_metric``).
        NaN is allowed (the trial is then recorded as FAIL, as Optuna does).
        """
        n = len(self.objectives)
        if isinstance(out, Mapping) or out is None:
            source = {**self.metrics, **dict(out or {})}
            missing = [o for o in self.objectives if o not in source]
            if missing:
                raise InvalidArgument(
                    f"the objective returned no value for {', '.join(missing)} and the trial "
                    "logged no metric of that name",
                    details={"missing": missing},
                )
            raw: list[Any] = [source[o] for o in self.objectives]
        elif isinstance(out, Sequence) and not isinstance(out, (str, bytes)):
            raw = list(out)
        else:
            raw = [out]
        if len(raw) != n:
            raise InvalidArgument(
                f"the objective returned {len(raw)} value(s), the study has {n} objective(s) "
                f"({', '.join(self.objectives)})"
            )
        values = []
        for o, v in zip(self.objectives, raw, strict=True):
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"objective {o!r}: expected a number, got {type(v).__name__} {v!r}"
                ) from None
            values.append(f)
        return values

    @staticmethod
    def finite(values: Sequence[float]) -> bool:
        return all(math.isfinite(v) for v in values)

    def __repr__(self) -> str:
        return f"Trial(study={self.study_name!r}, number={self.number}, params={self.params!r})"
