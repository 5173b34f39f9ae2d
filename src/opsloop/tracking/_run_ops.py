"""Runs: create, read, update, delete, restore, and turning rows into ``Run`` entities."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.store import now_ms
from opsloop.tracking import _metrics as M
from opsloop.tracking import _validation as V
from opsloop.tracking._experiment_ops import ExperimentOps
from opsloop.tracking._sql import (
    _INS_PARAMS,
    _INS_RUN,
    _INS_RUN_TAGS,
    _SEL_OF_RUNS,
    _SEL_RUN,
    _SEL_RUN_EXPERIMENT,
    MetricTuple,
    new_id,
)
from opsloop.tracking._tables import (
    artifacts,
    latest_metrics,
    metric_chunks,
    run_tags,
    runs,
)
from opsloop.tracking._tables import (
    params as param_table,
)
from opsloop.tracking.entities import (
    LatestMetric,
    Run,
    RunStatus,
)

_RUN_FIELDS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "notes",
    "user",
    "lifecycle_stage",
)
_STATUSES = {s.value: s for s in RunStatus}


class RunOps(ExperimentOps):
    """Runs, on top of experiments."""

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
        metrics: Sequence[MetricTuple] | None = None,
        validated: bool = False,
    ) -> Run:
        """Create a run with its first params, tags and metric points in one transaction.

        ``metrics`` are ``(key, value, step, timestamp_ms)`` points, stored as
        ``log_batch`` stores them; ``validated`` skips re-checking them.
        """
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
        by_key = self._group_points(metrics if validated else V.metric_points(metrics or []))
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
            if by_key:
                self._write_metrics(conn, rid, by_key, None, new_run=True)
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
                metrics=self._first_latest(by_key),
            )
            if not status.is_terminal
            else self.get_run(rid)
        )

    @staticmethod
    def _group_points(metrics: Sequence[MetricTuple] | None) -> dict[str, M.KeyBatch]:
        """Checked points grouped by key, in arrival order."""
        by_key: dict[str, M.KeyBatch] = {}
        for key, value, step, ts in metrics or ():
            kb = by_key.get(key)
            if kb is None:
                kb = by_key[key] = M.KeyBatch([], [], [])
            kb.steps.append(step)
            kb.timestamps.append(ts)
            kb.values.append(value)
        return by_key

    @staticmethod
    def _first_latest(by_key: dict[str, M.KeyBatch]) -> dict[str, LatestMetric]:
        """The latest-metric summaries of a new run's first points (as ``get_run`` reads them)."""
        out: dict[str, LatestMetric] = {}
        for key in sorted(by_key):
            kb = by_key[key]
            i = kb.latest_index()
            lo, hi = kb.min_max()
            out[key] = LatestMetric(
                value=M.clean_float(kb.values[i]),
                step=kb.steps[i],
                timestamp=kb.timestamps[i],
                min=lo,
                max=hi,
                count=len(kb.steps),
            )
        return out

    def _write_metrics(
        self,
        conn: Connection,
        run_id: str,
        by_key: dict[str, M.KeyBatch],
        batch_id: str | None,
        *,
        new_run: bool = False,
    ) -> int:
        """Store grouped points (``LoggingOps`` implements it)."""
        raise NotImplementedError

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
        if not rows:
            return []
        # Rows of `runs` (maybe with more columns), read by position: a Row's attribute
        # lookups cost more than the model (a search's page is hydrated in one go).
        pos = {name: i for i, name in enumerate(rows[0]._fields)}
        c_id, c_exp, c_name, c_status, c_start, c_end, c_parent, c_notes, c_user, c_stage = (
            pos[name] for name in _RUN_FIELDS
        )
        ids = [r[c_id] for r in rows]
        p: dict[str, dict[str, str]] = defaultdict(dict)
        t: dict[str, dict[str, str]] = defaultdict(dict)
        m: dict[str, dict[str, LatestMetric]] = defaultdict(dict)
        sel_params, sel_tags, sel_latest = _SEL_OF_RUNS[self.db.is_sqlite]
        bind = {"ids": ids}
        for run_id, key, value in conn.execute(sel_params, bind).all():
            p[run_id][key] = value
        for run_id, key, value in conn.execute(sel_tags, bind).all():
            t[run_id][key] = value
        for run_id, key, value, step, ts, lo, hi, count in conn.execute(sel_latest, bind).all():
            m[run_id][key] = LatestMetric(
                value=value, step=step, timestamp=ts, min=lo, max=hi, count=count
            )
        return [
            Run(
                id=r[c_id],
                experiment_id=r[c_exp],
                name=r[c_name],
                status=_STATUSES.get(r[c_status]) or RunStatus(r[c_status]),
                start_time=r[c_start],
                end_time=r[c_end],
                parent_run_id=r[c_parent],
                notes=r[c_notes],
                user=r[c_user],
                lifecycle_stage=r[c_stage],
                params=dict(sorted(p[r[c_id]].items())) if r[c_id] in p else {},
                tags=dict(sorted(t[r[c_id]].items())) if r[c_id] in t else {},
                metrics=dict(sorted(m[r[c_id]].items())) if r[c_id] in m else {},
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
