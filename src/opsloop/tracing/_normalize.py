"""One stored form for every span, whichever way it came in (opsloop SDK or OTLP).

``normalize_span`` checks a span dict, masks it, maps the OpenTelemetry GenAI
semantic-convention attributes onto the columns filters need (model, token
usage, user and session ids), size-limits what is free-form, and returns the
row to insert. Nothing here touches the database.

The span dict (the body of ``POST /api/v1/traces/batch``)::

    {"trace_id": 32 hex, "span_id": 16 hex, "parent_span_id": 16 hex | null,
     "name": str, "kind": "llm" | "chain" | ... | null, "start_us": int, "end_us": int,
     "status": "UNSET" | "OK" | "ERROR", "status_message": str | null,
     "attributes": {str: value}, "inputs": any JSON, "outputs": any JSON,
     "events": [{"name": str, "time_us": int, "attributes": {...}}]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from opsloop.errors import InvalidArgument
from opsloop.tracing._masking import Masker

MAX_NAME = 256
MAX_ATTRIBUTES = 256
MAX_ATTR_CHARS = 8_192
MAX_MESSAGE_CHARS = 8_192
MAX_EVENTS = 128
MAX_IO_BYTES = 64 * 1024
MAX_TIME_US = 2**62
TRUNCATED = "opsloop.truncated"

KINDS = frozenset({"llm", "chain", "retriever", "tool", "embedding", "agent", "other"})
STATUSES = frozenset({"UNSET", "OK", "ERROR"})
_FIELDS = frozenset(
    {
        "trace_id",
        "span_id",
        "parent_span_id",
        "name",
        "kind",
        "start_us",
        "end_us",
        "status",
        "status_message",
        "attributes",
        "inputs",
        "outputs",
        "events",
    }
)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")

# gen_ai.operation.name values (OTel GenAI semconv) and OpenInference span kinds.
_OPERATION_KIND = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "completion": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retriever",
    "retrieve": "retriever",
}
_OPENINFERENCE_KIND = {
    "LLM": "llm",
    "CHAIN": "chain",
    "RETRIEVER": "retriever",
    "RERANKER": "retriever",
    "TOOL": "tool",
    "EMBEDDING": "embedding",
    "AGENT": "agent",
}
_MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
_IN_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
_OUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
_INPUT_KEYS = ("gen_ai.input.messages", "input.value", "gen_ai.prompt")
_OUTPUT_KEYS = ("gen_ai.output.messages", "output.value", "gen_ai.completion")
_IO_KEYS = frozenset(_INPUT_KEYS + _OUTPUT_KEYS)
_USER_KEYS = ("user.id", "enduser.id")
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id")
COST_KEY = "gen_ai.usage.cost"  # explicit cost in US dollars, when the caller knows it
TAGS_KEY = "opsloop.trace.tags"


def _bad(i: int, msg: str) -> InvalidArgument:
    return InvalidArgument(f"span {i}: {msg}", details={"span_index": i})


def _check_id(v: Any, pattern: re.Pattern[str], what: str, i: int) -> str:
    if not isinstance(v, str) or not pattern.fullmatch(v) or not v.strip("0"):
        n = 32 if pattern is _HEX32 else 16
        raise _bad(i, f"{what} must be {n} lowercase hex digits, not all zero; got {v!r}")
    return v


def _check_time(v: Any, what: str, i: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < MAX_TIME_US:
        raise _bad(i, f"{what} must be a non-negative integer of epoch microseconds; got {v!r}")
    return v


def clip(s: str, n: int) -> str:
    """``s`` cut to ``n`` characters with a marker saying how much was dropped."""
    if len(s) <= n:
        return s
    return s[:n] + f"…[{TRUNCATED}: {len(s) - n} more characters]"


def _clip_value(v: Any, depth: int = 0) -> Any:
    if isinstance(v, str):
        return clip(v, MAX_ATTR_CHARS)
    if depth > 8:
        return clip(orjson.dumps(v, default=str).decode(), MAX_ATTR_CHARS)
    if isinstance(v, dict):
        return {str(k)[:MAX_NAME]: _clip_value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clip_value(x, depth + 1) for x in v[:1000]]
    return v


_SCALARS = (int, float, bool, type(None))


def clean_attributes(attrs: dict[Any, Any]) -> dict[str, Any]:
    """A copy with string keys, long strings cut and nested values bounded (one pass)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if type(k) is not str or len(k) > MAX_NAME:
            k = str(k)[:MAX_NAME]
        t = type(v)
        if t is str:
            if len(v) > MAX_ATTR_CHARS:
                v = clip(v, MAX_ATTR_CHARS)
        elif t not in _SCALARS:
            v = _clip_value(v, 1)
        out[k] = v
    return out


def dump_io(v: Any) -> str | None:
    """JSON text of an input or output, replaced by a truncation marker past ``MAX_IO_BYTES``."""
    if v is None:
        return None
    text = orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    if len(text) <= MAX_IO_BYTES:
        return text
    marker = {TRUNCATED: True, "size": len(text), "head": text[: MAX_IO_BYTES - 200]}
    return orjson.dumps(marker).decode()


def _maybe_json(v: Any) -> Any:
    # Semconv puts messages in one attribute as a JSON string; store them as JSON.
    if isinstance(v, str) and v[:1] in ("[", "{"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


def _int_or_none(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v < 2**31 else None
    if isinstance(v, float) and v.is_integer() and 0 <= v < 2**31:
        return int(v)
    if isinstance(v, str) and v.isdigit() and len(v) < 10:
        return int(v)
    return None


def _str_or_none(v: Any, n: int = MAX_NAME) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    s = str(v)
    return s[:n] if s else None


def derive_kind(kind: Any, attrs: Mapping[str, Any]) -> str:
    """The opsloop span kind: given, else from the GenAI operation or OpenInference kind."""
    if isinstance(kind, str) and kind:
        k = kind.lower()
        return k if k in KINDS else "other"
    explicit = attrs.get("opsloop.span.kind")
    if isinstance(explicit, str) and explicit.lower() in KINDS:
        return explicit.lower()
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in _OPERATION_KIND:
        return _OPERATION_KIND[op]
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in _OPENINFERENCE_KIND:
        return _OPENINFERENCE_KIND[oi.upper()]
    if "gen_ai.request.model" in attrs:
        return "llm"
    return "other"


def normalize_span(raw: Any, masker: Masker, i: int = 0) -> dict[str, Any]:
    """The row for one span dict; ``InvalidArgument`` (naming the span's index) if malformed.

    The returned dict also carries ``_user``, ``_session``, ``_tags``,
    ``_service``, ``_experiment`` and ``_deployment`` for the trace row.
    """
    if not isinstance(raw, dict):
        raise _bad(i, f"must be an object, not {type(raw).__name__}")
    unknown = raw.keys() - _FIELDS
    if unknown:
        raise _bad(i, f"unknown field(s) {sorted(unknown)}")
    trace_id = _check_id(raw.get("trace_id"), _HEX32, "trace_id", i)
    span_id = _check_id(raw.get("span_id"), _HEX16, "span_id", i)
    parent = raw.get("parent_span_id")
    if parent is not None and parent != "":
        parent = _check_id(parent, _HEX16, "parent_span_id", i)
        if parent == span_id:
            raise _bad(i, "a span cannot be its own parent")
    else:
        parent = None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(i, "name must be a non-empty string")
    start = _check_time(raw.get("start_us"), "start_us", i)
    end = _check_time(raw.get("end_us"), "end_us", i)
    if end < start:
        raise _bad(i, f"end_us ({end}) is before start_us ({start})")
    status = raw.get("status") or "UNSET"
    if not isinstance(status, str) or status.upper() not in STATUSES:
        raise _bad(i, f"status must be one of UNSET, OK, ERROR; got {status!r}")
    status = status.upper()
    message = raw.get("status_message")
    if message is not None and not isinstance(message, str):
        raise _bad(i, "status_message must be a string")
    attrs = raw.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise _bad(i, "attributes must be an object")
    if len(attrs) > MAX_ATTRIBUTES:
        raise _bad(i, f"has {len(attrs)} attributes; the limit is {MAX_ATTRIBUTES}")
    events = raw.get("events") or []
    if not isinstance(events, list):
        raise _bad(i, "events must be a list")
    kind = raw.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in KINDS):
        raise _bad(i, f"kind must be one of {', '.join(sorted(KINDS))}; got {kind!r}")

    inputs = raw.get("inputs")
    outputs = raw.get("outputs")
    # Message attributes move to the inputs/outputs columns (and their larger limit)
    # before attribute values are cut.
    if (inputs is None or outputs is None) and not _IO_KEYS.isdisjoint(attrs):
        attrs = dict(attrs)
        if inputs is None:
            for k in _INPUT_KEYS:
                if k in attrs:
                    inputs = _maybe_json(attrs.pop(k))
                    break
        if outputs is None:
            for k in _OUTPUT_KEYS:
                if k in attrs:
                    outputs = _maybe_json(attrs.pop(k))
                    break
    attrs = clean_attributes(attrs)

    clean_events: list[dict[str, Any]] = []
    for ev in events[:MAX_EVENTS]:
        if not isinstance(ev, dict) or not isinstance(ev.get("name"), str):
            raise _bad(i, "each event must be an object with a string name")
        t = ev.get("time_us", start)
        ev_attrs = ev.get("attributes") or {}
        if not isinstance(ev_attrs, dict):
            raise _bad(i, "event attributes must be an object")
        clean_events.append(
            {
                "name": ev["name"][:MAX_NAME],
                "time_us": _check_time(t, "event time_us", i),
                "attributes": _clip_value(ev_attrs),
            }
        )
    if status == "ERROR" and not message:
        for ev in clean_events:
            if ev["name"] == "exception":
                a = ev["attributes"]
                message = ": ".join(
                    str(x) for x in (a.get("exception.type"), a.get("exception.message")) if x
                )
                break

    if masker:
        attrs = masker.value(attrs)
        inputs = masker.value(inputs)
        outputs = masker.value(outputs)
        clean_events = masker.value(clean_events)
        if message:
            message = masker.text(message)

    model = _str_or_none(_first(attrs, _MODEL_KEYS))
    in_tok = _int_or_none(_first(attrs, _IN_TOKEN_KEYS))
    out_tok = _int_or_none(_first(attrs, _OUT_TOKEN_KEYS))
    explicit_cost = attrs.get(COST_KEY)
    cost = (
        float(explicit_cost)
        if isinstance(explicit_cost, (int, float))
        and not isinstance(explicit_cost, bool)
        and 0 <= explicit_cost < 1e9
        else None
    )
    tags = attrs.get(TAGS_KEY)
    if isinstance(tags, str):
        tags = _maybe_json(tags)
    tags = [str(t)[:MAX_NAME] for t in tags][:100] if isinstance(tags, list) else None

    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name[:MAX_NAME],
        "kind": derive_kind(kind, attrs),
        "start_us": start,
        "end_us": end,
        "status": status,
        "status_message": clip(message, MAX_MESSAGE_CHARS) if message else None,
        "model": model,
        "input_tokens": in_tok,
        "output_tokens": out_tok,
        "cost": cost,
        "attributes": orjson.dumps(attrs, default=str).decode(),
        "inputs": dump_io(inputs),
        "outputs": dump_io(outputs),
        "events": orjson.dumps(clean_events, default=str).decode() if clean_events else None,
        "_user": _str_or_none(_first(attrs, _USER_KEYS)),
        "_session": _str_or_none(_first(attrs, _SESSION_KEYS)),
        "_tags": tags,
        "_service": _str_or_none(attrs.get("service.name")),
        "_experiment": _str_or_none(attrs.get("opsloop.experiment_id"), 64),
        "_deployment": _str_or_none(attrs.get("opsloop.deployment_id"), 64),
    }
