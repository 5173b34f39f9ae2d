"""Pure ranking logic: constraint checks, the Pareto front, the recommendation, bootstrap CIs.

Unknown values are never optimistic: a candidate without a price (``cost``
``None``) fails a cost limit and counts as infinitely expensive on the front;
a candidate whose every request failed is never on the front nor recommended.
A remote endpoint's memory (``None``) counts as 0: it uses no local memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from opsloop.selection._types import Constraints, LeaderboardRow, Recommendation
from opsloop.tuning import non_dominated


def _failed(row: LeaderboardRow) -> bool:
    return row.examples > 0 and row.errors >= row.examples


def violations(row: LeaderboardRow, c: Constraints) -> list[str]:
    """Each constraint ``row`` breaks, as a sentence naming the value, the limit and the constraint."""
    out: list[str] = []
    if _failed(row) or row.quality is None:
        out.append(f"every request failed ({row.errors} of {row.examples})")
        return out
    if c.min_quality is not None and row.quality < c.min_quality:
        out.append(f"quality {row.quality:.4g} < {c.min_quality:g} (min_quality)")
    if c.max_p95_latency_ms is not None:
        p95 = row.p95_latency_ms
        if p95 is None or p95 > c.max_p95_latency_ms:
            shown = "unknown" if p95 is None else f"{p95:.0f} ms"
            out.append(f"p95 latency {shown} > {c.max_p95_latency_ms:g} ms (max_p95_latency_ms)")
    if c.max_cost_per_1k_usd is not None:
        cost = row.cost_per_1k_usd
        if cost is None:
            out.append(f"cost unknown: no price for model {row.model!r} (max_cost_per_1k_usd)")
        elif cost > c.max_cost_per_1k_usd:
            out.append(
                f"cost ${cost:.4g} per 1k requests > ${c.max_cost_per_1k_usd:g} (max_cost_per_1k_usd)"
            )
    if c.max_memory_mb is not None:
        mem = row.memory_mb or 0.0
        if mem > c.max_memory_mb:
            out.append(f"memory {mem:.0f} MB > {c.max_memory_mb:g} MB (max_memory_mb)")
    return out


def objective_value(row: LeaderboardRow, name: str, direction: str) -> float:
    """The row's value for an objective, unknowns made the worst possible value."""
    if name == "memory_mb" and row.memory_mb is None:
        return 0.0
    v = getattr(row, name)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return -math.inf if direction == "maximize" else math.inf
    return float(v)


def pareto_front(rows: Sequence[LeaderboardRow], objectives: dict[str, str]) -> list[str]:
    """Candidates no other candidate beats on every objective (ties all kept), in row order."""
    usable = [r for r in rows if not _failed(r) and r.quality is not None]
    names, dirs = list(objectives), list(objectives.values())
    points = [[objective_value(r, n, d) for n, d in zip(names, dirs, strict=True)] for r in usable]
    front = set(non_dominated(points, dirs)) if points else set()
    return [r.candidate for i, r in enumerate(usable) if i in front]


def rank_key(row: LeaderboardRow) -> tuple[float, float, float, str]:
    """Best quality first; ties: lower p95 latency, then lower cost, then the name."""
    q = row.quality if row.quality is not None else -math.inf
    p95 = row.p95_latency_ms if row.p95_latency_ms is not None else math.inf
    cost = row.cost_per_1k_usd if row.cost_per_1k_usd is not None else math.inf
    return (-q, p95, cost, row.candidate)


def rank(
    rows: Sequence[LeaderboardRow], objectives: dict[str, str], constraints: Constraints
) -> tuple[list[LeaderboardRow], Recommendation]:
    """Rows sorted by ``rank_key`` with ``pareto`` and ``violations`` filled, and the pick."""
    front = set(pareto_front(rows, objectives))
    ordered = sorted(rows, key=rank_key)
    for r in ordered:
        r.pareto = r.candidate in front
        r.violations = violations(r, constraints)
    return ordered, recommend(ordered, constraints)


def recommend(rows: Sequence[LeaderboardRow], constraints: Constraints) -> Recommendation:
    """The best-quality candidate meeting every constraint (ties: lower p95, then cost)."""
    rejected = {r.candidate: violations(r, constraints) for r in rows}
    rejected = {k: v for k, v in rejected.items() if v}
    eligible = sorted((r for r in rows if r.candidate not in rejected), key=rank_key)
    limits = constraints.to_dict()
    stated = ", ".join(f"{k}={v:g}" for k, v in limits.items()) or "no constraints"
    if not eligible:
        return Recommendation(
            None, f"no candidate meets the constraints ({stated})", rejected=rejected
        )
    best = eligible[0]
    assert best.quality is not None  # rows without quality are rejected above
    reason = (
        f"{best.candidate} has the best quality ({best.quality:.4g}) of the "
        f"{len(eligible)} candidate(s) meeting the constraints ({stated})"
    )
    tied = [r for r in eligible[1:] if r.quality == best.quality]
    if tied:
        reason += (
            f"; tied on quality with {', '.join(r.candidate for r in tied)}, "
            "it wins on lower p95 latency, then lower cost"
        )
    if best.p95_latency_ms is not None:
        reason += f"; p95 latency {best.p95_latency_ms:.0f} ms"
    if best.cost_per_1k_usd is not None:
        reason += f", ${best.cost_per_1k_usd:.4g} per 1k requests"
    return Recommendation(best.candidate, reason, rejected=rejected)


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (seeded, so the same data gives the same CI)."""
    if not values:
        return None
    import numpy as np

    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(resamples, len(arr)))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)
