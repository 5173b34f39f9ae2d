"""Monitoring over the database: the prediction log, labels, rollups, monitors and alerts.

One transaction per public call; inputs are checked before anything is written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyExists, InvalidArgument, NotFound, PayloadTooLarge
from opsloop.monitoring._tables import (
    BUCKET_COLUMNS,
    COUNTER_COLUMNS,
    LATENCY_BUCKETS_MS,
    alerts_t,
    labels_t,
    monitors_t,
    predictions_t,
    rollups_t,
)
from opsloop.monitoring.entities import Alert, Monitor
from opsloop.store import Database, now_ms, upsert

__all__ = ["MonitoringService", "percentile", "summarize"]

NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\-]{0,63}$")
ID_RE = re.compile(r"^[A-Za-z0-9][\w.:\-]{0,127}$")
MAX_BATCH = 10_000
MAX_JSON = 1_000_000
METRICS = ("requests", "request_rate", "error_rate", "latency_p50", "latency_p95", "latency_p99")


def _json(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _ident(v: Any, field: str, pattern: re.Pattern[str] = ID_RE) -> str:
    if not isinstance(v, str) or not pattern.match(v):
        raise InvalidArgument(
            f"{field} must be letters, digits, '_', '.', '-' (or ':'), up to its length limit",
            details={"field": field},
        )
    return v


def _int(v: Any, field: str, lo: int = 0, hi: int = 2**62) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InvalidArgument(
            f"{field} must be an integer in [{lo}, {hi}]", details={"field": field}
        )
    return v


def percentile(buckets: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, interpolated inside its bucket."""
    total = float(sum(buckets))
    if total <= 0:
        return None
    target = q * total
    cum = 0.0
    lower = 0.0
    for i, count in enumerate(buckets):
        upper = LATENCY_BUCKETS_MS[i] if i < len(LATENCY_BUCKETS_MS) else LATENCY_BUCKETS_MS[-1]
        if count > 0 and cum + count >= target:
            if i >= len(LATENCY_BUCKETS_MS):
                return float(LATENCY_BUCKETS_MS[-1])
            return lower + (upper - lower) * (target - cum) / count
        cum += count
        lower = upper
    return float(LATENCY_BUCKETS_MS[-1])


def summarize(counters: Mapping[str, float], seconds: float) -> dict[str, Any]:
    """Requests, rate, error rate, latency mean and percentiles of summed rollup counters."""
    req = float(counters.get("requests", 0))
    buckets = [float(counters.get(c, 0)) for c in BUCKET_COLUMNS]
    return {
        "requests": int(req),
        "errors": int(counters.get("errors", 0)),
        "rows": int(counters.get("rows", 0)),
        "request_rate": req / seconds if seconds > 0 else 0.0,
        "error_rate": float(counters.get("errors", 0)) / req if req else 0.0,
        "latency_mean": float(counters.get("latency_sum_ms", 0)) / req if req else None,
        "latency_p50": percentile(buckets, 0.50),
        "latency_p95": percentile(buckets, 0.95),
        "latency_p99": percentile(buckets, 0.99),
        "tokens": int(counters.get("tokens", 0)),
        "cost": float(counters.get("cost", 0)),
    }


def _points(rows: Sequence[Any], bucket_s: int, by_version: bool) -> list[dict[str, Any]]:
    """``summarize`` over many rows at once (numpy): a day of minutes in a few milliseconds."""
    import numpy as np  # lazy: kept out of `import opsloop`

    if not rows:
        return []
    k = 2 if by_version else 1
    vals = np.array([r[k:] for r in rows], dtype=float)
    col = {c: vals[:, i] for i, c in enumerate(COUNTER_COLUMNS)}
    hist = vals[:, COUNTER_COLUMNS.index("b0") :]
    req = col["requests"]
    safe = np.where(req > 0, req, 1.0)
    quant = {}
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1]
    bounds = np.array([*LATENCY_BUCKETS_MS, LATENCY_BUCKETS_MS[-1]], dtype=float)
    lowers = np.concatenate([[0.0], bounds[:-1]])
    idx_rows = np.arange(len(rows))
    for name, q in (("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99)):
        target = q * total
        i = np.minimum((cum < target[:, None]).sum(axis=1), hist.shape[1] - 1)
        below = np.where(i > 0, cum[idx_rows, np.maximum(i - 1, 0)], 0.0)
        count = np.where(hist[idx_rows, i] > 0, hist[idx_rows, i], 1.0)
        est = lowers[i] + (bounds[i] - lowers[i]) * (target - below) / count
        est = np.where(i >= len(LATENCY_BUCKETS_MS), bounds[-1], est)
        quant[name] = np.where(total > 0, est, np.nan)
    # plain lists: indexing numpy scalars row by row costs more than the arithmetic
    t = [int(r[0]) for r in rows]
    reqs = req.astype(np.int64).tolist()
    rate = (req / bucket_s).tolist()
    errors = col["errors"].astype(np.int64).tolist()
    err_rate = (col["errors"] / safe).tolist()
    n_rows = col["rows"].astype(np.int64).tolist()
    mean = np.where(req > 0, col["latency_sum_ms"] / safe, np.nan).tolist()
    tokens = col["tokens"].astype(np.int64).tolist()
    cost = col["cost"].tolist()
    qs = {name: arr.tolist() for name, arr in quant.items()}
    out = []
    for j in range(len(rows)):
        point: dict[str, Any] = {
            "t": t[j],
            "requests": reqs[j],
            "errors": errors[j],
            "rows": n_rows[j],
            "request_rate": rate[j],
            "error_rate": err_rate[j],
            "latency_mean": None if mean[j] != mean[j] else mean[j],
            "tokens": tokens[j],
            "cost": cost[j],
        }
        for name, vals_q in qs.items():
            v = vals_q[j]
            point[name] = None if v != v else v  # NaN: no requests
        if by_version:
            point["version"] = rows[j][1]
        out.append(point)
    return out


def _pred_row(r: Mapping[str, Any]) -> dict[str, Any]:
    for f in ("request_id",):
        _ident(r.get(f), f)
    for f in ("deployment", "model", "version", "route"):
        v = r.get(f, "")
        if not isinstance(v, str) or len(v) > 256 or "\x00" in v:
            raise InvalidArgument(f"{f} must be a string of at most 256 characters")
    inputs = r.get("inputs")
    if not isinstance(inputs, dict):
        raise InvalidArgument("inputs must be an object of column values")
    text_in, text_out = _json(inputs), _json(r.get("output"))
    if len(text_in) + len(text_out) > MAX_JSON or "\\u0000" in text_in + text_out:
        raise PayloadTooLarge("one logged prediction is over 1 MB (or holds NUL)")
    lat = r.get("latency_ms", 0.0)
    if isinstance(lat, bool) or not isinstance(lat, int | float) or not 0 <= lat < 1e9:
        raise InvalidArgument("latency_ms must be a non-negative number")
    return {
        "request_id": r["request_id"],
        "row_index": _int(r.get("row_index", 0), "row_index", 0, 10**7),
        "deployment": r.get("deployment") or r.get("model") or "",
        "model": r.get("model", ""),
        "version": r.get("version", ""),
        "route": r.get("route", ""),
        "inputs": text_in,
        "output": text_out,
        "latency_ms": float(lat),
        "status": _int(r.get("status", 200), "status", 100, 599),
        "ts": _int(r.get("ts", now_ms()), "ts"),
    }


def _rollup_row(r: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"minute": _int(r.get("minute"), "minute")}
    row["minute"] -= row["minute"] % 60_000
    for f in ("deployment", "version", "route"):
        v = r.get(f, "")
        if not isinstance(v, str) or len(v) > 128:
            raise InvalidArgument(f"{f} must be a string of at most 128 characters")
        row[f] = v
    for c in COUNTER_COLUMNS:
        v = r.get(c, 0)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e15:
            raise InvalidArgument(f"{c} must be a non-negative number")
        row[c] = float(v) if c in ("latency_sum_ms", "cost") else int(v)
    return row


def _increment(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add the rows' counters to the stored minute (insert it if new)."""
    if not rows:
        return
    ins: Any = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(rollups_t)
    stmt = ins.on_conflict_do_update(
        index_elements=["minute", "deployment", "version", "route"],
        set_={c: rollups_t.c[c] + ins.excluded[c] for c in COUNTER_COLUMNS},
    )
    conn.execute(stmt, rows)


def _monitor(row: Any) -> Monitor:
    cfg = orjson.loads(row.config)
    return Monitor(
        name=row.name,
        kind=row.kind,
        deployment=row.deployment,
        interval_s=row.interval_s,
        window_s=row.window_s,
        cooldown_s=row.cooldown_s,
        webhook_url=row.webhook_url,
        has_secret=bool(row.webhook_secret),
        enabled=bool(row.enabled),
        last_window_end=row.last_window_end,
        created_at=row.created_at,
        created_by=row.created_by,
        **cfg,
    )


def _alert(row: Any, deployment: str = "") -> Alert:
    return Alert(
        id=row.id,
        monitor=row.monitor,
        deployment=deployment,
        state=row.state,
        value=row.value,
        message=row.message,
        details=orjson.loads(row.details),
        window_end=row.window_end,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        notified_at=row.notified_at,
        resolved_at=row.resolved_at,
        notifications=row.notifications,
    )


class MonitoringService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ the log

    def ingest(
        self, predictions: Iterable[Mapping[str, Any]], rollups: Iterable[Mapping[str, Any]]
    ) -> dict[str, int]:
        preds = [_pred_row(p) for p in predictions]
        rolls = [_rollup_row(r) for r in rollups]
        if len(preds) > MAX_BATCH * 10 or len(rolls) > MAX_BATCH:
            raise PayloadTooLarge(f"at most {MAX_BATCH * 10} predictions per batch")
        with self.db.write() as conn:
            if preds:
                # a retried batch is stored once (request id and row are unique)
                upsert(conn, predictions_t, preds, ["request_id", "row_index"], ["ts"])
            _increment(conn, rolls)
        return {"predictions": len(preds), "rollups": len(rolls)}

    def add_labels(self, labels: Iterable[Mapping[str, Any]]) -> int:
        rows = []
        now = now_ms()
        for lab in labels:
            if not isinstance(lab, Mapping) or "label" not in lab:
                raise InvalidArgument("each label needs request_id and label")
            text = _json(lab["label"])
            if len(text) > 100_000 or "\\u0000" in text:
                raise PayloadTooLarge("a label is over 100 KB (or holds NUL)")
            rows.append(
                {
                    "request_id": _ident(lab.get("request_id"), "request_id"),
                    "row_index": _int(lab.get("row_index", 0), "row_index", 0, 10**7),
                    "label": text,
                    "created_at": now,
                }
            )
        if len(rows) > MAX_BATCH * 10:
            raise PayloadTooLarge(f"at most {MAX_BATCH * 10} labels per call")
        with self.db.write() as conn:
            upsert(conn, labels_t, rows, ["request_id", "row_index"], ["label", "created_at"])
        return len(rows)

    def predictions(
        self,
        deployment: str | None = None,
        *,
        since: int | None = None,
        until: int | None = None,
        version: str | None = None,
        labelled: bool | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        _int(limit, "limit", 1, 1_000_000)
        p, lab = predictions_t, labels_t
        q = (
            sa.select(p, lab.c.label, lab.c.created_at.label("labelled_at"))
            .select_from(
                p.outerjoin(
                    lab,
                    sa.and_(lab.c.request_id == p.c.request_id, lab.c.row_index == p.c.row_index),
                )
            )
            .order_by(p.c.ts.desc(), p.c.id.desc())
            .limit(limit)
        )
        if deployment is not None:
            q = q.where(p.c.deployment == deployment)
        if version is not None:
            q = q.where(p.c.version == version)
        if since is not None:
            q = q.where(p.c.ts >= _int(since, "since"))
        if until is not None:
            q = q.where(p.c.ts < _int(until, "until"))
        if labelled is True:
            q = q.where(lab.c.label.is_not(None))
        elif labelled is False:
            q = q.where(lab.c.label.is_(None))
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return [
            {
                "request_id": r.request_id,
                "row_index": r.row_index,
                "deployment": r.deployment,
                "model": r.model,
                "version": r.version,
                "route": r.route,
                "inputs": orjson.loads(r.inputs),
                "output": orjson.loads(r.output) if r.output is not None else None,
                "latency_ms": r.latency_ms,
                "status": r.status,
                "ts": r.ts,
                "label": orjson.loads(r.label) if r.label is not None else None,
                "labelled_at": r.labelled_at,
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ metrics

    def metrics(
        self,
        deployment: str | None = None,
        *,
        since: int,
        until: int,
        bucket_s: int = 60,
        by_version: bool = False,
    ) -> list[dict[str, Any]]:
        """Rolled-up series: one point per ``bucket_s`` (a multiple of 60) and version."""
        _int(since, "since")
        _int(until, "until")
        _int(bucket_s, "bucket_s", 60, 30 * 86_400)
        if bucket_s % 60:
            raise InvalidArgument("bucket_s must be a multiple of 60")
        r = rollups_t
        # Per minute, the index (deployment, minute) gives the groups in order: no sort.
        bucket = (
            r.c.minute if bucket_s == 60 else (r.c.minute - r.c.minute % (bucket_s * 1000))
        ).label("bucket")
        keys = [bucket, *([r.c.version] if by_version else [])]
        q = (
            sa.select(*keys, *(sa.func.sum(r.c[c]).label(c) for c in COUNTER_COLUMNS))
            .where(r.c.minute >= since - since % 60_000, r.c.minute < until)
            .group_by(*keys)
            .order_by(bucket)
        )
        if deployment is not None:
            q = q.where(r.c.deployment == deployment)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return _points(rows, bucket_s, by_version)

    def summary(self, deployment: str | None, *, since: int, until: int) -> dict[str, Any]:
        r = rollups_t
        q = sa.select(*(sa.func.sum(r.c[c]).label(c) for c in COUNTER_COLUMNS)).where(
            r.c.minute >= since, r.c.minute < until
        )
        if deployment is not None:
            q = q.where(r.c.deployment == deployment)
        with self.db.read() as conn:
            row = conn.execute(q).mappings().one()
        return summarize({k: v or 0 for k, v in row.items()}, (until - since) / 1000)

    def series_keys(self, since: int) -> list[dict[str, Any]]:
        """Each (deployment, version, route) with its counters since ``since`` (for /metrics)."""
        r = rollups_t
        keys = [r.c.deployment, r.c.version, r.c.route]
        q = (
            sa.select(*keys, *(sa.func.sum(r.c[c]).label(c) for c in COUNTER_COLUMNS))
            .where(r.c.minute >= since)
            .group_by(*keys)
        )
        with self.db.read() as conn:
            return [dict(m) for m in conn.execute(q).mappings().all()]

    # ------------------------------------------------------------------ monitors

    def create_monitor(self, m: Monitor, *, secret: str | None, author: str) -> Monitor:
        _ident(m.name, "name", NAME_RE)
        if not m.deployment or len(m.deployment) > 128:
            raise InvalidArgument("deployment must be a non-empty name")
        if m.kind == "metric" and m.metric not in METRICS:
            raise InvalidArgument(f"metric must be one of {', '.join(METRICS)}")
        if m.kind in ("drift", "embedding") and not m.reference:
            raise InvalidArgument(f"a {m.kind} monitor needs a reference dataset version")
        if m.webhook_url is not None and not re.match(r"^https?://\S{1,2000}$", m.webhook_url):
            raise InvalidArgument("webhook_url must be an http(s) URL")
        cfg = {
            k: getattr(m, k)
            for k in ("metric", "op", "threshold", "reference", "features", "min_rows", "text")
        }
        now = now_ms()
        with self.db.write() as conn:
            if conn.execute(
                sa.select(monitors_t.c.name).where(monitors_t.c.name == m.name)
            ).first():
                raise AlreadyExists(f"monitor {m.name!r} exists", details={"name": m.name})
            conn.execute(
                monitors_t.insert().values(
                    name=m.name,
                    kind=m.kind,
                    deployment=m.deployment,
                    config=_json(cfg),
                    interval_s=m.interval_s,
                    window_s=m.window_s,
                    cooldown_s=m.cooldown_s,
                    webhook_url=m.webhook_url,
                    webhook_secret=secret or None,
                    enabled=m.enabled,
                    last_window_end=None,
                    created_at=now,
                    created_by=author,
                )
            )
        return self.get_monitor(m.name)

    def get_monitor(self, name: str) -> Monitor:
        with self.db.read() as conn:
            row = conn.execute(sa.select(monitors_t).where(monitors_t.c.name == name)).first()
        if row is None:
            raise NotFound(f"no monitor {name!r}", details={"name": name})
        return _monitor(row)

    def monitor_secret(self, name: str) -> str | None:
        with self.db.read() as conn:
            secret = conn.execute(
                sa.select(monitors_t.c.webhook_secret).where(monitors_t.c.name == name)
            ).scalar()
        return None if secret is None else str(secret)

    def list_monitors(self) -> list[Monitor]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(monitors_t).order_by(monitors_t.c.name)).all()
        return [_monitor(r) for r in rows]

    def delete_monitor(self, name: str) -> None:
        with self.db.write() as conn:
            if conn.execute(monitors_t.delete().where(monitors_t.c.name == name)).rowcount == 0:
                raise NotFound(f"no monitor {name!r}", details={"name": name})

    def claim_window(self, name: str, window_end: int) -> bool:
        """Mark ``window_end`` checked for the monitor; False when it was already (another replica)."""
        with self.db.write() as conn:
            res = conn.execute(
                monitors_t.update()
                .where(
                    monitors_t.c.name == name,
                    sa.or_(
                        monitors_t.c.last_window_end.is_(None),
                        monitors_t.c.last_window_end < window_end,
                    ),
                )
                .values(last_window_end=window_end)
            )
            return bool(res.rowcount)

    # ------------------------------------------------------------------ alerts

    def open_alert(self, monitor: str) -> Alert | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(alerts_t).where(
                    alerts_t.c.monitor == monitor, alerts_t.c.state == "firing"
                )
            ).first()
        return None if row is None else _alert(row)

    def record_alert(
        self,
        monitor: Monitor,
        *,
        breached: bool,
        value: float | None,
        message: str,
        details: Mapping[str, Any],
        window_end: int,
        now: int,
    ) -> Alert | None:
        """Open, refresh or resolve the monitor's alert; the alert with ``change`` set, when
        something is to be announced (opened, still firing after the cooldown, resolved)."""
        change: str | None
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(alerts_t).where(
                    alerts_t.c.monitor == monitor.name, alerts_t.c.state == "firing"
                )
            ).first()
            if breached and row is None:
                aid = uuid.uuid4().hex
                conn.execute(
                    alerts_t.insert().values(
                        id=aid,
                        monitor=monitor.name,
                        state="firing",
                        value=value,
                        message=message,
                        details=_json(details),
                        window_end=window_end,
                        opened_at=now,
                        updated_at=now,
                        notified_at=now,
                        resolved_at=None,
                        notifications=1,
                    )
                )
                change = "opened"
            elif breached and row is not None:
                aid = row.id
                due = row.notified_at is None or now - row.notified_at >= monitor.cooldown_s * 1000
                values: dict[str, Any] = {
                    "value": value,
                    "message": message,
                    "details": _json(details),
                    "window_end": window_end,
                    "updated_at": now,
                }
                if due:
                    values.update(notified_at=now, notifications=row.notifications + 1)
                conn.execute(alerts_t.update().where(alerts_t.c.id == aid).values(**values))
                change = "still_firing" if due else None
            elif row is not None:
                aid = row.id
                conn.execute(
                    alerts_t.update()
                    .where(alerts_t.c.id == aid)
                    .values(
                        state="resolved",
                        value=value,
                        window_end=window_end,
                        updated_at=now,
                        resolved_at=now,
                        notifications=row.notifications + 1,
                        notified_at=now,
                    )
                )
                change = "resolved"
            else:
                return None
            out = _alert(conn.execute(sa.select(alerts_t).where(alerts_t.c.id == aid)).one())
        if change is None:
            return None
        return out.model_copy(update={"change": change, "deployment": monitor.deployment})

    def alerts(
        self, *, monitor: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Alert]:
        _int(limit, "limit", 1, 10_000)
        if state is not None and state not in ("firing", "resolved"):
            raise InvalidArgument("state must be firing or resolved")
        q = sa.select(alerts_t).order_by(alerts_t.c.opened_at.desc()).limit(limit)
        if monitor is not None:
            q = q.where(alerts_t.c.monitor == monitor)
        if state is not None:
            q = q.where(alerts_t.c.state == state)
        with self.db.read() as conn:
            return [_alert(r) for r in conn.execute(q).all()]
