"""Search spaces: ``Float``, ``Int`` and ``Categorical`` dimensions, in code or YAML.

In code::

    {"lr": Float(1e-4, 1e-1, log=True), "depth": Int(2, 12), "model": Categorical(["rf", "gb"])}

In YAML (``load_space``), each dimension is a mapping with a ``type``, or a
plain list (a categorical)::

    lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
    depth: {type: int, low: 2, high: 12}
    model: [rf, gb]

Every check raises ``InvalidArgument`` whose ``details["path"]`` names the
offending entry (``space.lr.low``). Nothing here imports Optuna: a space can
be built, checked and stored where Optuna is not installed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import optuna

Choice = None | bool | int | float | str


def _err(path: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"search space: {path}: {message}", details={"path": path})


def _number(path: str, value: Any, *, integer: bool = False) -> float:
    # YAML 1.1 reads ``1e-4`` (no dot) as a string; accept what clearly is a number.
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise _err(path, f"{value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(path, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise _err(path, f"must be finite, got {value!r}")
    if integer and not float(value).is_integer():
        raise _err(path, f"expected an integer, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; ``log`` samples on a log scale; ``step`` quantises."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def check(self, path: str = "space") -> Float:
        low = _number(f"{path}.low", self.low)
        high = _number(f"{path}.high", self.high)
        if low > high:
            raise _err(path, f"low ({low:g}) is greater than high ({high:g})")
        if not isinstance(self.log, bool):
            raise _err(f"{path}.log", f"expected true or false, got {self.log!r}")
        step = None if self.step is None else _number(f"{path}.step", self.step)
        if self.log and low <= 0:
            raise _err(path, f"a log-scale range needs low > 0, got {low:g}")
        if step is not None and (step <= 0 or self.log):
            raise _err(f"{path}.step", "step must be > 0 and cannot be combined with log")
        return Float(low, high, self.log, step)

    def describe(self) -> str:
        extra = " log" if self.log else (f" step {self.step:g}" if self.step else "")
        return f"float[{self.low:g}, {self.high:g}]{extra}"


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` (both included); ``log`` samples on a log scale."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def check(self, path: str = "space") -> Int:
        low = int(_number(f"{path}.low", self.low, integer=True))
        high = int(_number(f"{path}.high", self.high, integer=True))
        if low > high:
            raise _err(path, f"low ({low}) is greater than high ({high})")
        if not isinstance(self.log, bool):
            raise _err(f"{path}.log", f"expected true or false, got {self.log!r}")
        step = int(_number(f"{path}.step", self.step, integer=True))
        if step < 1:
            raise _err(f"{path}.step", f"step must be >= 1, got {step}")
        if self.log and (low < 1 or step != 1):
            raise _err(path, "a log-scale integer range needs low >= 1 and step 1")
        return Int(low, high, self.log, step)

    def describe(self) -> str:
        extra = " log" if self.log else (f" step {self.step}" if self.step != 1 else "")
        return f"int[{self.low}, {self.high}]{extra}"


@dataclass(frozen=True)
class Categorical:
    """One of a list of choices (strings, numbers, booleans or null), such as prompt versions."""

    choices: tuple[Choice, ...] = field(default_factory=tuple)

    def __init__(self, choices: Sequence[Choice]) -> None:
        object.__setattr__(self, "choices", tuple(choices) if _is_seq(choices) else choices)

    def check(self, path: str = "space") -> Categorical:
        if not isinstance(self.choices, tuple) or not self.choices:
            raise _err(f"{path}.choices", "expected a non-empty list of choices")
        for i, c in enumerate(self.choices):
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise _err(
                    f"{path}.choices[{i}]",
                    f"choices must be strings, numbers, booleans or null, got {type(c).__name__}",
                )
            if isinstance(c, float) and not math.isfinite(c):
                raise _err(f"{path}.choices[{i}]", f"must be finite, got {c!r}")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise _err(f"{path}.choices", "choices must not repeat")
        return self

    def describe(self) -> str:
        return "choice[" + ", ".join(map(str, self.choices)) + "]"


Dimension = Union[Float, Int, Categorical]  # noqa: UP007 - isinstance() needs the runtime object
SearchSpace = dict[str, Dimension]

_TYPES = {"float": Float, "int": Int, "categorical": Categorical, "choice": Categorical}


def _is_seq(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _dimension(path: str, spec: Any) -> Dimension:
    if isinstance(spec, (Float, Int, Categorical)):
        return spec.check(path)
    if _is_seq(spec):
        return Categorical(list(spec)).check(path)
    if not isinstance(spec, Mapping):
        raise _err(path, f"expected a dimension (a mapping with a 'type', or a list), got {spec!r}")
    kind = spec.get("type")
    if kind is None:
        raise _err(path, "missing 'type' (one of float, int, categorical)")
    cls = _TYPES.get(str(kind).lower())
    if cls is None:
        raise _err(f"{path}.type", f"unknown type {kind!r} (expected float, int or categorical)")
    rest = {k: v for k, v in spec.items() if k != "type"}
    if cls is Categorical:
        unknown = set(rest) - {"choices"}
        if unknown:
            raise _err(path, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if "choices" not in rest:
            raise _err(path, "a categorical needs 'choices'")
        choices = rest["choices"]
        if not _is_seq(choices):
            raise _err(f"{path}.choices", f"expected a list, got {choices!r}")
        return Categorical(list(choices)).check(path)
    unknown = set(rest) - {"low", "high", "log", "step"}
    if unknown:
        raise _err(path, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    for req in ("low", "high"):
        if req not in rest:
            raise _err(path, f"a {kind} range needs '{req}'")
    rng: Float | Int = (Float if cls is Float else Int)(**rest)
    return rng.check(path)


def check_space(space: Any, *, path: str = "space") -> SearchSpace:
    """A checked copy of ``space`` (dimension objects or their mapping/list form)."""
    if not isinstance(space, Mapping):
        raise _err(path, f"expected a mapping of parameter names to dimensions, got {space!r}")
    out: SearchSpace = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name or len(name) > 250:
            raise _err(path, f"parameter names must be non-empty strings, got {name!r}")
        out[name] = _dimension(f"{path}.{name}", spec)
    return out


def space_to_dict(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The JSON form of a space (what ``check_space`` reads back)."""
    out: dict[str, dict[str, Any]] = {}
    for name, d in space.items():
        if isinstance(d, Categorical):
            out[name] = {"type": "categorical", "choices": list(d.choices)}
        else:
            spec: dict[str, Any] = {
                "type": "float" if isinstance(d, Float) else "int",
                "low": d.low,
                "high": d.high,
            }
            if d.log:
                spec["log"] = True
            if isinstance(d, Float) and d.step is not None:
                spec["step"] = d.step
            if isinstance(d, Int) and d.step != 1:
                spec["step"] = d.step
            out[name] = spec
    return out


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Ask Optuna for one value per dimension; return them by name."""
    params: dict[str, Any] = {}
    for name, d in space.items():
        if isinstance(d, Float):
            params[name] = trial.suggest_float(name, d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, Int):
            params[name] = trial.suggest_int(name, d.low, d.high, log=d.log, step=d.step)
        else:
            params[name] = trial.suggest_categorical(name, d.choices)
    return params


def llm_space(
    *,
    prompt_versions: Sequence[str] | None = None,
    temperature: tuple[float, float] | None = (0.0, 1.2),
    top_k: tuple[int, int] | None = (1, 10),
    chunk_size: Sequence[int] | None = (256, 512, 1024),
    **extra: Dimension,
) -> SearchSpace:
    """A search space over the usual LLM-application settings.

    ``prompt_versions`` (for example ``["qa@1", "qa@2"]``) becomes a
    categorical ``prompt_version``; ``temperature`` a float range;
    ``top_k`` (retrieval depth) an int range; ``chunk_size`` a categorical.
    Pass ``None`` to leave a setting out; ``extra`` adds dimensions.
    """
    space: dict[str, Any] = {}
    if prompt_versions:
        space["prompt_version"] = Categorical(list(prompt_versions))
    if temperature is not None:
        space["temperature"] = Float(*temperature)
    if top_k is not None:
        space["top_k"] = Int(*top_k)
    if chunk_size:
        space["chunk_size"] = Categorical(list(chunk_size))
    space.update(extra)
    return check_space(space)
