"""Tracking logic: experiments, runs, params, tags, metrics, search and compare.

Pure functions over a ``Database``: no HTTP, no CLI, no global state. Every
public method is one transaction, so a bad request never leaves half a write.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PayloadTooLarge
from opsloop.store._engine import Database, now_ms
from opsloop.tracking import _metrics as M
from opsloop.tracking import _validation as V
from opsloop.tracking._filter import (
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)
from opsloop.tracking._tables import (
    experiment_tags,
    experiments,
    latest_metrics,
    metric_chunks,
    run_tags,
    runs,
)
from opsloop.tracking._tables import (
    params as param_table,
)
from opsloop.tracking.entities import (
    Experiment,
    LatestMetric,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
)

DEFAULT_EXPERIMENT = "Default"
MAX_SEARCH_RESULTS = 50_000
MAX_HISTORY_POINTS = 10_000_000
_IN_CHUNK = 500  # ids per IN (...) clause

MetricTuple = tuple[str, float, int, int]  # key, value, step, timestamp ms


def new_id() -> str:
    return uuid.uuid4().hex


def _upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    if not rows:
        return
    # Built once per dialect and shape: building one (its ``excluded`` alias
    # copies the table's columns) costs more than running it.
    cache_key = (conn.dialect.name, table, tuple(keys), tuple(update))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            ins = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            ins = sqlite_insert(table)  # type: ignore[assignment]
        stmt = _UPSERTS[cache_key] = ins.on_conflict_do_update(
            index_elements=list(keys), set_={c: ins.excluded[c] for c in update}
        )
    conn.execute(stmt, rows)


_UPSERTS: dict[tuple[str, sa.Table, tuple[str, ...], tuple[str, ...]], Any] = {}


def _chunks(seq: Sequence[Any], n: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


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
_SEL_PARAMS_OF = sa.select(param_table.c.run_id, param_table.c.key, param_table.c.value).where(
    param_table.c.run_id.in_(sa.bindparam("ids", expanding=True))
)
_SEL_TAGS_OF = sa.select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value).where(
    run_tags.c.run_id.in_(sa.bindparam("ids", expanding=True))
)
_SEL_LATEST_OF = sa.select(
    *(latest_metrics.c[n] for n in ("run_id", "key", "value", "step", "timestamp")),
    *(latest_metrics.c[n] for n in ("min_value", "max_value", "count")),
).where(latest_metrics.c.run_id.in_(sa.bindparam("ids", expanding=True)))
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


class TrackingService:
    """Experiments and runs stored in one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite search plan hint: experiment ids -> (when checked, hold most runs).
        self._most_runs: dict[tuple[str, ...], tuple[float, bool]] = {}

    # ------------------------------------------------------------------ experiments

    def _experiment_from_row(
        self, conn: Connection, row: Any, run_count: int | None = None
    ) -> Experiment:
        tags = {
            r.key: r.value
            for r in conn.execute(
                sa.select(experiment_tags).where(experiment_tags.c.experiment_id == row.id)
            )
        }
        return Experiment(
            id=row.id,
            name=row.name,
            description=row.description,
            lifecycle_stage=row.lifecycle_stage,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            run_count=run_count,
        )

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        V.check_name("experiment name", name)
        if not isinstance(description, str) or len(description) > V.MAX_NOTES:
            raise InvalidArgument(
                "experiment description must be a string of at most 100000 characters"
            )
        tag_rows = {V.check_key("tag", k): V.tag_value(v) for k, v in (tags or {}).items()}
        ts = now_ms()
        eid = new_id()
        try:
            with self.db.write() as conn:
                if conn.execute(
                    sa.select(experiments.c.id).where(experiments.c.name == name)
                ).first():
                    raise AlreadyExists(
                        f"experiment {name!r} already exists", details={"name": name}
                    )
                conn.execute(
                    experiments.insert().values(
                        id=eid,
                        name=name,
                        description=description,
                        lifecycle_stage="active",
                        created_at=ts,
                        updated_at=ts,
                    )
                )
                if tag_rows:
                    conn.execute(
                        experiment_tags.insert(),
                        [{"experiment_id": eid, "key": k, "value": v} for k, v in tag_rows.items()],
                    )
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"experiment {name!r} already exists", details={"name": name}
            ) from exc
        return self.get_experiment(eid)

    def get_experiment(self, experiment_id: str) -> Experiment:
        V.check_id("experiment id", experiment_id)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.id == experiment_id)
            ).first()
            if row is None:
                raise NotFound(
                    f"experiment {experiment_id!r} does not exist",
                    details={"experiment_id": experiment_id},
                )
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(runs)
                .where(runs.c.experiment_id == experiment_id, runs.c.lifecycle_stage == "active")
            ).scalar_one()
            return self._experiment_from_row(conn, row, count)

    def get_experiment_by_name(self, name: str) -> Experiment:
        V.check_name("experiment name", name)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(experiments.c.id).where(experiments.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"experiment {name!r} does not exist", details={"name": name})
        return self.get_experiment(row.id)

    def get_or_create_experiment(self, name: str) -> Experiment:
        try:
            return self.get_experiment_by_name(name)
        except NotFound:
            try:
                return self.create_experiment(name)
            except AlreadyExists:
                return self.get_experiment_by_name(name)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        with self.db.read() as conn:
            q = sa.select(experiments).order_by(experiments.c.created_at, experiments.c.name)
            if not include_deleted:
                q = q.where(experiments.c.lifecycle_stage == "active")
            rows = conn.execute(q).all()
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(runs.c.experiment_id, sa.func.count())
                    .where(runs.c.lifecycle_stage == "active")
                    .group_by(runs.c.experiment_id)
                ).all()
            )
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for r in conn.execute(sa.select(experiment_tags)):
                tags[r.experiment_id][r.key] = r.value
            return [
                Experiment(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    lifecycle_stage=r.lifecycle_stage,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    tags=tags.get(r.id, {}),
                    run_count=counts.get(r.id, 0),
                )
                for r in rows
            ]

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        V.check_id("experiment id", experiment_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = V.check_name("experiment name", name)
        if description is not None:
            if not isinstance(description, str) or len(description) > V.MAX_NOTES:
                raise InvalidArgument(
                    "experiment description must be a string of at most 100000 characters"
                )
            values["description"] = description
        if values:
            values["updated_at"] = now_ms()
            try:
                with self.db.write() as conn:
                    self._require_experiment(conn, experiment_id)
                    if (
                        name is not None
                        and conn.execute(
                            sa.select(experiments.c.id).where(
                                experiments.c.name == name, experiments.c.id != experiment_id
                            )
                        ).first()
                    ):
                        raise AlreadyExists(
                            f"experiment {name!r} already exists", details={"name": name}
                        )
                    conn.execute(
                        experiments.update()
                        .where(experiments.c.id == experiment_id)
                        .values(**values)
                    )
            except sa.exc.IntegrityError as exc:
                raise AlreadyExists(f"experiment {name!r} already exists") from exc
        return self.get_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        V.check_id("experiment id", experiment_id)
        row = {
            "experiment_id": experiment_id,
            "key": V.check_key("tag", key),
            "value": V.tag_value(value),
        }
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            _upsert(conn, experiment_tags, [row], ["experiment_id", "key"], ["value"])

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs (restorable)."""
        self._set_experiment_stage(experiment_id, "deleted")

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, "active")

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        V.check_id("experiment id", experiment_id)
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id, active_only=False)
            conn.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(lifecycle_stage=stage, updated_at=now_ms())
            )
            conn.execute(
                runs.update()
                .where(runs.c.experiment_id == experiment_id)
                .values(lifecycle_stage=stage)
            )

    def _require_experiment(
        self, conn: Connection, experiment_id: str, *, active_only: bool = True
    ) -> Any:
        row = conn.execute(_SEL_EXPERIMENT, {"id": experiment_id}).first()
        if row is None or (active_only and row.lifecycle_stage != "active"):
            raise NotFound(
                f"experiment {experiment_id!r} does not exist",
                details={"experiment_id": experiment_id},
            )
        return row

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        notes: str = "",
        user: str = "",
        status: RunStatus | str = RunStatus.RUNNING,
    ) -> Run:
        """Create a run (with its first params and tags) in one transaction."""
        V.check_id("experiment id", experiment_id)
        if parent_run_id is not None:
            V.check_id("parent run id", parent_run_id)
        status = self._status(status)
        rid = new_id()
        run_name = V.check_name("run name", name) if name else f"run-{rid[:8]}"
        start = now_ms() if start_time is None else V.int64("start_time", start_time)
        if not isinstance(notes, str) or len(notes) > V.MAX_NOTES:
            raise InvalidArgument("run notes must be a string of at most 100000 characters")
        tag_rows = self._tag_rows(rid, tags or {})
        param_rows = self._param_rows(rid, params or {})
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            if parent_run_id is not None:
                parent = conn.execute(_SEL_RUN_EXPERIMENT, {"id": parent_run_id}).first()
                if parent is None:
                    raise NotFound(f"parent run {parent_run_id!r} does not exist")
            conn.execute(
                _INS_RUN,
                {
                    "id": rid,
                    "experiment_id": experiment_id,
                    "name": run_name,
                    "status": status.value,
                    "start_time": start,
                    "end_time": now_ms() if status.is_terminal else None,
                    "parent_run_id": parent_run_id,
                    "notes": notes,
                    "user": str(user or "")[: V.MAX_NAME],
                    "lifecycle_stage": "active",
                },
            )
            if tag_rows:
                conn.execute(_INS_RUN_TAGS, tag_rows)
            if param_rows:
                conn.execute(_INS_PARAMS, param_rows)
        return (
            Run(
                id=rid,
                experiment_id=experiment_id,
                name=run_name,
                status=status,
                start_time=start,
                end_time=None,
                parent_run_id=parent_run_id,
                notes=notes,
                user=str(user or "")[: V.MAX_NAME],
                params={r["key"]: r["value"] for r in param_rows},
                tags={r["key"]: r["value"] for r in tag_rows},
            )
            if not status.is_terminal
            else self.get_run(rid)
        )

    @staticmethod
    def _status(status: RunStatus | str) -> RunStatus:
        try:
            return RunStatus(str(status).upper())
        except ValueError as exc:
            raise InvalidArgument(
                f"run status {status!r} is not one of {', '.join(s.value for s in RunStatus)}"
            ) from exc

    @staticmethod
    def _tag_rows(run_id: str, tags: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {"run_id": run_id, "key": V.check_key("tag", k), "value": V.tag_value(v)}
            for k, v in tags.items()
        ]

    @staticmethod
    def _param_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for k, v in values.items():
            text = V.param_value(v)
            rows.append(
                {
                    "run_id": run_id,
                    "key": V.check_key("param", k),
                    "value": text,
                    "value_num": V.numeric_or_none(text),
                }
            )
        return rows

    def _require_run(self, conn: Connection, run_id: str, *, active_only: bool = True) -> Any:
        row = conn.execute(_SEL_RUN, {"id": run_id}).first()
        if row is None or (active_only and row.lifecycle_stage != "active"):
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
        return row

    def get_run(self, run_id: str) -> Run:
        V.check_id("run id", run_id)
        with self.db.read() as conn:
            row = self._require_run(conn, run_id, active_only=False)
            return self._hydrate(conn, [row])[0]

    def _hydrate(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        ids = [r.id for r in rows]
        p: dict[str, dict[str, str]] = defaultdict(dict)
        t: dict[str, dict[str, str]] = defaultdict(dict)
        m: dict[str, dict[str, LatestMetric]] = defaultdict(dict)
        for part in _chunks(ids):
            bind = {"ids": list(part)}
            for run_id, key, value in conn.execute(_SEL_PARAMS_OF, bind):
                p[run_id][key] = value
            for run_id, key, value in conn.execute(_SEL_TAGS_OF, bind):
                t[run_id][key] = value
            # Unpacked by position: a Row's attribute lookups cost more than the model.
            for run_id, key, value, step, ts, lo, hi, count in conn.execute(_SEL_LATEST_OF, bind):
                m[run_id][key] = LatestMetric(
                    value=value, step=step, timestamp=ts, min=lo, max=hi, count=count
                )
        return [
            Run(
                id=r.id,
                experiment_id=r.experiment_id,
                name=r.name,
                status=RunStatus(r.status),
                start_time=r.start_time,
                end_time=r.end_time,
                parent_run_id=r.parent_run_id,
                notes=r.notes,
                user=r.user,
                lifecycle_stage=r.lifecycle_stage,
                params=dict(sorted(p[r.id].items())),
                tags=dict(sorted(t[r.id].items())),
                metrics=dict(sorted(m[r.id].items())),
            )
            for r in rows
        ]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run:
        """Change a run's status, name or notes; a terminal status sets ``end_time``."""
        V.check_id("run id", run_id)
        values: dict[str, Any] = {}
        if status is not None:
            st = self._status(status)
            values["status"] = st.value
            if st.is_terminal:
                values["end_time"] = now_ms() if end_time is None else V.int64("end_time", end_time)
            else:
                values["end_time"] = None
        elif end_time is not None:
            values["end_time"] = V.int64("end_time", end_time)
        if name is not None:
            values["name"] = V.check_name("run name", name)
        if notes is not None:
            if not isinstance(notes, str) or len(notes) > V.MAX_NOTES:
                raise InvalidArgument("run notes must be a string of at most 100000 characters")
            values["notes"] = notes
        if values:
            with self.db.write() as conn:
                self._require_run(conn, run_id)
                conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
        return self.get_run(run_id)

    def delete_run(self, run_id: str, *, purge: bool = False) -> None:
        """Soft-delete a run (restorable) or, with ``purge``, remove it and its data."""
        V.check_id("run id", run_id)
        with self.db.write() as conn:
            self._require_run(conn, run_id, active_only=not purge)
            if purge:
                from opsloop.tracking._tables import artifacts

                for table in (metric_chunks, latest_metrics, param_table, run_tags, artifacts):
                    conn.execute(table.delete().where(table.c.run_id == run_id))
                conn.execute(
                    runs.update().where(runs.c.parent_run_id == run_id).values(parent_run_id=None)
                )
                conn.execute(runs.delete().where(runs.c.id == run_id))
            else:
                conn.execute(
                    runs.update().where(runs.c.id == run_id).values(lifecycle_stage="deleted")
                )

    def restore_run(self, run_id: str) -> Run:
        V.check_id("run id", run_id)
        with self.db.write() as conn:
            row = self._require_run(conn, run_id, active_only=False)
            exp = self._require_experiment(conn, row.experiment_id, active_only=False)
            if exp.lifecycle_stage != "active":
                raise Conflict(
                    f"run {run_id!r} belongs to a deleted experiment: restore the experiment first"
                )
            conn.execute(runs.update().where(runs.c.id == run_id).values(lifecycle_stage="active"))
        return self.get_run(run_id)

    # ------------------------------------------------------------------ logging

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricTuple] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        validated: bool = False,
    ) -> int:
        """Store metrics, params and tags in one transaction; return the points written.

        Logging a param twice with the same value is accepted; with another
        value it is a ``Conflict`` and nothing of the batch is stored. A batch
        retried with the same ``batch_id`` is stored once.
        """
        V.check_id("run id", run_id)
        metrics = metrics or []
        if batch_id is not None and (not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 64):
            raise InvalidArgument("batch_id must be a string of 1 to 64 characters")
        if not validated:
            metrics = V.metric_points(metrics)
        by_key: dict[str, M.KeyBatch] = {}
        for key, value, step, ts in metrics:
            kb = by_key.get(key)
            if kb is None:
                kb = by_key[key] = M.KeyBatch([], [], [])
            kb.steps.append(step)
            kb.timestamps.append(ts)
            kb.values.append(value)
        param_rows = self._param_rows(run_id, params or {})
        tag_rows = self._tag_rows(run_id, tags or {})
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            if param_rows:
                self._insert_params(conn, run_id, param_rows)
            if tag_rows:
                _upsert(conn, run_tags, tag_rows, ["run_id", "key"], ["value"])
            if by_key:
                return self._write_metrics(conn, run_id, by_key, batch_id)
        return 0

    def _insert_params(self, conn: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
        keys = [r["key"] for r in rows]
        existing = dict(conn.execute(_SEL_PARAM_VALUES, {"run_id": run_id, "keys": keys}).all())
        new = []
        for r in rows:
            old = existing.get(r["key"])
            if old is None:
                new.append(r)
            elif old != r["value"]:
                raise Conflict(
                    f"param {r['key']!r} of run {run_id!r} is already {old!r}; params cannot change "
                    f"(tried {r['value']!r})",
                    details={"key": r["key"], "old": old, "new": r["value"]},
                )
        if new:
            conn.execute(_INS_PARAMS, new)

    def _write_metrics(
        self, conn: Connection, run_id: str, by_key: dict[str, M.KeyBatch], batch_id: str | None
    ) -> int:
        keys = list(by_key)
        if batch_id is not None:
            done = {
                r.key
                for r in conn.execute(_SEL_BATCH_KEYS, {"run_id": run_id, "batch_id": batch_id})
            }
            for k in done:
                del by_key[k]
            keys = list(by_key)
            if not keys:
                return 0
        chunk_rows = []
        written = 0
        for key, kb in by_key.items():
            n = len(kb.steps)
            written += n
            for i, lo in enumerate(range(0, n, M.CHUNK_POINTS)):
                hi = min(n, lo + M.CHUNK_POINTS)
                c_steps, c_ts, c_vals = kb.steps[lo:hi], kb.timestamps[lo:hi], kb.values[lo:hi]
                chunk_rows.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "batch_id": None
                        if batch_id is None
                        else (batch_id if i == 0 else f"{batch_id}:{i}"),
                        "n": hi - lo,
                        "min_step": min(c_steps),
                        "max_step": max(c_steps),
                        "min_ts": min(c_ts),
                        "max_ts": max(c_ts),
                        "steps": M.pack_i64(c_steps),
                        "timestamps": M.pack_i64(c_ts),
                        "vals": M.pack_f64(c_vals),
                    }
                )
        conn.execute(_INS_CHUNKS, chunk_rows)

        q = _SEL_LATEST_KEYS_LOCKED if conn.dialect.name == "postgresql" else _SEL_LATEST_KEYS
        existing = {r.key: r for r in conn.execute(q, {"run_id": run_id, "keys": keys})}
        upserts = []
        for key, kb in by_key.items():
            i = kb.latest_index()
            step, ts, value = kb.steps[i], kb.timestamps[i], kb.values[i]
            vmin, vmax = kb.min_max()
            count = len(kb.steps)
            old = existing.get(key)
            if old is not None:
                if (old.step, old.timestamp) > (step, ts):
                    step, ts, value = (
                        old.step,
                        old.timestamp,
                        (float("nan") if old.value is None else old.value),
                    )
                vmin = (
                    old.min_value
                    if vmin is None
                    else (vmin if old.min_value is None else min(vmin, old.min_value))
                )
                vmax = (
                    old.max_value
                    if vmax is None
                    else (vmax if old.max_value is None else max(vmax, old.max_value))
                )
                count += old._mapping["count"]
            upserts.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": M.clean_float(value),
                    "step": step,
                    "timestamp": ts,
                    "min_value": vmin,
                    "max_value": vmax,
                    "count": count,
                }
            )
        _upsert(
            conn,
            latest_metrics,
            upserts,
            ["run_id", "key"],
            ["value", "step", "timestamp", "min_value", "max_value", "count"],
        )
        return written

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        V.check_id("run id", run_id)
        V.check_key("tag", key)
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            res = conn.execute(
                run_tags.delete().where(run_tags.c.run_id == run_id, run_tags.c.key == key)
            )
            if res.rowcount == 0:
                raise NotFound(f"run {run_id!r} has no tag {key!r}")

    # ------------------------------------------------------------------ metrics read

    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]:
        return self.get_run(run_id).metrics

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        x: str = "step",
    ) -> MetricHistory:
        """All points of one metric, or at most ``max_points`` that keep the curve's shape."""
        V.check_id("run id", run_id)
        V.check_key("metric", key)
        if x not in ("step", "time"):
            raise InvalidArgument("x must be 'step' or 'time'")
        if max_points is not None and not (10 <= max_points <= MAX_HISTORY_POINTS):
            raise InvalidArgument(f"max_points must be between 10 and {MAX_HISTORY_POINTS}")
        with self.db.read() as conn:
            self._require_run(conn, run_id, active_only=False)
            rows = conn.execute(
                sa.select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c.vals)
                .where(metric_chunks.c.run_id == run_id, metric_chunks.c.key == key)
                .order_by(metric_chunks.c.id)
            ).all()
        s, t, v = M.assemble_np(rows)
        total = len(s)
        downsampled = False
        if max_points is not None and total > max_points:
            keep = M.downsample(s, t, v, max_points, x)
            s, t, v = s[keep], t[keep], v[keep]
            downsampled = True
        import numpy as np

        vals: list[float | None] = v.tolist()
        if np.isnan(v).any():  # NaN -> None for JSON
            vals = [None if f != f else f for f in vals]
        return MetricHistory.model_construct(
            run_id=run_id,
            key=key,
            steps=s.tolist(),
            timestamps=t.tolist(),
            values=vals,
            total_points=total,
            downsampled=downsampled,
        )

    # ------------------------------------------------------------------ search

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
        parent_run_id: str | None = None,
        with_total: bool = True,
    ) -> RunPage:
        """Runs matching a filter (see ``opsloop.tracking._filter``), ordered and paged."""
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_SEARCH_RESULTS:
            raise InvalidArgument(f"max_results must be between 1 and {MAX_SEARCH_RESULTS}")
        for e in experiment_ids or []:
            V.check_id("experiment id", e)
        cond = parse_filter(filter)
        order = parse_order_by(list(order_by or []))
        offset = decode_page_token(page_token)
        where: list[Any] = []
        if not include_deleted:
            where.append(runs.c.lifecycle_stage == "active")
        if parent_run_id is not None:
            where.append(runs.c.parent_run_id == V.check_id("parent run id", parent_run_id))
        # Ordered by a metric, param or tag (a subquery per run), the page query
        # sorts every matching run anyway, so it counts them in the same pass
        # (a window count) instead of filtering them all again. Ordered by the
        # runs' own columns the page can stop early: the count stays separate.
        sorts_all = any(_has_subquery(o) for o in order)
        count_inline = with_total and sorts_all
        cols: list[Any] = [runs]
        if count_inline:
            cols.append(sa.func.count().over().label("_total"))
        with self.db.read() as conn:
            in_form = (
                cond is not None
                and self.db.is_sqlite
                and self._holds_most_runs(conn, experiment_ids)
            )
            if experiment_ids:
                exp_col: Any = runs.c.experiment_id
                if in_form and sorts_all:
                    # These experiments hold most runs, so their index narrows
                    # little, and the page is sorted in full anyway: `|| ''`
                    # keeps SQLite off it, to start from the filter's run ids.
                    exp_col = exp_col.concat("")
                where.append(exp_col.in_(list(experiment_ids)))
            if cond is not None:
                where.append(_semijoins_as_in(cond) if in_form else cond)
            q = sa.select(*cols).where(*where).order_by(*order, runs.c.start_time.desc(), runs.c.id)
            q = q.limit(max_results + 1).offset(offset)
            try:
                rows = conn.execute(q).all()
            except sa.exc.DataError as exc:
                raise InvalidArgument(f"filter cannot be evaluated: {exc.orig}") from exc
            total = None
            if count_inline and (rows or offset == 0):
                total = rows[0]._total if rows else 0
            elif with_total:
                total = conn.execute(
                    sa.select(sa.func.count()).select_from(runs).where(*where)
                ).scalar_one()
            more = len(rows) > max_results
            page = self._hydrate(conn, rows[:max_results])
        return RunPage(
            runs=page,
            next_page_token=encode_page_token(offset + max_results) if more else None,
            total=total,
        )

    def _holds_most_runs(self, conn: Connection, experiment_ids: Sequence[str] | None) -> bool:
        """Whether the searched experiments hold at least half of all runs (cached a minute).

        It picks the SQLite filter form (see ``_semijoins_as_in``): one-pass
        subqueries cost in proportion to the runs that match in every
        experiment, per-run probes in proportion to the runs searched. A stale
        answer only picks the slower form, never other results.
        """
        if not experiment_ids:
            return True
        key = tuple(sorted(set(experiment_ids)))
        now = time.monotonic()
        hit = self._most_runs.get(key)
        if hit is not None and now - hit[0] < 60:
            return hit[1]
        total = conn.execute(_COUNT_RUNS).scalar_one()
        searched = conn.execute(_COUNT_RUNS_IN, {"ids": list(key)}).scalar_one()
        answer = bool(2 * searched >= total)
        if len(self._most_runs) > 1000:
            self._most_runs.clear()
        self._most_runs[key] = (now, answer)
        return answer

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Runs side by side: param diff and latest metrics, with the best run per metric."""
        if not run_ids or len(run_ids) > 100:
            raise InvalidArgument("compare takes 1 to 100 run ids")
        ids = [V.check_id("run id", r) for r in run_ids]
        with self.db.read() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(runs).where(runs.c.id.in_(ids)))}
            missing = [i for i in ids if i not in rows]
            if missing:
                raise NotFound(
                    f"runs do not exist: {', '.join(missing)}", details={"missing": missing}
                )
            hydrated = self._hydrate(conn, [rows[i] for i in ids])
        param_keys = sorted({k for r in hydrated for k in r.params})
        differing = [k for k in param_keys if len({r.params.get(k) for r in hydrated}) > 1]
        metric_keys = sorted({k for r in hydrated for k in r.metrics})
        table = {
            k: {r.id: (r.metrics[k].value if k in r.metrics else None) for r in hydrated}
            for k in metric_keys
        }
        best: dict[str, str | None] = {}
        for k, per_run in table.items():
            vals = [(v, rid) for rid, v in per_run.items() if v is not None]
            best[k] = max(vals)[1] if vals else None
        return RunComparison(
            runs=hydrated,
            param_keys=param_keys,
            differing_params=differing,
            metric_keys=metric_keys,
            metrics=table,
            best=best,
        )


def _semijoins_as_in(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """The filter with ``EXISTS (SELECT 1 FROM t WHERE t.run_id = runs.id AND c)``
    rewritten as ``runs.id IN (SELECT t.run_id FROM t WHERE c)``, for SQLite.

    The same runs match (``run_id`` is never NULL, so ``NOT IN`` is ``NOT
    EXISTS``), but SQLite then runs each subquery once into a temporary index
    instead of probing the table once per run: about a third faster over 10k
    runs, as long as the runs searched are most of the runs (the subqueries
    read matches in every experiment). PostgreSQL keeps ``EXISTS``: its
    planner turns it into a semi-join, while ``NOT IN (subquery)`` can degrade
    to a rescan per row there. A subquery of any other shape is left as it is.
    """
    from sqlalchemy.sql import operators, visitors
    from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList
    from sqlalchemy.sql.selectable import Exists, ScalarSelect, Select

    def replace(element: Any, **_: Any) -> Any:
        if not isinstance(element, Exists) or not isinstance(element.element, ScalarSelect):
            return None
        sel = element.element.element
        if not isinstance(sel, Select) or not isinstance(sel.whereclause, BooleanClauseList):
            return None
        if sel.whereclause.operator is not operators.and_:
            return None
        first, *rest = sel.whereclause.clauses
        if not (
            isinstance(first, BinaryExpression)
            and first.operator is operators.eq
            and first.right is runs.c.id
            and getattr(first.left, "name", None) == "run_id"
            and getattr(first.left, "nullable", True) is False
        ):
            return None
        # Only a subquery that names runs nowhere else can run once for all runs.
        for part in rest:
            if any(getattr(c, "table", None) is runs for c in visitors.iterate(part)):
                return None
        return runs.c.id.in_(sa.select(first.left).where(*rest))

    return visitors.replacement_traverse(cond, {}, replace)


def _has_subquery(clause: Any) -> bool:
    from sqlalchemy.sql import visitors
    from sqlalchemy.sql.selectable import ScalarSelect

    return any(isinstance(el, ScalarSelect) for el in visitors.iterate(clause))


def check_batch_limits(
    n_metrics: int, n_params: int, n_tags: int, *, max_metrics: int, max_params: int, max_tags: int
) -> None:
    if n_metrics > max_metrics:
        raise PayloadTooLarge(f"a batch holds at most {max_metrics} metric points, got {n_metrics}")
    if n_params > max_params:
        raise PayloadTooLarge(f"a batch holds at most {max_params} params, got {n_params}")
    if n_tags > max_tags:
        raise PayloadTooLarge(f"a batch holds at most {max_tags} tags, got {n_tags}")
