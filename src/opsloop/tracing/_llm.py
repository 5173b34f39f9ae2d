"""``record_llm_call``: one model call as a span with OpenTelemetry GenAI attributes.

The recording is ``_emit.record_llm_call``; this binds it to the default tracer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.tracing import _emit
from opsloop.tracing._genai import llm_attributes
from opsloop.tracing._sdk import get_tracer
from opsloop.tracing._span import Span, Tracer

__all__ = ["llm_attributes", "record_llm_call"]


def record_llm_call(
    *,
    model: str,
    input_messages: Any = None,
    output: Any = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    params: Mapping[str, Any] | None = None,
    provider: str | None = None,
    operation: str = "chat",
    response_model: str | None = None,
    response_id: str | None = None,
    finish_reasons: Sequence[str] | None = None,
    cost: float | None = None,
    name: str | None = None,
    duration_s: float | None = None,
    start_time: float | None = None,
    end_time: float | None = None,
    error: BaseException | str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tracer: Tracer | None = None,
) -> Span:
    """Record one model call with GenAI attributes; its cost comes from the price table on storage.

    Inside an open ``llm``/``embedding`` span that has not recorded a call yet
    (``@trace(kind="llm")``), the call is recorded on that span. Otherwise a
    finished child span named ``"{operation} {model}"`` is made, timed by
    ``start_time``/``end_time`` (epoch seconds) or ``duration_s`` (ending now).
    ``cost`` (US dollars) overrides the price table.
    """
    return _emit.record_llm_call(
        model=model,
        input_messages=input_messages,
        output=output,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        params=params,
        provider=provider,
        operation=operation,
        response_model=response_model,
        response_id=response_id,
        finish_reasons=finish_reasons,
        cost=cost,
        name=name,
        duration_s=duration_s,
        start_time=start_time,
        end_time=end_time,
        error=error,
        attributes=attributes,
        tracer=tracer,
        default=get_tracer,
    )
