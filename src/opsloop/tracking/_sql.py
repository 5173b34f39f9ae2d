"""Shared pieces of the tracking service: ids, limits, upserts and prebuilt hot-path statements."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from opsloop.tracking._tables import (
    experiments,
    latest_metrics,
    metric_chunks,
    run_tags,
    runs,
)
from opsloop.tracking._tables import (
    params as param_table,
)

DEFAULT_EXPERIMENT = "Default"
MAX_SEARCH_RESULTS = 50_000
MAX_HISTORY_POINTS = 10_000_000

MetricTuple = tuple[str, float, int, int]  # key, value, step, timestamp ms


def new_id() -> str:
    return uuid.uuid4().hex


# Statements of the hot paths, built once: on SQLite, building a statement and
# computing its cache key costs more than running it (a built statement
# memoizes its key, so executing it again is a dict lookup).
_SEL_EXPERIMENT = sa.select(experiments).where(experiments.c.id == sa.bindparam("id"))
_SEL_RUN = sa.select(runs).where(runs.c.id == sa.bindparam("id"))
_SEL_RUN_EXPERIMENT = sa.select(runs.c.experiment_id).where(runs.c.id == sa.bindparam("id"))
_INS_RUN = runs.insert()
_INS_RUN_TAGS = run_tags.insert()
_INS_PARAMS = param_table.insert()
_INS_CHUNKS = metric_chunks.insert()


def _of_runs(*cols: Any, json_ids: bool) -> sa.Select[Any]:
    """``SELECT cols WHERE run_id IN`` the bound ``ids``, one bound value whatever their number.

    An expanding ``IN (:ids)`` re-renders its SQL for every call (a few ms for
    a search page's 100 runs across three queries); SQLite reads the ids as one
    JSON array (``json_each``), PostgreSQL as one array (``= ANY``).
    """
    col = cols[0].table.c.run_id
    if json_ids:
        each = sa.func.json_each(sa.bindparam("ids", type_=sa.JSON)).table_valued("value")
        return sa.select(*cols).where(col.in_(sa.select(each.c.value)))
    return sa.select(*cols).where(col == sa.any_(sa.bindparam("ids", type_=sa.ARRAY(sa.String))))


# (params, tags, latest metrics) of some runs: [json_ids] picks SQLite's form.
_SEL_OF_RUNS = {
    json_ids: (
        _of_runs(param_table.c.run_id, param_table.c.key, param_table.c.value, json_ids=json_ids),
        _of_runs(run_tags.c.run_id, run_tags.c.key, run_tags.c.value, json_ids=json_ids),
        _of_runs(
            *(latest_metrics.c[n] for n in ("run_id", "key", "value", "step", "timestamp")),
            *(latest_metrics.c[n] for n in ("min_value", "max_value", "count")),
            json_ids=json_ids,
        ),
    )
    for json_ids in (True, False)
}
_SEL_PARAM_VALUES = sa.select(param_table.c.key, param_table.c.value).where(
    param_table.c.run_id == sa.bindparam("run_id"),
    param_table.c.key.in_(sa.bindparam("keys", expanding=True)),
)
_SEL_BATCH_KEYS = sa.select(metric_chunks.c.key).where(
    metric_chunks.c.run_id == sa.bindparam("run_id"),
    metric_chunks.c.batch_id == sa.bindparam("batch_id"),
)
_SEL_LATEST_KEYS = sa.select(latest_metrics).where(
    latest_metrics.c.run_id == sa.bindparam("run_id"),
    latest_metrics.c.key.in_(sa.bindparam("keys", expanding=True)),
)
_SEL_LATEST_KEYS_LOCKED = _SEL_LATEST_KEYS.with_for_update()
_COUNT_RUNS = sa.select(sa.func.count()).select_from(runs)
_COUNT_RUNS_IN = _COUNT_RUNS.where(runs.c.experiment_id.in_(sa.bindparam("ids", expanding=True)))
