"""``Tracing(client)``: the tracing SDK bound to one ``opsloop.Client``, embedded or remote.

Embedded, finished spans are written by the background exporter straight into
the client's database; remote, they are posted to ``/api/v1/traces/batch``.
Reading (list, get, stats) and prices work the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.tracing import _llm, _sdk
from opsloop.tracing._filter import TraceFilter
from opsloop.tracing._span import Span, Tracer
from opsloop.tracing.entities import (
    IngestResult,
    ModelPrice,
    TraceDetail,
    TracePage,
    TraceStats,
)

if TYPE_CHECKING:
    from opsloop.sdk import Client
    from opsloop.tracing._service import TraceService


def _params(f: TraceFilter) -> dict[str, Any]:
    return {k: v for k, v in vars(f).items() if v is not None}


class Tracing:
    """Emit spans to, and read traces from, the store or server a client points at.

    ``mask_fn`` masks every string of this client's spans before they are
    queued (after the settings' ``trace_mask_patterns``).
    """

    def __init__(self, client: Client, *, mask_fn: Callable[[str], str] | None = None) -> None:
        self._client = client
        self._svc: TraceService | None = None
        self._rest: Any = None
        if client.is_remote:
            self._rest = client.backend
        else:
            from opsloop.tracing._service import TraceService

            backend: Any = client.backend
            self._svc = TraceService(backend.db, client.settings)
        self.tracer = Tracer(self._write, client.settings, mask_fn=mask_fn)

    @property
    def is_remote(self) -> bool:
        return self._rest is not None

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
        return _sdk.span(name, kind, attributes=attributes, inputs=inputs, tracer=self.tracer)

    def start_trace(self, name: str, **kw: Any) -> Span:
        """Like ``opsloop.tracing.start_trace``, exported through this client."""
        return _sdk.start_trace(name, tracer=self.tracer, **kw)

    def trace(self, fn: Any = None, /, **kw: Any) -> Any:
        """Like ``@opsloop.tracing.trace``, exported through this client."""
        return _sdk.trace(fn, tracer=self.tracer, **kw)

    def record_llm_call(self, **kw: Any) -> Span:
        """Like ``opsloop.tracing.record_llm_call``, exported through this client."""
        return _llm.record_llm_call(tracer=self.tracer, **kw)

    def activate(self) -> Tracing:
        """Make this the destination of module-level ``opsloop.tracing`` spans; returns self."""
        _sdk.configure(self)
        return self

    def flush(self) -> int:
        """Write finished spans now; ``FlushError`` if some could not be written."""
        return self.tracer.flush()

    def close(self) -> None:
        self.tracer.close()

    def ingest(self, spans: Sequence[Mapping[str, Any]]) -> IngestResult:
        """Store span dicts (the batch format) now, bypassing the background exporter."""
        if self._svc is not None:
            return self._svc.ingest(list(spans))
        data = self._rest._json(
            "POST", "/traces/batch", json={"spans": list(spans)}, idempotent=True
        )
        return IngestResult.model_validate(data)

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
        from opsloop.tracing._service import _filter

        f = _filter(criteria, filters)
        if self._svc is not None:
            return self._svc.list_traces(
                f, limit=limit, page_token=page_token, order=order, sort=sort
            )
        params = _params(f)
        params.update(limit=limit, order=order)
        if sort != "start_time":
            params["sort"] = sort
        if page_token:
            params["page_token"] = page_token
        return TracePage.model_validate(self._rest._json("GET", "/traces", params=params))

    def get_trace(self, trace_id: str, *, flat: bool = False) -> TraceDetail:
        """A trace with its span tree (``flat``: depth-first list)."""
        from opsloop.tracing._service import check_trace_id

        check_trace_id(trace_id)
        if self._svc is not None:
            return self._svc.get_trace(trace_id, flat=flat)
        return TraceDetail.model_validate(
            self._rest._json("GET", f"/traces/{trace_id}", params={"flat": flat})
        )

    def stats(self, criteria: TraceFilter | None = None, **filters: Any) -> TraceStats:
        """Counts, latency percentiles, tokens and cost: total, per day, per model."""
        from opsloop.tracing._service import _filter

        f = _filter(criteria, filters)
        if self._svc is not None:
            return self._svc.stats(f)
        return TraceStats.model_validate(
            self._rest._json("GET", "/traces/stats", params=_params(f))
        )

    def delete_trace(self, trace_id: str) -> None:
        from opsloop.tracing._service import check_trace_id

        check_trace_id(trace_id)
        if self._svc is not None:
            self._svc.delete_trace(trace_id)
        else:
            self._rest._json("DELETE", f"/traces/{trace_id}")

    # ------------------------------------------------------------------ prices

    def list_prices(self) -> list[ModelPrice]:
        """The price table in force, with each entry's source."""
        if self._svc is not None:
            return self._svc.list_prices()
        data = self._rest._json("GET", "/traces/prices")
        return [ModelPrice.model_validate(p) for p in data["prices"]]

    def set_price(self, model: str, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
        """Set a model's price in US dollars per million input/output tokens."""
        if self._svc is not None:
            return self._svc.set_price(model, input_per_mtok, output_per_mtok)
        body = {"input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok}
        return ModelPrice.model_validate(
            self._rest._json("PUT", f"/traces/prices/{quote(model, safe='')}", json=body)
        )

    def delete_price(self, model: str) -> None:
        """Remove a custom price; the file's or default price applies again."""
        if self._svc is not None:
            self._svc.delete_price(model)
        else:
            self._rest._json("DELETE", f"/traces/prices/{quote(model, safe='')}")
