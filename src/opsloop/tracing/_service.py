"""Tracing logic over a ``Database``: ingest spans, list and read traces, statistics, prices.

Every public method is one transaction. Ingest masks before anything is
written, refuses a malformed opsloop batch as a whole (nothing stored), and
rejects malformed OTLP spans one by one (the rest are stored), as OTLP asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from opsloop.errors import Conflict, InvalidArgument, NotFound, PayloadTooLarge
from opsloop.settings import Settings
from opsloop.store import Database, now_ms
from opsloop.tracing import _otlp, _query
from opsloop.tracing._filter import TraceFilter
from opsloop.tracing._ingest import write_spans
from opsloop.tracing._masking import Masker
from opsloop.tracing._normalize import normalize_span
from opsloop.tracing._prices import PriceTable, check_price
from opsloop.tracing._tables import model_prices, spans, trace_models, traces
from opsloop.tracing.entities import (
    IngestResult,
    ModelPrice,
    TraceDetail,
    TracePage,
    TraceStats,
)

MAX_BATCH_SPANS = 50_000
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def check_trace_id(trace_id: Any) -> str:
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
        raise InvalidArgument(f"trace id must be 32 lowercase hex digits, not {trace_id!r}")
    return trace_id


class TraceService:
    """Traces and spans stored in one ``Database``.

    ``settings`` gives the home (for its price file) and the masking patterns;
    ``mask_fn`` adds a masking function applied after the patterns.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings | None = None,
        *,
        mask_fn: Callable[[str], str] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.home = settings.home if settings is not None else None
        patterns = list(getattr(settings, "trace_mask_patterns", None) or [])
        self.masker = Masker(patterns, mask_fn)

    # ------------------------------------------------------------------ ingest

    def ingest(self, raw_spans: Sequence[Any]) -> IngestResult:
        """Store spans given as dicts (``_normalize`` form) in one transaction.

        A malformed span fails the whole batch with ``InvalidArgument`` naming
        it; spans already stored are skipped (counted as duplicates).
        """
        if not isinstance(raw_spans, list):
            raise InvalidArgument("spans must be a list")
        if len(raw_spans) > MAX_BATCH_SPANS:
            raise PayloadTooLarge(
                f"a batch holds at most {MAX_BATCH_SPANS} spans, not {len(raw_spans)}"
            )
        rows = [normalize_span(r, self.masker, i) for i, r in enumerate(raw_spans)]
        return self._write(rows)

    def ingest_otlp(self, body: bytes, content_type: str | None) -> tuple[IngestResult, str]:
        """Store an OTLP ``ExportTraceServiceRequest``; return the result and the body's media type.

        An undecodable body raises ``InvalidArgument``; spans that cannot be
        stored are left out and reported in ``rejected``/``errors``.
        """
        kind = _otlp.media_type(content_type)
        req = _otlp.decode_request(body, kind)
        raw, errors = _otlp.request_spans(req)
        if len(raw) > MAX_BATCH_SPANS:
            raise PayloadTooLarge(
                f"a request holds at most {MAX_BATCH_SPANS} spans, not {len(raw)}"
            )
        rows = []
        for i, r in enumerate(raw):
            try:
                rows.append(normalize_span(r, self.masker, i))
            except InvalidArgument as exc:
                errors.append(exc.message)
        result = self._write(rows) if rows else IngestResult(accepted=0, duplicates=0, rejected=0)
        result.rejected = len(errors)
        result.errors = errors[:20]
        return result, kind

    def _write(self, rows: list[dict[str, Any]]) -> IngestResult:
        for attempt in range(3):
            try:
                with self.db.write() as conn:
                    stored, dup = write_spans(conn, rows, self._price_table(conn))
                return IngestResult(accepted=stored, duplicates=dup, rejected=0)
            except sa.exc.IntegrityError as exc:
                # PostgreSQL: another transaction stored some of these spans first.
                # Retrying sees them and skips them.
                if attempt == 2:
                    raise Conflict(f"spans were written concurrently; retry: {exc.orig}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ prices

    def _price_table(self, conn: sa.Connection, *, strict: bool = False) -> PriceTable:
        custom = {
            m: (i, o)
            for m, i, o in conn.execute(
                sa.select(
                    model_prices.c.model,
                    model_prices.c.input_per_mtok,
                    model_prices.c.output_per_mtok,
                )
            )
        }
        return PriceTable.build(self.home, custom, strict=strict)

    def price_table(self) -> PriceTable:
        """The prices in force (defaults, the home's price file, then custom prices)."""
        with self.db.read() as conn:
            return self._price_table(conn, strict=True)

    def list_prices(self) -> list[ModelPrice]:
        """Every price entry with where it comes from; a malformed price file raises."""
        return [
            ModelPrice(
                model=p.model,
                input_per_mtok=p.input_per_mtok,
                output_per_mtok=p.output_per_mtok,
                source=p.source,
            )
            for p in self.price_table().prices
        ]

    def set_price(self, model: str, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
        """Set a custom price (US dollars per 1M tokens) used for spans stored from now on."""
        i, o = check_price(model, input_per_mtok, output_per_mtok)
        model = model.strip()
        ts = now_ms()
        with self.db.write() as conn:
            conn.execute(model_prices.delete().where(model_prices.c.model == model))
            conn.execute(
                model_prices.insert().values(
                    model=model, input_per_mtok=i, output_per_mtok=o, updated_at=ts
                )
            )
        return ModelPrice(model=model, input_per_mtok=i, output_per_mtok=o, source="custom")

    def delete_price(self, model: str) -> None:
        """Remove a custom price (the file's or default price applies again)."""
        with self.db.write() as conn:
            n = conn.execute(model_prices.delete().where(model_prices.c.model == model)).rowcount
        if not n:
            raise NotFound(f"no custom price is set for {model!r}", details={"model": model})

    # ------------------------------------------------------------------ reading

    def list_traces(
        self,
        criteria: TraceFilter | None = None,
        *,
        limit: int = 50,
        page_token: str | None = None,
        order: str = "desc",
        sort: str = "start_time",
        **filters: Any,
    ) -> TracePage:
        """A page of traces, newest first; filters as a ``TraceFilter`` or keyword arguments.

        ``sort`` orders by ``latency_ms``, ``cost``, ``tokens``, ``input_tokens``,
        ``output_tokens``, ``spans``, ``errors`` or ``name`` instead of start time.
        """
        f = _filter(criteria, filters)
        with self.db.read() as conn:
            return _query.list_traces(
                conn, f, limit=limit, page_token=page_token, order=order, sort=sort
            )

    def get_trace(self, trace_id: str, *, flat: bool = False) -> TraceDetail:
        """A trace and its span tree; ``NotFound`` if no span of it was stored."""
        check_trace_id(trace_id)
        with self.db.read() as conn:
            return _query.get_trace(conn, trace_id, flat=flat)

    def stats(self, criteria: TraceFilter | None = None, **filters: Any) -> TraceStats:
        """Totals, per UTC day and per model, of the traces matching the filters."""
        f = _filter(criteria, filters)
        with self.db.read() as conn:
            return _query.stats(conn, f)

    def delete_trace(self, trace_id: str) -> None:
        """Delete a trace and its spans."""
        check_trace_id(trace_id)
        with self.db.write() as conn:
            self._delete(conn, [trace_id])
            n = conn.execute(traces.delete().where(traces.c.id == trace_id)).rowcount
        if not n:
            raise NotFound(f"trace {trace_id!r} not found", details={"trace_id": trace_id})

    def purge(self, before_ms: int) -> int:
        """Delete every trace that started before ``before_ms`` (retention); return how many."""
        if isinstance(before_ms, bool) or not isinstance(before_ms, int):
            raise InvalidArgument("before_ms must be epoch milliseconds")
        with self.db.write() as conn:
            ids = list(
                conn.execute(
                    sa.select(traces.c.id).where(traces.c.start_us < before_ms * 1000)
                ).scalars()
            )
            for i in range(0, len(ids), 400):
                self.delete_rows(conn, ids[i : i + 400])
        return len(ids)

    @classmethod
    def delete_rows(cls, conn: sa.Connection, ids: list[str]) -> None:
        """Delete these traces with their spans and per-model rows (in ``conn``)."""
        cls._delete(conn, ids)
        conn.execute(traces.delete().where(traces.c.id.in_(ids)))

    @staticmethod
    def _delete(conn: sa.Connection, ids: list[str]) -> None:
        # Explicit, not only ON DELETE CASCADE: SQLite enforces it per connection setting.
        conn.execute(spans.delete().where(spans.c.trace_id.in_(ids)))
        conn.execute(trace_models.delete().where(trace_models.c.trace_id.in_(ids)))


def _filter(f: TraceFilter | None, kw: dict[str, Any]) -> TraceFilter:
    if f is not None and kw:
        raise InvalidArgument("give filters as a TraceFilter or as keywords, not both")
    if f is not None:
        return f
    try:
        return TraceFilter(**kw)
    except TypeError as exc:
        raise InvalidArgument(f"unknown trace filter: {exc}") from exc
