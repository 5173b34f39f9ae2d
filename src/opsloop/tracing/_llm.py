"""Recording model calls as spans with OpenTelemetry GenAI semantic-convention attributes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.tracing._normalize import COST_KEY
from opsloop.tracing._sdk import span
from opsloop.tracing._span import Span, Tracer, _current, to_jsonable

_PARAM_ATTRS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_new_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "stop": "gen_ai.request.stop_sequences",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


def _messages(v: Any, role: str) -> Any:
    if isinstance(v, str):
        return [{"role": role, "content": v}]
    return to_jsonable(v)


def llm_attributes(
    *,
    model: str,
    provider: str | None = None,
    operation: str = "chat",
    params: Mapping[str, Any] | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    response_model: str | None = None,
    response_id: str | None = None,
    finish_reasons: Sequence[str] | None = None,
    cost: float | None = None,
) -> dict[str, Any]:
    """OpenTelemetry GenAI semantic-convention attributes for one model call."""
    if not isinstance(model, str) or not model:
        raise InvalidArgument("record_llm_call needs the model name")
    a: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
    if provider:
        a["gen_ai.provider.name"] = provider
        a["gen_ai.system"] = provider  # the attribute's name before semconv 1.37
    for k, v in (params or {}).items():
        if v is not None:
            a[_PARAM_ATTRS.get(k, f"gen_ai.request.{k}")] = to_jsonable(v)
    for key, n in (
        ("gen_ai.usage.input_tokens", input_tokens),
        ("gen_ai.usage.output_tokens", output_tokens),
    ):
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidArgument(f"{key} must be a non-negative integer, not {n!r}")
            a[key] = n
    if response_model:
        a["gen_ai.response.model"] = response_model
    if response_id:
        a["gen_ai.response.id"] = response_id
    if finish_reasons:
        a["gen_ai.response.finish_reasons"] = list(finish_reasons)
    if cost is not None:
        a[COST_KEY] = float(cost)
    return a


def _call_times(
    start_time: float | None, end_time: float | None, duration_s: float | None
) -> tuple[int, int]:
    """(start, end) in epoch µs from any of start/end (epoch s) and duration; missing ends are now."""
    now = time.time_ns() // 1000
    dur = None if duration_s is None else int(duration_s * 1e6)
    start = None if start_time is None else int(start_time * 1e6)
    end = None if end_time is None else int(end_time * 1e6)
    if start is None:
        base = end if end is not None else now
        start = base - dur if dur is not None else base
    if end is None:
        end = start + dur if dur is not None else max(now, start)
    return start, max(start, end)


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
    attrs = llm_attributes(
        model=model,
        provider=provider,
        operation=operation,
        params=params,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        response_model=response_model,
        response_id=response_id,
        finish_reasons=finish_reasons,
        cost=cost,
    )
    if attributes:
        attrs.update(attributes)
    cur = _current.get()
    if (
        cur is not None
        and cur.kind in ("llm", "embedding")
        and not cur.llm_recorded
        and (tracer is None or tracer is cur.tracer)
    ):
        target, own = cur, False
    else:
        kind = "embedding" if operation in ("embeddings", "embedding") else "llm"
        target, own = span(name or f"{operation} {model}", kind, tracer=tracer), True
        start_us, end_us = _call_times(start_time, end_time, duration_s)
        target.start_us = start_us
    target.llm_recorded = True
    target.attributes.update(attrs)
    if input_messages is not None:
        target.inputs = _messages(input_messages, "user")
    if output is not None:
        target.outputs = (
            _messages(output, "assistant") if isinstance(output, str) else to_jsonable(output)
        )
    if error is not None:
        if isinstance(error, BaseException):
            target.record_exception(error)
        else:
            target.set_status("ERROR", str(error))
    if own:
        target.end(end_us)
    return target
