"""Ranking metrics over retrieved ids for one query: precision@k, recall@k, hit rate, MRR, nDCG.

``retrieved`` is the ranked list a retriever returned (best first; a repeated
id counts at its first position only). ``relevant`` is the collection of ids
that should have been found, or a mapping ``{id: gain}`` for graded
relevance (nDCG uses the gains; the other metrics count gain > 0 as relevant).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._validate import positive_int


def _ranked(retrieved: Any) -> list[Hashable]:
    if isinstance(retrieved, str | bytes) or not isinstance(retrieved, Sequence):
        raise InvalidArgument("retrieved must be a list of ids, best first")
    seen: set[Hashable] = set()
    out = []
    for i, item in enumerate(retrieved):
        if not isinstance(item, Hashable):
            raise InvalidArgument(f"retrieved[{i}] is not an id (unhashable {type(item).__name__})")
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _gains(relevant: Any) -> dict[Hashable, float]:
    if isinstance(relevant, str | bytes) or not isinstance(relevant, Collection):
        raise InvalidArgument("relevant must be a collection of ids or a mapping {id: gain}")
    if isinstance(relevant, Mapping):
        gains = {}
        for key, g in relevant.items():
            if (
                isinstance(g, bool)
                or not isinstance(g, int | float)
                or not math.isfinite(g)
                or g < 0
            ):
                raise InvalidArgument(f"gain of {key!r} must be a finite number >= 0, got {g!r}")
            gains[key] = float(g)
    else:
        gains = {key: 1.0 for key in relevant}
    if not any(g > 0 for g in gains.values()):
        raise InvalidArgument("relevant holds no relevant id; the metric is not defined")
    return gains


def precision_at_k(retrieved: Any, relevant: Any, k: int = 10) -> float:
    """Relevant ids among the first ``k`` retrieved, divided by ``k``."""
    k = positive_int(k, "k")
    gains = _gains(relevant)
    return sum(1 for item in _ranked(retrieved)[:k] if gains.get(item, 0) > 0) / k


def recall_at_k(retrieved: Any, relevant: Any, k: int = 10) -> float:
    """Share of the relevant ids found among the first ``k`` retrieved."""
    k = positive_int(k, "k")
    gains = _gains(relevant)
    wanted = {key for key, g in gains.items() if g > 0}
    return sum(1 for item in _ranked(retrieved)[:k] if item in wanted) / len(wanted)


def hit_rate_at_k(retrieved: Any, relevant: Any, k: int = 10) -> float:
    """1.0 when any relevant id is among the first ``k`` retrieved, else 0.0."""
    k = positive_int(k, "k")
    gains = _gains(relevant)
    return float(any(gains.get(item, 0) > 0 for item in _ranked(retrieved)[:k]))


def reciprocal_rank(retrieved: Any, relevant: Any, k: int | None = None) -> float:
    """``1 / rank`` of the first relevant id (within the first ``k`` if given), 0.0 if none."""
    gains = _gains(relevant)
    ranked = _ranked(retrieved)
    if k is not None:
        ranked = ranked[: positive_int(k, "k")]
    for rank, item in enumerate(ranked, start=1):
        if gains.get(item, 0) > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(retrieved: Any, relevant: Any, k: int = 10) -> float:
    """Normalised discounted cumulative gain: ``sum(gain_i / log2(i + 1))`` over ranks 1..k,
    divided by the same sum for the ideal order of every relevant id (linear gains, as
    ``sklearn.metrics.ndcg_score``)."""
    k = positive_int(k, "k")
    gains = _gains(relevant)
    dcg = sum(
        gains.get(item, 0.0) / math.log2(i + 2) for i, item in enumerate(_ranked(retrieved)[:k])
    )
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg


def _batch(retrieved_lists: Any, relevant_lists: Any) -> list[tuple[Any, Any]]:
    if isinstance(retrieved_lists, str) or not isinstance(retrieved_lists, Sequence):
        raise InvalidArgument("retrieved_lists must be a list with one ranked list per query")
    if isinstance(relevant_lists, str) or not isinstance(relevant_lists, Sequence):
        raise InvalidArgument("relevant_lists must be a list with one collection per query")
    if len(retrieved_lists) != len(relevant_lists):
        raise InvalidArgument(
            f"inputs must have the same length, got {len(retrieved_lists)} and {len(relevant_lists)}"
        )
    if not retrieved_lists:
        raise InvalidArgument("no queries given")
    return list(zip(retrieved_lists, relevant_lists, strict=True))


def mean_reciprocal_rank(retrieved_lists: Any, relevant_lists: Any, k: int | None = None) -> float:
    """MRR: :func:`reciprocal_rank` averaged over queries."""
    rows = _batch(retrieved_lists, relevant_lists)
    return sum(reciprocal_rank(r, g, k) for r, g in rows) / len(rows)
