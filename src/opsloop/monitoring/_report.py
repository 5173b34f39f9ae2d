"""The drift report of a deployment's logged inputs against a dataset version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opsloop.core import Context
from opsloop.datasets import Datasets, DatasetVersion
from opsloop.monitoring._drift import dataset_drift

__all__ = ["drift_report"]


def drift_report(
    ctx: Context,
    predictions: Callable[..., list[dict[str, Any]]],
    deployment: str,
    *,
    reference: str | DatasetVersion,
    since: int | None = None,
    until: int | None = None,
    features: Sequence[str] | None = None,
    limit: int = 1_000_000,
) -> dict[str, Any]:
    """``dataset_drift`` of the logged rows in the window against ``reference``, with sizes
    and a summary of the predictions."""
    rows = predictions(deployment=deployment, since=since, until=until, limit=limit)
    ref_table = Datasets(ctx).to_arrow(reference)
    names = list(features) if features else list(ref_table.column_names)
    current: dict[str, list[Any]] = {n: [] for n in names}
    for r in rows:
        for n in names:
            if n in r["inputs"]:
                current[n].append(r["inputs"][n])
    current = {n: v for n, v in current.items() if v}
    ref = {n: ref_table.column(n).to_pylist() for n in names if n in ref_table.column_names}
    report = dataset_drift(ref, current)
    report["n_current"] = len(rows)
    report["n_reference"] = ref_table.num_rows
    report["prediction_summary"] = _value_counts(
        [r["output"] for r in rows if r["output"] is not None]
    )
    return report


def _value_counts(values: list[Any]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        vals = sorted(float(v) for v in values)
        return {"n": len(vals), "mean": sum(vals) / len(vals), "median": vals[len(vals) // 2]}
    counts: dict[str, int] = {}
    for v in values:
        counts[str(v)] = counts.get(str(v), 0) + 1
    return {"n": len(values), "counts": dict(sorted(counts.items(), key=lambda x: -x[1])[:20])}
