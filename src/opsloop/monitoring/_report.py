"""The drift report of a deployment's logged inputs against a dataset version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opsloop.core import Context
from opsloop.datasets import Datasets, DatasetVersion
from opsloop.monitoring._drift import dataset_drift

__all__ = ["drift_report", "feedback_series", "performance_series"]


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


def performance_series(rows: list[dict[str, Any]], bucket_s: int) -> list[dict[str, Any]]:
    """Per bucket of logged rows: estimated accuracy (mean top-class probability) and
    realised accuracy (over the rows whose labels have joined)."""
    buckets: dict[int, dict[str, Any]] = {}
    for r in rows:
        b = r["ts"] - r["ts"] % (bucket_s * 1000)
        acc = buckets.setdefault(b, {"t": b, "rows": 0, "conf": [], "hits": []})
        acc["rows"] += 1
        out = r["output"]
        predicted = out
        if isinstance(out, list) and out and all(isinstance(x, int | float) for x in out):
            acc["conf"].append(max(out))
            predicted = max(range(len(out)), key=out.__getitem__)
        if r["label"] is not None:
            acc["hits"].append(float(str(predicted) == str(r["label"])))
    return [
        {
            "t": b["t"],
            "rows": b["rows"],
            "labelled": len(b["hits"]),
            "estimated_accuracy": sum(b["conf"]) / len(b["conf"]) if b["conf"] else None,
            "realised_accuracy": sum(b["hits"]) / len(b["hits"]) if b["hits"] else None,
        }
        for b in sorted(buckets.values(), key=lambda x: x["t"])
    ]


def feedback_series(
    rows: list[dict[str, Any]], annotations: list[Any], bucket_s: int
) -> list[dict[str, Any]]:
    """Per bucket and model version of the logged requests: how many got feedback (rate) and
    the mean score (booleans as 1/0; numbers as they are)."""
    version_of: dict[str, tuple[int, str]] = {}
    requests: dict[tuple[int, str], set[str]] = {}
    for r in rows:
        key = (r["ts"] - r["ts"] % (bucket_s * 1000), r["version"])
        version_of[r["request_id"]] = key
        requests.setdefault(key, set()).add(r["request_id"])
    scored: dict[tuple[int, str], dict[str, float]] = {}
    for a in annotations:
        key_ = version_of.get(a.prediction_id or "")
        if key_ is None:
            continue
        acc = scored.setdefault(key_, {"n": 0.0, "sum": 0.0, "numeric": 0.0})
        acc["n"] += 1
        v = a.value
        if isinstance(v, bool | int | float):
            acc["sum"] += float(v)
            acc["numeric"] += 1
    out = []
    for key, ids in sorted(requests.items()):
        acc = scored.get(key, {"n": 0.0, "sum": 0.0, "numeric": 0.0})
        out.append(
            {
                "t": key[0],
                "version": key[1],
                "requests": len(ids),
                "feedback": int(acc["n"]),
                "feedback_rate": acc["n"] / len(ids),
                "mean_score": acc["sum"] / acc["numeric"] if acc["numeric"] else None,
            }
        )
    return out
