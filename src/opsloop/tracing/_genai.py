"""OpenTelemetry GenAI semantic-convention attributes of a model call, and its timing."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.tracing._normalize import COST_KEY
from opsloop.tracing._span import to_jsonable

__all__ = ["call_times", "llm_attributes", "llm_messages"]

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


def llm_messages(v: Any, role: str) -> Any:
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


def call_times(
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
