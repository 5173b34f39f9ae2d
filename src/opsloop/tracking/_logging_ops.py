"""Logging params, metrics and tags in batches (idempotent by batch id), and reading metric histories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import Conflict, InvalidArgument, NotFound, PayloadTooLarge
from opsloop.store import upsert
from opsloop.tracking import _metrics as M
from opsloop.tracking import _validation as V
from opsloop.tracking._run_ops import RunOps
from opsloop.tracking._sql import (
    _INS_CHUNKS,
    _INS_PARAMS,
    _SEL_BATCH_KEYS,
    _SEL_LATEST_KEYS,
    _SEL_LATEST_KEYS_LOCKED,
    _SEL_PARAM_VALUES,
    MAX_HISTORY_POINTS,
    MetricTuple,
)
from opsloop.tracking._tables import (
    latest_metrics,
    metric_chunks,
    run_tags,
)
from opsloop.tracking.entities import (
    LatestMetric,
    MetricHistory,
)


class LoggingOps(RunOps):
    """Batched writes of params, metrics and tags, and metric reads."""

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
        by_key = self._group_points(metrics)
        param_rows = self._param_rows(run_id, params or {})
        tag_rows = self._tag_rows(run_id, tags or {})
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            if param_rows:
                self._insert_params(conn, run_id, param_rows)
            if tag_rows:
                upsert(conn, run_tags, tag_rows, ["run_id", "key"], ["value"])
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
        self,
        conn: Connection,
        run_id: str,
        by_key: dict[str, M.KeyBatch],
        batch_id: str | None,
        *,
        new_run: bool = False,
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

        existing: dict[str, Any] = {}
        if not new_run:  # a run created in this transaction has no latest values yet
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
        upsert(
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


def check_batch_limits(
    n_metrics: int, n_params: int, n_tags: int, *, max_metrics: int, max_params: int, max_tags: int
) -> None:
    if n_metrics > max_metrics:
        raise PayloadTooLarge(f"a batch holds at most {max_metrics} metric points, got {n_metrics}")
    if n_params > max_params:
        raise PayloadTooLarge(f"a batch holds at most {max_params} params, got {n_params}")
    if n_tags > max_tags:
        raise PayloadTooLarge(f"a batch holds at most {max_tags} tags, got {n_tags}")
