"""The tracing room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.tracing._service import TraceService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.tracing._filter import TraceFilter
    from opsloop.tracing.entities import (
        IngestResult,
        ModelPrice,
        TraceDetail,
        TracePage,
        TraceStats,
    )

__all__ = ["EmbeddedTracing", "TracingBackend", "trace_service"]


class TracingBackend(Protocol):
    """What the ``Tracing`` client needs, embedded or over HTTP."""

    def ingest(self, raw_spans: Sequence[Any]) -> IngestResult: ...

    def list_traces(
        self,
        criteria: TraceFilter | None = None,
        *,
        limit: int = 50,
        page_token: str | None = None,
        order: str = "desc",
        sort: str = "start_time",
    ) -> TracePage: ...

    def get_trace(self, trace_id: str, *, flat: bool = False) -> TraceDetail: ...

    def stats(self, criteria: TraceFilter | None = None) -> TraceStats: ...

    def delete_trace(self, trace_id: str) -> None: ...

    def list_prices(self) -> list[ModelPrice]: ...

    def set_price(
        self, model: str, input_per_mtok: float, output_per_mtok: float
    ) -> ModelPrice: ...

    def delete_price(self, model: str) -> None: ...


def trace_service(ctx: Context) -> TraceService:
    """The context's ``TraceService`` over its database (embedded; the server's routes)."""
    return TraceService(ctx.database, ctx.settings)


class EmbeddedTracing(TraceService):
    """The tracing backend over the context's database."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database, ctx.settings)
