"""OpenAI-compatible routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``.

Requests follow OpenAI's schema: structured outputs (``response_format``,
enforced by constrained decoding), tool calls, log-probabilities, ``n``
choices, seeds, penalties and logit bias are honoured; documented parameters
this server does not offer get a 400 naming them rather than being silently
ignored (``_openai_params.py``). Streaming answers are Server-Sent Events in OpenAI's chunk
format, ending with ``data: [DONE]``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from opsloop.core.web import JSONBody
from opsloop.errors import InvalidArgument, NotFound
from opsloop.llm import ToolPlan, parse_tool_calls, plan_tools, render_tool_messages
from opsloop.serving._engine import Completion, Delta
from opsloop.serving._feedback import RESPONSE_ID_HEADER
from opsloop.serving._openai_params import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    _GenerationRequest,
    chat_logprobs,
    completion_logprobs,
    generation_params,
)
from opsloop.serving._predict import PredictionObserver, notify
from opsloop.serving._runtime import ModelHolder, Runtime

__all__ = ["openai_router"]

MAX_EMBED_INPUTS = 2048


def _check_model(rt: Runtime, requested: str | None) -> None:
    if requested is None:
        return
    accepted = {
        rt.name,
        rt.resolved.name,
        rt.resolved.uri,
        str(rt.resolved.extra.get("requested_uri")),
    }
    model_id = getattr(rt.model, "model_id", None)
    if model_id:
        accepted.add(str(model_id))
    if requested not in accepted:
        raise NotFound(
            f"the model {requested!r} is not served here; this server serves {rt.name!r}",
            details={"param": "model", "served": rt.name},
        )


def _require(rt: Runtime, kind: str, route: str) -> None:
    if rt.kind != kind:
        raise InvalidArgument(
            f"{route} needs a {'language' if kind == 'llm' else 'embedding'} model; "
            f"this server serves a {rt.kind} model (see GET /v1/metadata)",
            details={"kind": rt.kind},
        )


def _content(m: ChatMessage, i: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for p in m.content:
        if p.get("type") != "text" or not isinstance(p.get("text"), str):
            raise InvalidArgument(
                f"message {i}: only text content parts are supported",
                details={"param": f"messages.{i}.content"},
            )
        parts.append(p["text"])
    return "".join(parts)


def _encode(rt: Runtime, text: str) -> list[int]:
    tok = rt.model.tokenizer
    bos = tok.bos_token
    # Chat templates usually write the BOS token themselves; never add a second one.
    add_special = not (bos and text.startswith(bos))
    return list(tok(text, add_special_tokens=add_special)["input_ids"])


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class _Call:
    """One request's pieces the routes differ in."""

    def __init__(
        self,
        chat: bool,
        prompt_of: Any,
        plan_of: Any = None,
        observers: Sequence[PredictionObserver] = (),
        asked: str = "",
    ) -> None:
        self.chat = chat
        self.prompt_of = prompt_of  # (rt, plan) -> prompt text
        self.plan_of = plan_of  # rt -> ToolPlan | None
        self.observers = observers  # told of each answer (monitoring's prediction log)
        self.asked = asked  # the question as the log keeps it


def _choice_body(call: _Call, tok: Any, done: Completion, plan: ToolPlan | None) -> dict[str, Any]:
    if not call.chat:
        return {
            "index": done.index,
            "text": done.text,
            "finish_reason": done.finish_reason,
            "logprobs": completion_logprobs(tok, done.logprobs),
        }
    calls = parse_tool_calls(done.text, plan)
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else done.text}
    if calls:
        message["tool_calls"] = calls
    return {
        "index": done.index,
        "message": message,
        "finish_reason": "tool_calls" if calls else done.finish_reason,
        "logprobs": chat_logprobs(tok, done.logprobs),
    }


async def _generate(holder: ModelHolder, req: _GenerationRequest, call: _Call) -> Response:
    t0 = time.perf_counter()
    chat = call.chat
    rt = holder.acquire()
    try:
        _require(rt, "llm", "/v1/chat/completions" if chat else "/v1/completions")
        _check_model(rt, req.model)
        plan = call.plan_of(rt) if call.plan_of is not None else None
        grammar = plan.grammar if plan is not None and plan.calls else None
        params = generation_params(req, rt, chat=chat, grammar=grammar)
        prompt_ids = _encode(rt, call.prompt_of(rt, plan))
        params = rt.engine.validate(prompt_ids, params)
    except BaseException:
        rt.release()
        raise
    tok = rt.model.tokenizer
    rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
    created = int(time.time())
    base = {"id": rid, "created": created, "model": rt.name, "system_fingerprint": rt.fingerprint}
    route = "/v1/chat/completions" if chat else "/v1/completions"

    def observe(text: str, prompt_tokens: int, completion_tokens: int) -> None:
        if call.observers:
            seen = {
                "model": rt.name,
                "version": str(rt.resolved.version or ""),
                "rows": [{"prompt": call.asked, "prompt_tokens": prompt_tokens}],
                "outputs": [text],
                "tokens": prompt_tokens + completion_tokens,
            }
            notify(call.observers, seen, route, rid, 200, t0)

    if not req.stream:
        try:
            dones = await rt.engine.complete(prompt_ids, params)
        finally:
            rt.release()
        observe(dones[0].text, dones[0].prompt_tokens, sum(d.completion_tokens for d in dones))
        return JSONBody(
            {
                **base,
                "object": "chat.completion" if chat else "text_completion",
                "choices": [_choice_body(call, tok, d, plan) for d in dones],
                "usage": _usage(dones[0].prompt_tokens, sum(d.completion_tokens for d in dones)),
            },
            headers={RESPONSE_ID_HEADER: rid},
        )

    obj = "chat.completion.chunk" if chat else "text_completion"
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    # Under a tool grammar an answer that opens with '{' is a call: held back until it is whole.
    hold = plan is not None and plan.calls

    def chunk(index: int, delta: dict[str, Any] | str, finish: str | None, lp: Any = None) -> bytes:
        if chat:
            c: dict[str, Any] = {
                "index": index,
                "delta": delta,
                "finish_reason": finish,
                "logprobs": chat_logprobs(tok, lp),
            }
        else:
            c = {
                "index": index,
                "text": delta,
                "finish_reason": finish,
                "logprobs": completion_logprobs(tok, lp),
            }
        return _sse({**base, "object": obj, "choices": [c]})

    async def events() -> AsyncIterator[bytes]:
        held: dict[int, list[Delta]] = {}
        first: list[str] = []  # choice 0's text, for the observers
        streaming: set[int] = set()
        prompt_tokens, completion_tokens = 0, 0
        try:
            if chat:
                for i in range(params.n):
                    yield chunk(i, {"role": "assistant", "content": ""}, None)
            try:
                async for kind, value in rt.engine.stream(prompt_ids, params):
                    if kind == "delta":
                        d: Delta = value
                        if d.index == 0:
                            first.append(d.text)
                        if hold and d.index not in streaming:
                            buf = held.setdefault(d.index, [])
                            buf.append(d)
                            text = "".join(x.text for x in buf).lstrip()
                            if not text or text.startswith("{"):
                                continue
                            streaming.add(d.index)  # words, not a call: stream from here
                            lp = [e for x in buf for e in (x.logprobs or [])]
                            d = Delta(d.index, "".join(x.text for x in buf), lp or None)
                        if d.text or d.logprobs:
                            yield chunk(
                                d.index, {"content": d.text} if chat else d.text, None, d.logprobs
                            )
                        continue
                    done: Completion = value
                    prompt_tokens = done.prompt_tokens
                    completion_tokens += done.completion_tokens
                    finish = done.finish_reason
                    if hold and done.index not in streaming:
                        calls = parse_tool_calls(done.text, plan)
                        lp = [e for x in held.get(done.index, []) for e in (x.logprobs or [])]
                        if calls:
                            deltas = [
                                {"index": 0, **c, "function": {**c["function"]}} for c in calls
                            ]
                            yield chunk(done.index, {"tool_calls": deltas}, None, lp or None)
                            finish = "tool_calls"
                        elif done.text:
                            yield chunk(done.index, {"content": done.text}, None, lp or None)
                    yield chunk(done.index, {} if chat else "", finish)
                observe("".join(first), prompt_tokens, completion_tokens)
                if include_usage:
                    usage = _usage(prompt_tokens, completion_tokens)
                    yield _sse({**base, "object": obj, "choices": [], "usage": usage})
            except Exception as exc:
                # Headers are sent: report the failure in-band, as OpenAI's servers do.
                code = getattr(exc, "code", "INTERNAL")
                yield _sse({"error": {"code": code, "message": str(exc), "type": "server_error"}})
            yield b"data: [DONE]\n\n"
        finally:
            rt.release()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", RESPONSE_ID_HEADER: rid},
    )


def openai_router(holder: ModelHolder, observers: Sequence[PredictionObserver] = ()) -> APIRouter:
    router = APIRouter(tags=["openai"])

    @router.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
    async def chat_completions(req: ChatRequest) -> Response:
        msgs = []
        for i, m in enumerate(req.messages):
            if m.role == "tool" and not m.tool_call_id:
                raise InvalidArgument(
                    f"message {i}: a tool message needs tool_call_id",
                    details={"param": f"messages.{i}.tool_call_id"},
                )
            msgs.append({"role": m.role, "content": _content(m, i), "tool_calls": m.tool_calls})

        def plan(rt: Runtime) -> ToolPlan | None:
            return plan_tools(req.tools, req.tool_choice, rt.model.tokenizer)

        def prompt(rt: Runtime, p: ToolPlan | None) -> str:
            return render_tool_messages(msgs, p, rt.model)

        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        asked = _content(last, len(req.messages) - 1) if last is not None else ""
        return await _generate(holder, req, _Call(True, prompt, plan, observers, asked))

    @router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
    async def completions(req: CompletionRequest) -> Response:
        if isinstance(req.prompt, list):
            if len(req.prompt) != 1:
                raise InvalidArgument(
                    "send one prompt per request (concurrent requests are batched together)",
                    details={"param": "prompt"},
                )
            text = req.prompt[0]
        else:
            text = req.prompt
        return await _generate(
            holder, req, _Call(False, lambda _rt, _p: text, None, observers, text)
        )

    @router.post("/v1/embeddings", summary="Embeddings (OpenAI-compatible)")
    async def embeddings(req: EmbeddingRequest) -> Response:
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidArgument(
                "input must be a string or a non-empty list of strings (token arrays are not "
                "supported)",
                details={"param": "input"},
            )
        if len(texts) > MAX_EMBED_INPUTS:
            raise InvalidArgument(
                f"at most {MAX_EMBED_INPUTS} inputs per request", details={"param": "input"}
            )
        async with holder.use() as rt:
            _require(rt, "embedder", "/v1/embeddings")
            _check_model(rt, req.model)
            dim = getattr(rt.model, "dimension", None)
            if req.dimensions is not None and req.dimensions != dim:
                raise InvalidArgument(
                    f"this model gives {dim}-dimensional embeddings",
                    details={"param": "dimensions"},
                )
            vectors = await rt.embed.submit(list(texts))  # type: ignore[union-attr,arg-type]
            counter = getattr(rt.model, "count_tokens", None)
            tokens = sum(counter(t) for t in texts) if counter else 0
        data = []
        for i, v in enumerate(vectors):
            emb: Any = v
            if req.encoding_format == "base64":
                import numpy as np

                emb = base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return JSONBody(
            {
                "object": "list",
                "data": data,
                "model": rt.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return router
