"""``RemoteTracing``: the tracing backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.tracing._filter import TraceFilter
from opsloop.tracing.entities import (
    IngestResult,
    ModelPrice,
    TraceDetail,
    TracePage,
    TraceStats,
)

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteTracing"]


def _params(f: TraceFilter | None) -> dict[str, Any]:
    return {k: v for k, v in vars(f or TraceFilter()).items() if v is not None}


def _price_path(model: str) -> str:
    return f"/traces/prices/{quote(model, safe='')}"


class RemoteTracing:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def ingest(self, raw_spans: Sequence[Any]) -> IngestResult:
        data = self._t.post("/traces/batch", {"spans": list(raw_spans)}, idempotent=True)
        return IngestResult.model_validate(data)

    def list_traces(
        self,
        criteria: TraceFilter | None = None,
        *,
        limit: int = 50,
        page_token: str | None = None,
        order: str = "desc",
        sort: str = "start_time",
    ) -> TracePage:
        params = _params(criteria)
        params.update(limit=limit, order=order)
        if sort != "start_time":
            params["sort"] = sort
        if page_token:
            params["page_token"] = page_token
        return TracePage.model_validate(self._t.get("/traces", params))

    def get_trace(self, trace_id: str, *, flat: bool = False) -> TraceDetail:
        return TraceDetail.model_validate(self._t.get(f"/traces/{trace_id}", {"flat": flat}))

    def stats(self, criteria: TraceFilter | None = None) -> TraceStats:
        return TraceStats.model_validate(self._t.get("/traces/stats", _params(criteria)))

    def delete_trace(self, trace_id: str) -> None:
        self._t.delete(f"/traces/{trace_id}")

    def list_prices(self) -> list[ModelPrice]:
        data = self._t.get("/traces/prices")
        return [ModelPrice.model_validate(p) for p in data["prices"]]

    def set_price(self, model: str, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
        body = {"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok}
        return ModelPrice.model_validate(self._t.put(_price_path(model), body))

    def delete_price(self, model: str) -> None:
        self._t.delete(_price_path(model))
