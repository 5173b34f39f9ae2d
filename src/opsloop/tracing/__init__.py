"""Tracing for LLM applications: spans for model calls, chain steps, retrievals and tool calls.

Instrument code with ``@trace``, ``with span(...)``, ``start_trace(...)`` and
``record_llm_call(...)``; spans are batched in the background to the home's
database or to a server. Any OpenTelemetry-instrumented application can send
traces to a server's OTLP/HTTP endpoint (``/v1/traces``). Attributes follow
the OpenTelemetry GenAI semantic conventions.

``import opsloop.tracing`` is cheap: the store and the OTLP decoder load on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.tracing._client import Tracing
    from opsloop.tracing._filter import TraceFilter
    from opsloop.tracing._llm import record_llm_call
    from opsloop.tracing._prices import Price, PriceTable
    from opsloop.tracing._sdk import (
        configure,
        flush,
        get_tracer,
        span,
        start_trace,
        trace,
        trace_context,
    )
    from opsloop.tracing._service import TraceService
    from opsloop.tracing._span import Span, Tracer, current_span, set_masking, wrap
    from opsloop.tracing.entities import (
        DayStats,
        IngestResult,
        ModelPrice,
        ModelStats,
        SpanKind,
        SpanNode,
        SpanStatus,
        TraceDetail,
        TracePage,
        TraceStats,
        TraceSummary,
    )

__all__ = [
    "DayStats",
    "IngestResult",
    "ModelPrice",
    "ModelStats",
    "Price",
    "PriceTable",
    "Span",
    "SpanKind",
    "SpanNode",
    "SpanStatus",
    "TraceDetail",
    "TraceFilter",
    "TracePage",
    "TraceService",
    "TraceStats",
    "TraceSummary",
    "Tracer",
    "Tracing",
    "configure",
    "configured_tracer",
    "current_span",
    "flush",
    "get_tracer",
    "record_llm_call",
    "set_masking",
    "span",
    "start_trace",
    "trace",
    "trace_context",
    "wrap",
]

_LAZY: dict[str, str] = {
    "record_llm_call": "opsloop.tracing._llm",
    "Price": "opsloop.tracing._prices",
    "PriceTable": "opsloop.tracing._prices",
    "Tracing": "opsloop.tracing._client",
    "TraceFilter": "opsloop.tracing._filter",
    "TraceService": "opsloop.tracing._service",
}
_LAZY.update(
    {
        n: "opsloop.tracing._sdk"
        for n in (
            "configure",
            "flush",
            "get_tracer",
            "span",
            "start_trace",
            "trace",
            "trace_context",
        )
    }
)
_LAZY.update(
    {n: "opsloop.tracing._span" for n in ("Span", "Tracer", "current_span", "set_masking", "wrap")}
)
_LAZY.update(
    {
        n: "opsloop.tracing.entities"
        for n in (
            "DayStats",
            "IngestResult",
            "ModelPrice",
            "ModelStats",
            "SpanKind",
            "SpanNode",
            "SpanStatus",
            "TraceDetail",
            "TracePage",
            "TraceStats",
            "TraceSummary",
        )
    }
)


def configured_tracer() -> Tracer | None:
    """The process's default tracer if one is set up already, else None (makes none).

    Set up by ``configure``, ``Tracing.activate()``, ``get_tracer()`` or an
    earlier module-level span; library code that traces only when the program
    asked for tracing checks this instead of ``get_tracer()``.
    """
    sdk = importlib.import_module("opsloop.tracing._sdk")
    tracer: Tracer | None = sdk._default
    return tracer


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
