"""``Tracing(context)``: the tracing SDK on one context, embedded or remote.

Embedded, finished spans are written by the background exporter straight into
the context's database; remote, they are posted to ``/api/v1/traces/batch``.
Reading (list, get, stats) and prices work the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.tracing import _active, _emit
from opsloop.tracing._backend import EmbeddedTracing, TracingBackend
from opsloop.tracing._filter import TraceFilter
from opsloop.tracing._remote import RemoteTracing
from opsloop.tracing._service import _filter, check_trace_id
from opsloop.tracing._span import Span, Tracer
from opsloop.tracing.entities import (
    IngestResult,
    ModelPrice,
    TraceDetail,
    TracePage,
    TraceStats,
)

__all__ = ["Tracing"]


def _embedded(ctx: Context) -> TracingBackend:
    return EmbeddedTracing(ctx)


def _remote(ctx: Context) -> TracingBackend:
    return RemoteTracing(ctx)


class Tracing:
    """Emit spans to, and read traces from, the store or server a client points at.

    ``mask_fn`` masks every string of this client's spans before they are
    queued (after the settings' ``trace_mask_patterns``).
    """

    def __init__(
        self,
        context: Context | HasContext | None = None,
        *,
        mask_fn: Callable[[str], str] | None = None,
    ) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: TracingBackend = ctx.seam(_embedded, _remote)
        self.tracer = Tracer(self._write, ctx.settings, mask_fn=mask_fn)

    @property
    def context(self) -> Context:
        return self._context

    @property
    def is_remote(self) -> bool:
        return self._context.is_remote

    def _tracer(self) -> Tracer:
        return self.tracer

    def _write(self, spans: list[dict[str, Any]]) -> object:
        return self.ingest(spans)

    # ------------------------------------------------------------------ emitting

    def span(
        self,
        name: str,
        kind: str = "chain",
        *,
        attributes: Mapping[str, Any] | None = None,
        inputs: Any = None,
    ) -> Span:
        """Like ``opsloop.tracing.span``, exported through this client."""
        return _emit.span(
            name,
            kind,
            attributes=attributes,
            inputs=inputs,
            tracer=self.tracer,
            default=self._tracer,
        )

    def start_trace(self, name: str, **kw: Any) -> Span:
        """Like ``opsloop.tracing.start_trace``, exported through this client."""
        return _emit.start_trace(name, tracer=self.tracer, default=self._tracer, **kw)

    def trace(self, fn: Any = None, /, **kw: Any) -> Any:
        """Like ``@opsloop.tracing.trace``, exported through this client."""
        return _emit.trace(fn, tracer=self.tracer, default=self._tracer, **kw)

    def record_llm_call(self, **kw: Any) -> Span:
        """Like ``opsloop.tracing.record_llm_call``, exported through this client."""
        return _emit.record_llm_call(tracer=self.tracer, default=self._tracer, **kw)

    def activate(self) -> Tracing:
        """Make this the destination of module-level ``opsloop.tracing`` spans; returns self."""
        _active.set_current(self.tracer)
        return self

    def flush(self) -> int:
        """Write finished spans now; ``FlushError`` if some could not be written."""
        return self.tracer.flush()

    def close(self) -> None:
        self.tracer.close()

    def ingest(self, spans: Sequence[Mapping[str, Any]]) -> IngestResult:
        """Store span dicts (the batch format) now, bypassing the background exporter."""
        return self._backend.ingest(list(spans))

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
        """A page of traces (newest first, or by ``sort``) matching the filters; see ``TraceFilter``."""
        f = _filter(criteria, filters)
        return self._backend.list_traces(
            f, limit=limit, page_token=page_token, order=order, sort=sort
        )

    def get_trace(self, trace_id: str, *, flat: bool = False) -> TraceDetail:
        """A trace with its span tree (``flat``: depth-first list)."""
        check_trace_id(trace_id)
        return self._backend.get_trace(trace_id, flat=flat)

    def stats(self, criteria: TraceFilter | None = None, **filters: Any) -> TraceStats:
        """Counts, latency percentiles, tokens and cost: total, per day, per model."""
        return self._backend.stats(_filter(criteria, filters))

    def delete_trace(self, trace_id: str) -> None:
        check_trace_id(trace_id)
        self._backend.delete_trace(trace_id)

    # ------------------------------------------------------------------ prices

    def list_prices(self) -> list[ModelPrice]:
        """The price table in force, with each entry's source."""
        return self._backend.list_prices()

    def set_price(self, model: str, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
        """Set a model's price in US dollars per million input/output tokens."""
        return self._backend.set_price(model, input_per_mtok, output_per_mtok)

    def delete_price(self, model: str) -> None:
        """Remove a custom price; the file's or default price applies again."""
        self._backend.delete_price(model)
