"""Cost and latency aggregates over requests.

Units are the caller's: pass latencies in seconds or milliseconds and costs
in any currency; the summaries keep them. Percentiles use linear
interpolation between closest ranks (numpy's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import as_float_array, same_length

PERCENTILES = (50, 90, 95, 99)


def _non_negative(values: Any, name: str) -> np.ndarray:
    arr = as_float_array(values, name)
    if np.any(arr < 0):
        raise InvalidArgument(f"{name} must not be negative")
    return arr


def percentile(values: Any, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``."""
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
        raise InvalidArgument(f"q must be a number in [0, 100], got {q!r}")
    return float(np.percentile(as_float_array(values, "values"), q))


def latency_stats(latencies: Any) -> dict[str, float]:
    """``count``, ``mean``, ``min``, ``max`` and ``p50``/``p90``/``p95``/``p99`` of request latencies."""
    arr = _non_negative(latencies, "latencies")
    stats = {
        "count": float(len(arr)),
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }
    for q, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES), strict=True):
        stats[f"p{q}"] = float(v)
    return stats


def cost_stats(costs: Any) -> dict[str, float]:
    """``total``, ``per_request`` and ``per_1k_requests`` of per-request costs."""
    arr = _non_negative(costs, "costs")
    mean = float(arr.mean())
    return {
        "count": float(len(arr)),
        "total": float(arr.sum()),
        "per_request": mean,
        "per_1k_requests": mean * 1000,
    }


def token_stats(prompt_tokens: Any, completion_tokens: Any = None) -> dict[str, float]:
    """Token totals and means per request (prompt, completion and both)."""
    p = _non_negative(prompt_tokens, "prompt_tokens")
    c = (
        np.zeros_like(p)
        if completion_tokens is None
        else _non_negative(completion_tokens, "completion_tokens")
    )
    same_length(("prompt_tokens", p), ("completion_tokens", c))
    return {
        "count": float(len(p)),
        "prompt_total": float(p.sum()),
        "completion_total": float(c.sum()),
        "total": float((p + c).sum()),
        "prompt_per_request": float(p.mean()),
        "completion_per_request": float(c.mean()),
        "per_request": float((p + c).mean()),
    }


def token_cost(
    prompt_tokens: Any,
    completion_tokens: Any,
    *,
    input_per_million: float,
    output_per_million: float,
) -> list[float]:
    """Cost of each request from token counts and prices per million tokens."""
    p = _non_negative(prompt_tokens, "prompt_tokens")
    c = _non_negative(completion_tokens, "completion_tokens")
    same_length(("prompt_tokens", p), ("completion_tokens", c))
    for name, price in (
        ("input_per_million", input_per_million),
        ("output_per_million", output_per_million),
    ):
        if isinstance(price, bool) or not isinstance(price, int | float) or not price >= 0:
            raise InvalidArgument(f"{name} must be a number >= 0, got {price!r}")
    return [float(v) for v in (p * input_per_million + c * output_per_million) / 1_000_000]
