"""Metrics by name: the ``Metric`` type, the ``@metric`` decorator and the registry.

A metric is either *per-example* (``aggregate`` set: the function scores one
``(prediction, reference, **inputs)`` and the scores are aggregated) or
*whole-array* (``aggregate=None``: the function receives every prediction
at once, as corpus BLEU or ROC AUC need). Either way a ``Metric`` is called
the same: ``m(predictions, references, **inputs) -> float``, and
``m.compute(...)`` also returns per-example scores where there are any.
Later evaluation runs look metrics up by name with :func:`get_metric`.
"""

from __future__ import annotations

import inspect
import math
import re
import statistics
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from opsloop.errors import AlreadyExists, InvalidArgument, NotFound

KINDS = ("classification", "regression", "text", "judge", "retrieval", "ops", "custom")
Kind = Literal["classification", "regression", "text", "judge", "retrieval", "ops", "custom"]
Aggregate = Literal["mean", "median", "sum", "min", "max"] | Callable[[list[float]], float] | None

_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda xs: math.fsum(xs) / len(xs),
    "median": statistics.median,
    "sum": math.fsum,
    "min": min,
    "max": max,
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+\-@]{0,99}$")


@dataclass(frozen=True)
class MetricResult:
    """A metric's value, with the per-example scores it was aggregated from (if any)."""

    name: str
    value: float
    per_example: list[float] | None = None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        import numpy as np

        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    if not isinstance(value, int | float):
        raise InvalidArgument(f"{where} returned {type(value).__name__}, expected a number")
    return float(value)


def _is_sequence(value: Any) -> bool:
    if isinstance(value, str | bytes) or getattr(value, "ndim", 1) == 0:
        return False
    # lists and tuples, and arrays (numpy, pandas) that index by position
    return isinstance(value, Sequence) or (
        hasattr(value, "shape") and hasattr(value, "__getitem__")
    )


@dataclass(frozen=True)
class Metric:
    """A named metric with the metadata an evaluation run needs to use it by name.

    ``inputs`` names what the metric reads: ``predictions`` and
    ``references`` are the positional pair; any other name is a keyword
    input (one value per example for per-example metrics).
    """

    name: str
    fn: Callable[..., Any] = field(repr=False)
    greater_is_better: bool = True
    aggregate: Aggregate = "mean"
    kind: Kind = "custom"
    range: tuple[float | None, float | None] = (None, None)
    inputs: tuple[str, ...] = ("predictions", "references")
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def per_example(self) -> bool:
        """True when the function scores one example at a time."""
        return self.aggregate is not None

    def bind(self, **params: Any) -> Metric:
        """The same metric with keyword parameters fixed (``get_metric("ndcg@k").bind(k=5)``)."""
        return replace(self, params={**self.params, **params})

    def describe(self) -> dict[str, Any]:
        """JSON-ready metadata."""
        agg = (
            self.aggregate
            if isinstance(self.aggregate, str) or self.aggregate is None
            else "custom"
        )
        return {
            "name": self.name,
            "kind": self.kind,
            "greater_is_better": self.greater_is_better,
            "range": list(self.range),
            "aggregate": agg,
            "per_example": self.per_example,
            "inputs": list(self.inputs),
            "params": dict(self.params),
            "description": self.description,
        }

    def __call__(self, predictions: Any = None, references: Any = None, **inputs: Any) -> float:
        """The metric's value over all examples."""
        return self.compute(predictions, references, **inputs).value

    def compute(
        self, predictions: Any = None, references: Any = None, **inputs: Any
    ) -> MetricResult:
        """Value and per-example scores; inputs are checked before the function runs."""
        for key in self.inputs:
            if (key == "predictions" and predictions is None) or (
                key == "references" and references is None
            ):
                raise InvalidArgument(f"metric {self.name!r} needs {key}")
            if key not in ("predictions", "references") and key not in inputs:
                raise InvalidArgument(f"metric {self.name!r} needs the input {key!r}")
        if not self.per_example:
            value = _number(
                self.fn(predictions, references, **inputs, **self.params), f"metric {self.name!r}"
            )
            return MetricResult(self.name, value)
        scores = self._per_example(predictions, references, inputs)
        agg = self.aggregate
        reducer = _AGGREGATES[agg] if isinstance(agg, str) else agg
        assert reducer is not None  # per_example guarantees it
        return MetricResult(
            self.name, _number(reducer(scores), f"aggregate of {self.name!r}"), scores
        )

    def _per_example(
        self, predictions: Any, references: Any, inputs: dict[str, Any]
    ) -> list[float]:
        columns = {"predictions": predictions, "references": references, **inputs}
        lengths = {}
        for key, col in columns.items():
            if col is None and key in ("predictions", "references"):
                continue
            if not _is_sequence(col):
                raise InvalidArgument(
                    f"metric {self.name!r} scores each example: {key} must be a list with one "
                    "value per example (fix constant parameters with .bind(...))"
                )
            if hasattr(col, "shape"):  # arrays and Series: positional rows, not index labels
                columns[key] = col = list(col)
            lengths[key] = len(col)
        if not lengths:
            raise InvalidArgument(f"metric {self.name!r} got no examples")
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
            raise InvalidArgument(f"inputs must have the same length, got {shown}")
        n = next(iter(lengths.values()))
        if n == 0:
            raise InvalidArgument(f"metric {self.name!r} got no examples")
        preds, refs = columns["predictions"], columns["references"]
        extra = {k: v for k, v in columns.items() if k not in ("predictions", "references")}
        scores = []
        for i in range(n):
            pred = None if preds is None else preds[i]
            ref = None if refs is None else refs[i]
            row = {k: v[i] for k, v in extra.items()}
            scores.append(
                _number(
                    self.fn(pred, ref, **row, **self.params), f"metric {self.name!r} on example {i}"
                )
            )
        return scores


def _required_inputs(fn: Callable[..., Any]) -> tuple[str, ...]:
    """predictions and references unless their parameters have defaults, plus required keywords."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return ("predictions", "references")
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = [
        role
        for role, p in zip(("predictions", "references"), positional[:2], strict=False)
        if p.default is p.empty
    ]
    out += [
        p.name
        for p in params
        if p not in positional[:2]
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
    ]
    return tuple(out)


_LOCK = threading.RLock()
_REGISTRY: dict[str, Metric] = {}
_BUILTINS_LOADED = False
_BUILTIN_SOURCE: Callable[[], Sequence[Metric]] | None = None


def set_builtin_source(source: Callable[[], Sequence[Metric]]) -> None:
    """Where the built-in metrics come from (set once by the package; read on first use)."""
    global _BUILTIN_SOURCE
    _BUILTIN_SOURCE = source


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    with _LOCK:
        if not _BUILTINS_LOADED and _BUILTIN_SOURCE is not None:
            _BUILTINS_LOADED = True
            for m in _BUILTIN_SOURCE():
                _REGISTRY[m.name] = m


def register_metric(m: Metric, *, replace: bool = False) -> Metric:
    """Add ``m`` to the registry under ``m.name``; a taken name needs ``replace=True``."""
    if not isinstance(m, Metric):
        raise InvalidArgument("register_metric takes a Metric (see the @metric decorator)")
    _ensure_builtins()
    with _LOCK:
        if m.name in _REGISTRY and not replace:
            raise AlreadyExists(f"a metric named {m.name!r} is already registered")
        _REGISTRY[m.name] = m
    return m


def unregister_metric(name: str) -> None:
    """Remove a metric from the registry (a missing name raises ``NotFound``)."""
    _ensure_builtins()
    with _LOCK:
        if _REGISTRY.pop(name, None) is None:
            raise NotFound(f"no metric named {name!r}")


def get_metric(name: str) -> Metric:
    """The registered metric called ``name``.

    ``"ndcg@5"`` finds ``"ndcg@k"`` with ``k=5`` bound; likewise for every
    ``@k`` metric.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgument("metric name must be a non-empty string")
    _ensure_builtins()
    with _LOCK:
        found = _REGISTRY.get(name)
        if found is not None:
            return found
        at = re.fullmatch(r"(.+)@(\d+)", name)
        if at and f"{at[1]}@k" in _REGISTRY and int(at[2]) >= 1:
            return replace(_REGISTRY[f"{at[1]}@k"].bind(k=int(at[2])), name=name)
        known = ", ".join(sorted(_REGISTRY))
    raise NotFound(f"no metric named {name!r}; known metrics: {known}")


def list_metrics(kind: str | None = None) -> list[Metric]:
    """Every registered metric (of one ``kind`` if given), sorted by name."""
    if kind is not None and kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {list(KINDS)}, got {kind!r}")
    _ensure_builtins()
    with _LOCK:
        return sorted(
            (m for m in _REGISTRY.values() if kind is None or m.kind == kind), key=lambda m: m.name
        )


def _check_meta(name: str, aggregate: Any, kind: Any, range_: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"metric name {name!r} must start with a letter and hold letters, digits, _ . + - @"
        )
    if not (aggregate is None or callable(aggregate) or aggregate in _AGGREGATES):
        raise InvalidArgument(
            f"aggregate must be one of {sorted(_AGGREGATES)}, a callable or None, got {aggregate!r}"
        )
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if not (isinstance(range_, tuple) and len(range_) == 2):
        raise InvalidArgument("range must be a (low, high) tuple; use None for an open end")


def metric(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    greater_is_better: bool = True,
    aggregate: Aggregate = "mean",
    kind: Kind = "custom",
    range: tuple[float | None, float | None] = (None, None),
    inputs: Sequence[str] | None = None,
    description: str | None = None,
    register: bool = True,
    replace: bool = False,
) -> Any:
    """Turn a function into a :class:`Metric` (and register it, unless ``register=False``).

    With ``aggregate`` (default ``"mean"``) the function scores one example,
    ``fn(prediction, reference, **inputs) -> number``; with ``aggregate=None``
    it scores everything at once, ``fn(predictions, references, **inputs)``.
    ``inputs`` defaults to predictions and references (unless the function
    gives their parameters defaults) and its required keyword parameters. Usable bare (``@metric``) or with options.
    """

    def wrap(f: Callable[..., Any]) -> Metric:
        if not callable(f):
            raise InvalidArgument("@metric decorates a function")
        mname = str(name or getattr(f, "__name__", ""))
        _check_meta(mname, aggregate, kind, range)
        m = Metric(
            name=mname,
            fn=f,
            greater_is_better=bool(greater_is_better),
            aggregate=aggregate,
            kind=kind,
            range=range,
            inputs=tuple(inputs) if inputs is not None else _required_inputs(f),
            description=description if description is not None else inspect.getdoc(f) or "",
        )
        if register:
            register_metric(m, replace=replace)
        return m

    return wrap(fn) if fn is not None else wrap
