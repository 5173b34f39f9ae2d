"""Input checks shared by every metric: one clear ``InvalidArgument`` per mistake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def as_array(values: Any, name: str, *, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    """``values`` as a non-empty numpy array of one of the allowed dimensions."""
    import numpy as np

    if values is None:
        raise InvalidArgument(f"{name} is required")
    if isinstance(values, str | bytes):
        raise InvalidArgument(f"{name} must be a sequence of values, not a single string")
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InvalidArgument(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object:
        # a list mixing strings and numbers, or ragged rows: both are mistakes here
        raise InvalidArgument(f"{name} mixes types or has rows of different lengths")
    if arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise InvalidArgument(f"{name} must be {want}, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InvalidArgument(f"{name} is empty")
    return arr


def as_float_array(values: Any, name: str, *, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    """``values`` as a finite float64 array (rejects strings, NaN and infinities)."""
    import numpy as np

    arr = as_array(values, name, ndim=ndim)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgument(f"{name} must hold numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise InvalidArgument(f"{name} holds NaN or infinite values")
    return out


def as_labels(values: Any, name: str) -> np.ndarray:
    """Class labels: a 1-D array of integers, booleans or strings (not fractional floats)."""
    import numpy as np

    if isinstance(values, list | tuple) and len({isinstance(v, str) for v in values}) > 1:
        # numpy would quietly turn [1, "a"] into strings
        raise InvalidArgument(f"{name} mixes strings and numbers")
    arr = as_array(values, name)
    kind = arr.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InvalidArgument(
                f"{name} holds continuous values; classification metrics need class labels"
            )
    elif kind not in "biuUS":
        raise InvalidArgument(f"{name} must hold class labels, got dtype {arr.dtype}")
    return arr


def same_length(*pairs: tuple[str, Any]) -> int:
    """The common first-axis length of every named value; raises when they differ."""
    lengths = {name: len(value) for name, value in pairs if value is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise InvalidArgument(f"inputs must have the same length, got {shown}")
    return next(iter(lengths.values()))


def compatible_labels(*arrays: np.ndarray) -> None:
    """Labels compared with each other must all be strings or all be numbers."""
    kinds = {"str" if a.dtype.kind in "US" else "num" for a in arrays}
    if len(kinds) > 1:
        raise InvalidArgument("labels mix strings and numbers; use one type for every label")


def sample_weights(weight: Any, n: int) -> npt.NDArray[np.float64] | None:
    """Validated non-negative sample weights of length ``n`` (``None`` stays ``None``)."""
    import numpy as np

    if weight is None:
        return None
    w = as_float_array(weight, "sample_weight")
    if len(w) != n:
        raise InvalidArgument(f"sample_weight has {len(w)} values for {n} samples")
    if np.any(w < 0):
        raise InvalidArgument("sample_weight must not be negative")
    if not np.any(w > 0):
        raise InvalidArgument("sample_weight sums to zero")
    return w


def probabilities(arr: np.ndarray, name: str) -> None:
    """Every value of ``arr`` lies in [0, 1]."""
    if arr.min() < 0 or arr.max() > 1:
        raise InvalidArgument(
            f"{name} must lie in [0, 1], got values in [{arr.min()}, {arr.max()}]"
        )


def texts(values: Any, name: str) -> list[str]:
    """A non-empty list of strings."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidArgument(f"{name} must be a list of strings")
    out = list(values)
    if not out:
        raise InvalidArgument(f"{name} is empty")
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise InvalidArgument(f"{name}[{i}] must be a string, got {type(v).__name__}")
    return out


def reference_lists(values: Any, name: str) -> list[list[str]]:
    """References per example: each a string or a non-empty list of strings."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidArgument(f"{name} must be a list (one reference or list of references each)")
    out: list[list[str]] = []
    for i, v in enumerate(values):
        refs = [v] if isinstance(v, str) else v
        if isinstance(refs, str) or not isinstance(refs, Sequence) or not refs:
            raise InvalidArgument(f"{name}[{i}] must be a string or a non-empty list of strings")
        for r in refs:
            if not isinstance(r, str):
                raise InvalidArgument(f"{name}[{i}] holds a {type(r).__name__}, not a string")
        out.append(list(refs))
    if not out:
        raise InvalidArgument(f"{name} is empty")
    return out


def choice(value: Any, name: str, options: Sequence[Any]) -> None:
    """``value`` is one of ``options``."""
    if value not in options:
        raise InvalidArgument(f"{name} must be one of {list(options)}, got {value!r}")


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name} must be an integer >= 1, got {value!r}")
    return value
