"""Tracking logic: experiments, runs, params, tags, metrics, search and compare.

Pure functions over a ``Database``: no HTTP, no CLI, no global state. Every
public method is one transaction, so a bad request never leaves half a write.
The service is assembled from one part per concern: ``_experiment_ops``,
``_run_ops``, ``_logging_ops`` and ``_search_ops`` (shared statements and
helpers in ``_sql``).
"""

from __future__ import annotations

from opsloop.store import Database
from opsloop.tracking._logging_ops import LoggingOps, check_batch_limits
from opsloop.tracking._search_ops import SearchOps
from opsloop.tracking._sql import (
    DEFAULT_EXPERIMENT,
    MAX_HISTORY_POINTS,
    MAX_SEARCH_RESULTS,
    MetricTuple,
    new_id,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MAX_HISTORY_POINTS",
    "MAX_SEARCH_RESULTS",
    "MetricTuple",
    "TrackingService",
    "check_batch_limits",
    "new_id",
]


class TrackingService(LoggingOps, SearchOps):
    """Experiments and runs stored in one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite search plan hint: experiment ids -> (when checked, hold most runs).
        self._most_runs: dict[tuple[str, ...], tuple[float, bool]] = {}
