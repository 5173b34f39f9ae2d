"""The pieces of one gateway request: input guards, token bounds, output caps, usage,
output guards and the OpenAI error shape."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.gateway._errors import GuardrailBlocked, limit_error
from opsloop.gateway._guards import guard_input, guard_output, input_guarded
from opsloop.gateway._state import Call, min_of
from opsloop.gateway.entities import Limits, Prices, Route

__all__ = [
    "classify_injection",
    "dearest",
    "error_body",
    "guard_answer",
    "guard_inputs",
    "input_slots",
    "input_tokens_bound",
    "output_tokens",
    "sse",
    "usage_of",
]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def _texts_of_content(content: Any) -> list[tuple[Any, Any]]:
    """(container, index) pairs of the text parts of a message's content."""
    if isinstance(content, list):
        return [
            (p, "text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
    return []


def input_slots(body: dict[str, Any], endpoint: str) -> list[tuple[Any, Any]]:
    """(container, index) of every input text of a request."""
    slots: list[tuple[Any, Any]] = []
    if endpoint == "chat":
        for m in body.get("messages") or []:
            if isinstance(m, dict):
                if isinstance(m.get("content"), str):
                    slots.append((m, "content"))
                slots += _texts_of_content(m.get("content"))
    elif endpoint == "completions":
        p = body.get("prompt")
        if isinstance(p, str):
            slots.append((body, "prompt"))
        elif isinstance(p, list):
            slots += [(p, i) for i, s in enumerate(p) if isinstance(s, str)]
    else:
        inp = body.get("input")
        if isinstance(inp, str):
            slots.append((body, "input"))
        elif isinstance(inp, list):
            slots += [(inp, i) for i, s in enumerate(inp) if isinstance(s, str)]
    return slots


def guard_inputs(body: dict[str, Any], endpoint: str, route: Route, call: Call) -> None:
    spec = route.guards
    if not input_guarded(spec):
        return
    slots = input_slots(body, endpoint)
    for holder, k in slots:
        v = guard_input(holder[k], spec)
        holder[k] = v.text
        call.decisions += [f for f in v.flags if f not in call.decisions]


async def classify_injection(body: dict[str, Any], endpoint: str, route: Route, call: Call) -> None:
    """The MiniLM injection classifier on every input text (in a worker thread)."""
    from opsloop.gateway._injection_model import (  # lazy: loads MiniLM
        THRESHOLD,
        injection_classifier,
    )

    if endpoint == "chat":  # what users and tools wrote: the app's own system prompt is trusted
        untrusted = {
            "messages": [
                m
                for m in body.get("messages") or []
                if isinstance(m, dict) and m.get("role", "user") in ("user", "tool")
            ]
        }
        texts = [h[k] for h, k in input_slots(untrusted, endpoint)]
    else:
        texts = [h[k] for h, k in input_slots(body, endpoint)]
    probs = await asyncio.to_thread(lambda: injection_classifier().probabilities(texts))
    worst = max(probs, default=0.0)
    if worst < THRESHOLD:
        return
    if route.guards.injection == "block":
        raise GuardrailBlocked(
            f"the input was blocked by the injection guard (classifier, p={worst:.2f})",
            details={
                "guard": "injection",
                "side": "input",
                "method": "minilm",
                "p": round(worst, 3),
            },
        )
    call.decisions.append(f"input.injection:flag:minilm:{worst:.2f}")


def input_tokens_bound(body: dict[str, Any], endpoint: str, route: Route) -> int:
    """An upper bound on the prompt's tokens: its UTF-8 bytes (JSON-encoded for chat, which
    also covers roles) plus the route's template overhead."""
    if endpoint == "chat":
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise InvalidArgument(
                "messages must be a non-empty list", details={"param": "messages"}
            )
        return len(orjson.dumps(msgs)) + route.prompt_overhead_tokens
    if endpoint == "completions":
        p = body.get("prompt")
        if isinstance(p, str):
            return len(p.encode()) + route.prompt_overhead_tokens
        if isinstance(p, list) and p:
            return len(orjson.dumps(p)) + route.prompt_overhead_tokens * len(p)
        raise InvalidArgument("prompt must be a string or a list", details={"param": "prompt"})
    inp = body.get("input")
    if isinstance(inp, str):
        return len(inp.encode()) + 2
    if isinstance(inp, list) and inp:
        if all(isinstance(x, int) for x in inp):
            return len(inp) + 2
        total = 0
        for x in inp:
            if isinstance(x, str):
                total += len(x.encode()) + 2
            elif isinstance(x, list):
                total += len(x) + 2
            else:
                raise InvalidArgument(
                    "input items are strings or token lists", details={"param": "input"}
                )
        return total
    raise InvalidArgument("input must be a string or a non-empty list", details={"param": "input"})


def output_tokens(
    body: dict[str, Any], endpoint: str, route: Route, limits: list[Limits | None]
) -> int:
    """The output cap this request is held to (written into the body, so the upstream is too)."""
    if endpoint == "embeddings":
        return 0
    cap = min_of(*[lim.max_output_tokens for lim in limits if lim is not None])
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    if asked is not None and (isinstance(asked, bool) or not isinstance(asked, int) or asked < 1):
        raise InvalidArgument(
            "max_tokens must be a positive integer", details={"param": "max_tokens"}
        )
    if asked is not None and cap is not None and asked > cap:
        raise limit_error(
            "max_output_tokens",
            f"max_tokens is {asked}; this key may ask for at most {cap} per request",
            limit_value=cap,
            asked=asked,
        )
    out = asked if asked is not None else min_of(route.default_max_tokens, cap)
    body["max_tokens"] = out
    if "max_completion_tokens" in body:
        body["max_completion_tokens"] = out
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 128:
        raise InvalidArgument("n must be an integer from 1 to 128", details={"param": "n"})
    return int(out) * n


def dearest(chain: list[Route]) -> Prices:
    return Prices(
        input_per_mtok=max(r.prices.input_per_mtok for r in chain),
        output_per_mtok=max(r.prices.output_per_mtok for r in chain),
    )


def usage_of(data: Any) -> tuple[int, int] | None:
    u = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(u, dict) or not isinstance(u.get("prompt_tokens"), int):
        return None
    out = u.get("completion_tokens", 0)
    return int(u["prompt_tokens"]), int(out) if isinstance(out, int) else 0


def guard_answer(data: dict[str, Any], route: Route, call: Call, context: str = "") -> bool:
    changed = False
    for ch in data.get("choices") or []:
        if not isinstance(ch, dict):
            continue
        msg = ch.get("message")
        holder, k = (msg, "content") if isinstance(msg, dict) else (ch, "text")
        text = holder.get(k)
        if isinstance(text, str):
            v = guard_output(text, route.guards, context)
            if v.text != text:
                holder[k] = v.text
                changed = True
            call.decisions += [f for f in v.flags if f not in call.decisions]
    return changed


def error_body(exc: OpsloopError) -> dict[str, Any]:
    err: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        err["details"] = exc.details
    err["type"] = _OPENAI_TYPES.get(
        exc.http_status, "server_error" if exc.http_status >= 500 else "invalid_request_error"
    )
    err["param"] = exc.details.get("param")
    return {"error": err}


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"
