"""Calling a chat model inside a pipeline, recorded as an ``llm`` span.

An opsloop ``Provider`` records its own call with ``record_llm_call``, which
lands on the ``llm`` span open here; for any other object with ``.chat()``
this module records the call itself, so every model call is exactly one
``llm`` span either way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.llm import Provider
from opsloop.tracing import record_llm_call, span

__all__ = ["MODEL_PARAMS", "chat", "check_params"]

MODEL_PARAMS = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "timeout_s",
)


def check_params(params: Mapping[str, Any], step: str) -> dict[str, Any]:
    """Model call parameters, type-checked; ``PipelineInvalid`` naming the step and the field."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        ok = True
        if k == "max_tokens":
            ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 32_768
        elif k in ("temperature", "top_p", "timeout_s"):
            ok = isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        elif k == "seed":
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif k == "stop":
            ok = isinstance(v, list) and all(isinstance(s, str) for s in v)
        elif k == "response_format":
            ok = isinstance(v, Mapping)
        if not ok:
            raise PipelineInvalid(
                f"step {step!r}: field {k!r} has a bad value {v!r}",
                details={"step": step, "field": k},
            )
        out[k] = v
    return out


def _model_name(model: Any) -> str:
    return str(
        getattr(model, "spec", None) or getattr(model, "model", None) or type(model).__name__
    )


def _self_tracing(model: Any) -> bool:
    return isinstance(model, Provider)


def chat(
    model: Any,
    messages: Sequence[Mapping[str, str]],
    params: Mapping[str, Any],
    *,
    span_name: str | None = None,
    open_span: Any = None,
) -> str:
    """The reply text of one chat call, traced (on ``open_span`` when it is an open llm span)."""
    msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    if not msgs:
        raise InvalidArgument("a model call needs at least one message")
    if open_span is None:
        with span(span_name or f"chat {_model_name(model)}", "llm", inputs=msgs) as sp:
            return _call(model, msgs, params, sp, record_llm_call)
    open_span.set_input(msgs)
    return _call(model, msgs, params, open_span, record_llm_call)


def _call(
    model: Any, msgs: list[dict[str, str]], params: Mapping[str, Any], sp: Any, record: Any
) -> str:
    t0 = time.perf_counter()
    resp = model.chat(msgs, **dict(params))
    text = resp.text if hasattr(resp, "text") else str(resp)
    if not isinstance(text, str):
        text = str(text)
    if not sp.llm_recorded and not _self_tracing(model):
        usage = getattr(resp, "usage", None)
        record(
            model=_model_name(model),
            provider=getattr(model, "provider", None),
            input_messages=msgs,
            output=text,
            input_tokens=getattr(usage, "input_tokens", None),
            output_tokens=getattr(usage, "output_tokens", None),
            params={k: v for k, v in params.items() if k != "response_format"},
            finish_reasons=[resp.finish_reason] if getattr(resp, "finish_reason", None) else None,
            duration_s=time.perf_counter() - t0,
        )
    sp.set_output(text)
    return text
