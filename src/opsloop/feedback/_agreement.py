"""Agreement statistics: Krippendorff's alpha and Cohen's kappa, in plain Python.

``krippendorff_alpha(units, level)``: ``units`` maps an item to the values
its annotators gave (missing values simply absent); only items with two or
more values are pairable. The coincidence-matrix form (Krippendorff 2011,
"Computing Krippendorff's Alpha-Reliability"):

    alpha = 1 - (n - 1) * sum_ck o_ck d_ck / sum_ck n_c n_k d_ck

with ``d`` the nominal (0 if equal else 1) or interval ((c - k)^2) distance.
``cohen_kappa(a, b)``: two raters' labels of the same items, nominal.
Both return None where the statistic is undefined (no pairable item, or a
single value everywhere, so the expected disagreement is zero).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Literal

__all__ = ["cohen_kappa", "krippendorff_alpha"]

Level = Literal["nominal", "interval"]


def _distance(level: Level, c: Hashable, k: Hashable) -> float:
    if level == "nominal":
        return 0.0 if c == k else 1.0
    return (float(c) - float(k)) ** 2  # type: ignore[arg-type]


def krippendorff_alpha(
    units: Mapping[Hashable, Iterable[Hashable]] | Iterable[Iterable[Hashable]],
    level: Level = "nominal",
) -> float | None:
    """Krippendorff's alpha over ``units`` (each: the values one item received)."""
    if level not in ("nominal", "interval"):
        raise ValueError(f"level is nominal or interval, not {level!r}")
    groups = units.values() if isinstance(units, Mapping) else units
    coincidence: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for group in groups:
        values = [v for v in group if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                coincidence[(c, k)] += pairs / (m - 1)
    n_c: dict[Hashable, float] = defaultdict(float)
    for (c, _k), o in coincidence.items():
        n_c[c] += o
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(o * _distance(level, c, k) for (c, k), o in coincidence.items())
    expected = sum(n_c[c] * n_c[k] * _distance(level, c, k) for c in n_c for k in n_c)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items (``a[i]`` and ``b[i]`` rate item i)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[label] * cb[label] for label in ca) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)
