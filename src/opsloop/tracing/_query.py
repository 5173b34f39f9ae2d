"""Reading traces: filtered lists with keyset pagination, span trees, statistics.

Lists are ordered by start time (newest first by default) and paged with a
keyset token (the last row's ``(start_us, id)``), so a deep page costs what
the first one costs. Filtering by model walks ``trace_models``' index; every
other filter is a condition on ``traces``, whose indexes all end in
``(start_us, id)``.
"""

from __future__ import annotations

import base64
import math
import time
from collections import defaultdict
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound
from opsloop.tracing._filter import TraceFilter, conditions, uses_model
from opsloop.tracing._tables import spans, trace_models, traces
from opsloop.tracing.entities import (
    DayStats,
    ModelStats,
    SpanNode,
    TraceDetail,
    TracePage,
    TraceStats,
    TraceSummary,
)

MAX_PAGE = 1000
MAX_TRACE_SPANS = 100_000
_T = traces.c
_M = trace_models.c


# Sort keys a list can be ordered by (the filter language's names); start time is
# the default. Ties are broken by (start_us, id), so every order is total and keyset
# pages never skip or repeat a trace.
SORT_KEYS: dict[str, Any] = {
    "start_time": None,
    "latency_ms": _T.duration_us,
    "cost": _T.total_cost,
    "tokens": _T.input_tokens + _T.output_tokens,
    "input_tokens": _T.input_tokens,
    "output_tokens": _T.output_tokens,
    "spans": _T.span_count,
    "errors": _T.error_count,
    "name": _T.name,
}


def encode_token(start_us: int, trace_id: str, order: str, sort: Any = None) -> str:
    """A page token; ``sort`` is ``(key, value)`` for an order other than start time."""
    raw = orjson.dumps([start_us, trace_id, order] + ([*sort] if sort else []))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(
    token: str | None, order: str, sort: str = "start_time"
) -> tuple[int, str, Any] | None:
    """``(start_us, id, sort value)`` from a token this server issued for ``order``/``sort``."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parts = orjson.loads(raw)
        start, tid, o = parts[:3]
        if not isinstance(start, int) or not isinstance(tid, str) or o != order:
            raise ValueError
        value: Any = None
        if sort == "start_time":
            if len(parts) != 3:
                raise ValueError
        else:
            key, value = parts[3:]
            if key != sort or isinstance(value, bool):
                raise ValueError
            if not isinstance(value, str if sort == "name" else (int, float)):
                raise ValueError
    except Exception as exc:
        raise InvalidArgument(
            "page_token is not one this server issued for this order and sort"
        ) from exc
    return start, tid, value


def _summary(row: Any, models: list[str]) -> TraceSummary:
    return TraceSummary(
        id=row.id,
        name=row.name,
        root_span_id=row.root_span_id,
        start_us=row.start_us,
        end_us=row.end_us,
        duration_ms=row.duration_us / 1000,
        status=row.status,
        span_count=row.span_count,
        error_count=row.error_count,
        user_id=row.user_id,
        session_id=row.session_id,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        total_cost=row.total_cost,
        models=models,
        tags=orjson.loads(row.tags) if row.tags else [],
        service_name=row.service_name,
        experiment_id=row.experiment_id,
        deployment_id=row.deployment_id,
    )


def _models_of(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    if ids:
        q = sa.select(_M.trace_id, _M.model).where(_M.trace_id.in_(ids)).order_by(_M.model)
        for tid, model in conn.execute(q):
            out[tid].append(model)
    return out


RANGE_INDEX_MAX_ROWS = 5_000


def _range_index_pays(conn: Connection, f: TraceFilter) -> bool:
    """True when a latency or cost bound is rare enough to drive the query (SQLite).

    PostgreSQL's planner has column statistics and decides this itself; SQLite's
    has none for ranges, so count (up to a cap) how many traces pass the bound.
    """
    if conn.dialect.name != "sqlite":
        return False
    if any(
        v is not None
        for v in (
            f.user_id,
            f.session_id,
            f.name,
            f.status,
            f.has_error,
            f.experiment_id,
            f.deployment_id,
        )
    ):
        return False  # an equality index already narrows the walk
    bounds = []
    if f.min_latency_ms is not None:
        bounds.append(_T.duration_us >= int(f.min_latency_ms * 1000))
    if f.min_cost is not None:
        bounds.append(_T.total_cost >= f.min_cost)
    for cond in bounds:
        capped = sa.select(sa.literal(1)).where(cond).limit(RANGE_INDEX_MAX_ROWS + 1).subquery()
        n = conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
        if n <= RANGE_INDEX_MAX_ROWS:
            return True
    return False


def list_traces(
    conn: Connection,
    f: TraceFilter,
    *,
    limit: int = 50,
    page_token: str | None = None,
    order: str = "desc",
    sort: str = "start_time",
) -> TracePage:
    """One page of traces matching ``f``, newest first (``order="asc"``: oldest first).

    ``sort`` orders by another key of ``SORT_KEYS`` (ties by start time, then id).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    if order not in ("asc", "desc"):
        raise InvalidArgument("order must be 'asc' or 'desc'")
    if sort not in SORT_KEYS:
        raise InvalidArgument(
            f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}",
            details={"sort": sort},
        )
    cursor = decode_token(page_token, order, sort)
    if sort != "start_time":
        return _list_sorted(conn, f, limit, cursor, order, sort)
    # A user, session or exact name picks out fewer traces than a model does: then
    # walk that index and check the model per trace instead of the other way round.
    narrow = f.user_id is not None or f.session_id is not None or f.name is not None
    key_s: Any
    key_id: Any
    if f.model is not None and narrow:
        q = sa.select(traces).where(uses_model(f.model))
        key_s, key_id = _T.start_us, _T.id
    elif f.model is not None:
        # Drive from the model index; the join fetches each trace by primary key.
        key_s, key_id = _M.start_us, _M.trace_id
        q = (
            sa.select(traces)
            .select_from(trace_models.join(traces, _T.id == _M.trace_id))
            .where(_M.model == f.model)
        )
    else:
        key_s, key_id = _T.start_us, _T.id
        q = sa.select(traces)
        if _range_index_pays(conn, f):
            # Few traces pass the latency/cost bound: read them off its index and
            # sort them, rather than walk the start-time index past thousands that fail.
            # (+0 keeps SQLite from walking the start-time index anyway.)
            key_s, key_id = _T.start_us + 0, _T.id
    if f.since_ms is not None:
        q = q.where(key_s >= f.since_ms * 1000)
    if f.until_ms is not None:
        q = q.where(key_s < f.until_ms * 1000)
    for cond in conditions(f):
        q = q.where(cond)
    if cursor is not None:
        after = sa.tuple_(key_s, key_id)
        last = sa.tuple_(*cursor[:2])
        q = q.where(after < last if order == "desc" else after > last)
    if order == "desc":
        q = q.order_by(key_s.desc(), key_id.desc())
    else:
        q = q.order_by(key_s.asc(), key_id.asc())
    rows = conn.execute(q.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    models = _models_of(conn, [r.id for r in rows])
    page = [_summary(r, models.get(r.id, [])) for r in rows]
    token = encode_token(rows[-1].start_us, rows[-1].id, order) if more and rows else None
    return TracePage(traces=page, next_page_token=token)


def _list_sorted(
    conn: Connection,
    f: TraceFilter,
    limit: int,
    cursor: tuple[int, str, Any] | None,
    order: str,
    sort: str,
) -> TracePage:
    """A page ordered by a key other than start time: a sort over the matching rows."""
    key = SORT_KEYS[sort]
    value = key.label("sort_value")
    q = sa.select(traces, value)
    if f.model is not None:
        q = q.where(uses_model(f.model))
    if f.since_ms is not None:
        q = q.where(_T.start_us >= f.since_ms * 1000)
    if f.until_ms is not None:
        q = q.where(_T.start_us < f.until_ms * 1000)
    for cond in conditions(f):
        q = q.where(cond)
    cols = (key, _T.start_us, _T.id)
    if cursor is not None:
        after = sa.tuple_(*cols)
        last = sa.tuple_(cursor[2], cursor[0], cursor[1])
        q = q.where(after < last if order == "desc" else after > last)
    q = q.order_by(*(c.desc() if order == "desc" else c.asc() for c in cols))
    rows = conn.execute(q.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    models = _models_of(conn, [r.id for r in rows])
    page = [_summary(r, models.get(r.id, [])) for r in rows]
    token = None
    if more and rows:
        last_row = rows[-1]
        token = encode_token(last_row.start_us, last_row.id, order, (sort, last_row.sort_value))
    return TracePage(traces=page, next_page_token=token)


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def get_trace(conn: Connection, trace_id: str, *, flat: bool = False) -> TraceDetail:
    """A trace with its spans as a tree (``flat``: depth-first list), timed from the trace start."""
    row = conn.execute(sa.select(traces).where(_T.id == trace_id)).first()
    if row is None:
        raise NotFound(f"trace {trace_id!r} not found", details={"trace_id": trace_id})
    span_rows = conn.execute(
        sa.select(spans)
        .where(spans.c.trace_id == trace_id)
        .order_by(spans.c.start_us, spans.c.span_id)
        .limit(MAX_TRACE_SPANS)
    ).all()
    models = _models_of(conn, [trace_id]).get(trace_id, [])
    t0 = row.start_us
    nodes: dict[str, SpanNode] = {}
    for s in span_rows:
        nodes[s.span_id] = SpanNode(
            span_id=s.span_id,
            parent_span_id=s.parent_span_id,
            name=s.name,
            kind=s.kind,
            start_us=s.start_us,
            end_us=s.end_us,
            offset_ms=(s.start_us - t0) / 1000,
            duration_ms=(s.end_us - s.start_us) / 1000,
            depth=0,
            status=s.status,
            status_message=s.status_message,
            model=s.model,
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            cost=s.cost,
            attributes=orjson.loads(s.attributes),
            inputs=_loads(s.inputs),
            outputs=_loads(s.outputs),
            events=_loads(s.events) or [],
        )
    roots: list[SpanNode] = []
    for n in nodes.values():  # start order, so children come out sorted
        parent = nodes.get(n.parent_span_id) if n.parent_span_id else None
        if parent is None:
            roots.append(n)  # a root, or a span whose parent never arrived
        else:
            parent.children.append(n)
    ordered: list[SpanNode] = []
    stack = [(r, 0) for r in reversed(roots)]
    seen: set[str] = set()
    while stack:  # iterative: a deep agent loop must not hit the recursion limit
        n, depth = stack.pop()
        if n.span_id in seen:
            continue
        seen.add(n.span_id)
        n.depth = depth
        ordered.append(n)
        stack.extend((c, depth + 1) for c in reversed(n.children))
    if flat:
        for n in ordered:
            n.children = []
        out = ordered
    else:
        out = roots
    summary = _summary(row, models)
    return TraceDetail(**summary.model_dump(), spans=out)


def _pct(sorted_vals: list[int], q: float) -> float | None:
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[k] / 1000


_DAY_US = 86_400_000_000


def _day(us: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(us / 1e6))


def stats(conn: Connection, f: TraceFilter) -> TraceStats:
    """Counts, latency percentiles, tokens and cost, in total, per UTC day and per model."""
    conds = conditions(f)
    if f.model is not None:
        conds.append(uses_model(f.model))
    if f.since_ms is not None:
        conds.append(_T.start_us >= f.since_ms * 1000)
    if f.until_ms is not None:
        conds.append(_T.start_us < f.until_ms * 1000)
    q = sa.select(
        _T.start_us, _T.duration_us, _T.status, _T.input_tokens, _T.output_tokens, _T.total_cost
    ).where(*conds)
    days: dict[int, list[Any]] = {}  # UTC day number -> durations, errors, in, out, cost
    for start, dur, status, tin, tout, cost in conn.execute(q):
        d = days.get(start // _DAY_US)
        if d is None:
            d = days[start // _DAY_US] = [[], 0, 0, 0, 0.0]
        d[0].append(dur)
        d[1] += status == "ERROR"
        d[2] += tin
        d[3] += tout
        d[4] += cost
    by_day = []
    all_durations: list[int] = []
    for day_no in sorted(days):
        durs, errs, tin, tout, cost = days[day_no]
        all_durations.extend(durs)
        durs.sort()
        day = _day(day_no * _DAY_US)
        by_day.append(
            DayStats(
                day=day,
                traces=len(durs),
                errors=errs,
                p50_ms=_pct(durs, 0.5),
                p95_ms=_pct(durs, 0.95),
                input_tokens=tin,
                output_tokens=tout,
                cost=cost,
            )
        )
    all_durations.sort()

    # Per model, from the per-trace rollup (usage and each call's latency).
    cols = (_M.model, _M.calls, _M.input_tokens, _M.output_tokens, _M.cost, _M.latencies_us)
    if conds:
        use_q = sa.select(*cols).select_from(traces.join(trace_models, _M.trace_id == _T.id))
        use_q = use_q.where(*conds)
    else:
        use_q = sa.select(*cols)  # everything: no join needed
    usage: dict[str, list[Any]] = {}
    for model, calls, tin, tout, cost, lat in conn.execute(use_q):
        u = usage.get(model)
        if u is None:
            u = usage[model] = [0, 0, 0, 0.0, []]
        u[0] += calls
        u[1] += tin
        u[2] += tout
        u[3] += cost
        if lat:
            u[4].append(lat)
    by_model = []
    for model, (calls, tin, tout, cost, lats) in usage.items():
        durs = sorted(map(int, ",".join(lats).split(","))) if lats else []
        by_model.append(
            ModelStats(
                model=model,
                calls=int(calls),
                p50_ms=_pct(durs, 0.5),
                p95_ms=_pct(durs, 0.95),
                input_tokens=int(tin),
                output_tokens=int(tout),
                cost=float(cost),
            )
        )
    by_model.sort(key=lambda m: (-m.cost, -m.calls, m.model))
    return TraceStats(
        traces=sum(d.traces for d in by_day),
        errors=sum(d.errors for d in by_day),
        p50_ms=_pct(all_durations, 0.5),
        p95_ms=_pct(all_durations, 0.95),
        input_tokens=sum(d.input_tokens for d in by_day),
        output_tokens=sum(d.output_tokens for d in by_day),
        cost=float(sum(d.cost for d in by_day)),
        by_day=by_day,
        by_model=by_model,
    )
