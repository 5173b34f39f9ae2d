"""The tracking room's SQL tables, for rooms that read run lineage inside their own transactions
(the registry's cards and lineage, the promotion gate's metrics). Read-only by convention: rows are
written through ``TrackingService``."""

from opsloop.tracking._tables import (
    artifacts,
    experiment_tags,
    experiments,
    latest_metrics,
    metric_chunks,
    params,
    run_tags,
    runs,
)

__all__ = [
    "artifacts",
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "metric_chunks",
    "params",
    "run_tags",
    "runs",
]
