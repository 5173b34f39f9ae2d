"""Writing normalised spans: one transaction per batch, traces merged in SQL.

A batch is de-duplicated against what is stored (an exporter retrying after a
lost reply sends the same spans again), then the traces it touches are
upserted with merge expressions (earliest start, latest end, counters added,
the root span's name), the per-trace model usage likewise, and the new spans
inserted. A trace's spans may arrive over many batches in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.tracing._prices import PriceTable
from opsloop.tracing._tables import spans, trace_models, traces

_IN_CHUNK = 400


def _chunks(seq: Sequence[Any], n: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


_STMTS: dict[str, dict[str, Any]] = {}


class _Raw:
    """A statement compiled once and run as driver SQL with ``executemany``.

    On the ingest path SQLAlchemy's per-row parameter processing costs more
    than SQLite's insert; these statements only bind plain ints, floats and
    strings, which need no processing.
    """

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.keys = list(compiled.positiontup) if compiled.positional else None

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if self.keys is not None:
            keys = self.keys
            conn.exec_driver_sql(self.sql, [tuple([r[k] for k in keys]) for r in rows])
        else:
            conn.exec_driver_sql(self.sql, rows)  # type: ignore[arg-type,unused-ignore]


def _statements(conn: Connection) -> dict[str, Any]:
    """Upserts built once per dialect (building one costs more than running it)."""
    dialect = conn.dialect.name
    dialect_obj = conn.dialect
    got = _STMTS.get(dialect)
    if got is not None:
        return got
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        ins_t, ins_m = pg_insert(traces), pg_insert(trace_models)
        least: Any = sa.func.least
        greatest: Any = sa.func.greatest
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ins_t, ins_m = sqlite_insert(traces), sqlite_insert(trace_models)  # type: ignore[assignment]
        least, greatest = sa.func.min, sa.func.max  # two-argument min/max are scalar in SQLite
    t, x = traces.c, ins_t.excluded
    errors = t.error_count + x.error_count
    upsert_traces = ins_t.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "start_us": least(t.start_us, x.start_us),
            "end_us": greatest(t.end_us, x.end_us),
            "duration_us": greatest(t.end_us, x.end_us) - least(t.start_us, x.start_us),
            "span_count": t.span_count + x.span_count,
            "error_count": errors,
            # Literals, not bound values: the statement runs as plain driver SQL.
            "status": sa.case(
                (errors > sa.literal_column("0"), sa.literal_column("'ERROR'")),
                else_=sa.literal_column("'OK'"),
            ),
            # Until its root span arrives a trace is named after some other span.
            "name": sa.case((x.root_span_id.is_not(None), x.name), else_=t.name),
            "root_span_id": sa.func.coalesce(x.root_span_id, t.root_span_id),
            "user_id": sa.func.coalesce(x.user_id, t.user_id),
            "session_id": sa.func.coalesce(x.session_id, t.session_id),
            "input_tokens": t.input_tokens + x.input_tokens,
            "output_tokens": t.output_tokens + x.output_tokens,
            "total_cost": t.total_cost + x.total_cost,
            "tags": sa.func.coalesce(x.tags, t.tags),
            "service_name": sa.func.coalesce(t.service_name, x.service_name),
            "experiment_id": sa.func.coalesce(x.experiment_id, t.experiment_id),
            "deployment_id": sa.func.coalesce(x.deployment_id, t.deployment_id),
        },
    )
    m, mx = trace_models.c, ins_m.excluded
    upsert_models = ins_m.on_conflict_do_update(
        index_elements=["trace_id", "model"],
        set_={
            "start_us": least(m.start_us, mx.start_us),
            "calls": m.calls + mx.calls,
            "input_tokens": m.input_tokens + mx.input_tokens,
            "output_tokens": m.output_tokens + mx.output_tokens,
            "cost": m.cost + mx.cost,
            "latencies_us": m.latencies_us + sa.literal_column("','") + mx.latencies_us,
        },
    )
    # A trace's start moves earlier when its root arrives late; keep the copy in step.
    sync_model_start = (
        trace_models.update()
        .where(trace_models.c.trace_id.in_(sa.bindparam("ids", expanding=True)))
        .values(
            start_us=sa.select(traces.c.start_us)
            .where(traces.c.id == trace_models.c.trace_id)
            .scalar_subquery()
        )
    )
    got = {
        "upsert_traces": _Raw(upsert_traces, dialect_obj),
        "upsert_models": _Raw(upsert_models, dialect_obj),
        "sync_model_start": sync_model_start,
        "insert_spans": _Raw(spans.insert(), dialect_obj),
        "existing_traces": sa.select(traces.c.id).where(
            traces.c.id.in_(sa.bindparam("ids", expanding=True))
        ),
        "existing_spans": sa.select(spans.c.trace_id, spans.c.span_id).where(
            sa.tuple_(spans.c.trace_id, spans.c.span_id).in_(sa.bindparam("pairs", expanding=True))
        ),
    }
    _STMTS[dialect] = got
    return got


def write_spans(
    conn: Connection, rows: list[dict[str, Any]], prices: PriceTable
) -> tuple[int, int]:
    """Store normalised span rows in the caller's transaction; return (stored, duplicates)."""
    st = _statements(conn)
    # The same span twice in one batch: the last copy wins.
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        unique[(r["trace_id"], r["span_id"])] = r
    trace_ids = sorted({k[0] for k in unique})
    existing: set[str] = set()
    for chunk in _chunks(trace_ids):
        existing.update(conn.execute(st["existing_traces"], {"ids": list(chunk)}).scalars())
    stored: set[tuple[str, str]] = set()
    if existing:
        # Only spans of traces already stored can be duplicates: one key lookup each.
        candidates = [k for k in unique if k[0] in existing]
        for chunk in _chunks(candidates):
            stored.update(
                (a, b) for a, b in conn.execute(st["existing_spans"], {"pairs": list(chunk)})
            )
    new_rows = [r for k, r in unique.items() if k not in stored]
    duplicates = len(rows) - len(new_rows)
    if not new_rows:
        return 0, duplicates

    trace_rows: dict[str, dict[str, Any]] = {}
    model_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in new_rows:
        if r["cost"] is None and r["model"]:
            r["cost"] = prices.cost(r["model"], r["input_tokens"], r["output_tokens"])
        tid = r["trace_id"]
        is_root = r["parent_span_id"] is None
        tr = trace_rows.get(tid)
        if tr is None:
            tr = trace_rows[tid] = {
                "id": tid,
                "name": r["name"],
                "root_span_id": None,
                "start_us": r["start_us"],
                "end_us": r["end_us"],
                "status": "OK",
                "span_count": 0,
                "error_count": 0,
                "user_id": None,
                "session_id": None,
                "input_tokens": 0,
                "output_tokens": 0,
                "total_cost": 0.0,
                "tags": None,
                "service_name": None,
                "experiment_id": None,
                "deployment_id": None,
            }
        else:
            tr["start_us"] = min(tr["start_us"], r["start_us"])
            tr["end_us"] = max(tr["end_us"], r["end_us"])
        if is_root:
            tr["root_span_id"] = r["span_id"]
            tr["name"] = r["name"]
        tr["span_count"] += 1
        if r["status"] == "ERROR":
            tr["error_count"] += 1
            tr["status"] = "ERROR"
        tr["input_tokens"] += r["input_tokens"] or 0
        tr["output_tokens"] += r["output_tokens"] or 0
        tr["total_cost"] += r["cost"] or 0.0
        # Root spans speak for the trace; otherwise the first span that says anything.
        for col, key in (
            ("user_id", "_user"),
            ("session_id", "_session"),
            ("service_name", "_service"),
            ("experiment_id", "_experiment"),
            ("deployment_id", "_deployment"),
        ):
            v = r[key]
            if v is not None and (is_root or tr[col] is None):
                tr[col] = v
        if r["_tags"] is not None and (is_root or tr["tags"] is None):
            tr["tags"] = orjson.dumps(r["_tags"]).decode()
        if r["model"]:
            mk = (tid, r["model"])
            mr = model_rows.get(mk)
            if mr is None:
                mr = model_rows[mk] = {
                    "trace_id": tid,
                    "model": r["model"],
                    "start_us": 0,
                    "calls": 0,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost": 0.0,
                    "latencies_us": [],
                }
            mr["calls"] += 1
            mr["latencies_us"].append(r["end_us"] - r["start_us"])
            mr["input_tokens"] += r["input_tokens"] or 0
            mr["output_tokens"] += r["output_tokens"] or 0
            mr["cost"] += r["cost"] or 0.0
    for tr in trace_rows.values():
        tr["duration_us"] = tr["end_us"] - tr["start_us"]
    for mr in model_rows.values():
        mr["start_us"] = trace_rows[mr["trace_id"]]["start_us"]
        mr["latencies_us"] = ",".join(map(str, mr["latencies_us"]))

    st["upsert_traces"].run(conn, list(trace_rows.values()))
    if model_rows:
        st["upsert_models"].run(conn, list(model_rows.values()))
    moved = [tid for tid in trace_rows if tid in existing]
    for chunk in _chunks(moved):
        conn.execute(st["sync_model_start"], {"ids": list(chunk)})
    st["insert_spans"].run(conn, new_rows)
    return len(new_rows), duplicates
