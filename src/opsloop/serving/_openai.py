"""OpenAI-compatible routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``.

Requests follow OpenAI's schema; parameters this server cannot honour with
the value given (``n`` > 1, ``logprobs``, tools) get a 400 rather than being
silently ignored. Streaming answers are Server-Sent Events in OpenAI's chunk
format, ending with ``data: [DONE]``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from opsloop.core.web import JSONBody
from opsloop.errors import InvalidArgument, NotFound
from opsloop.serving._feedback import RESPONSE_ID_HEADER
from opsloop.serving._predict import PredictionObserver, notify
from opsloop.serving._runtime import ModelHolder, Runtime
from opsloop.serving._sampling import GenerationParams

__all__ = ["openai_router"]

MAX_STOP = 16
MAX_EMBED_INPUTS = 2048


class _Req(BaseModel):
    # Clients send many optional fields (penalties, user, metadata); unknown ones are ignored.
    model_config = ConfigDict(extra="allow")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _GenerationRequest(_Req):
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    seed: int | None = None
    logprobs: bool | int | None = None
    ignore_eos: bool = False  # an extension (as in vLLM): always generate max_tokens tokens


class ChatRequest(_GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Any] | None = None


class CompletionRequest(_GenerationRequest):
    prompt: str | list[str]
    echo: bool = False
    best_of: int | None = None


class EmbeddingRequest(_Req):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


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


def _params(req: _GenerationRequest, rt: Runtime) -> GenerationParams:
    if req.n != 1:
        raise InvalidArgument("only n=1 is supported", details={"param": "n"})
    if req.logprobs:
        raise InvalidArgument("logprobs are not supported", details={"param": "logprobs"})
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    stop = [s for s in stop if s]
    if len(stop) > MAX_STOP:
        raise InvalidArgument(f"at most {MAX_STOP} stop strings", details={"param": "stop"})
    max_tokens = req.max_completion_tokens or req.max_tokens or rt.options.default_max_tokens
    limit = rt.options.max_tokens_limit
    if max_tokens > limit:
        raise InvalidArgument(
            f"max_tokens is {max_tokens}; this server allows at most {limit}",
            details={"param": "max_tokens"},
        )
    # The served model's anti-repetition defaults, as its own generate applies them.
    defaults = getattr(rt.model, "generation_defaults", None) or {}
    return GenerationParams(
        max_tokens,
        req.temperature,
        req.top_p,
        tuple(stop),
        req.seed,
        req.ignore_eos,
        float(defaults.get("repetition_penalty", 1.0)),
        int(defaults.get("no_repeat_ngram_size", 0)),
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


async def _generate(
    holder: ModelHolder,
    req: _GenerationRequest,
    prompt_of: Any,
    chat: bool,
    observers: Sequence[PredictionObserver] = (),
    asked: str = "",
) -> Response:
    t0 = time.perf_counter()
    rt = holder.acquire()
    try:
        _require(rt, "llm", "/v1/chat/completions" if chat else "/v1/completions")
        _check_model(rt, req.model)
        params = _params(req, rt)
        prompt_ids = _encode(rt, prompt_of(rt))
        params = rt.engine.validate(prompt_ids, params)
    except BaseException:
        rt.release()
        raise
    rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
    created = int(time.time())
    base = {"id": rid, "created": created, "model": rt.name, "system_fingerprint": rt.fingerprint}
    route = "/v1/chat/completions" if chat else "/v1/completions"

    def observe(text: str, prompt_tokens: int, completion_tokens: int) -> None:
        if observers:
            seen = {
                "model": rt.name,
                "version": str(rt.resolved.version or ""),
                "rows": [{"prompt": asked, "prompt_tokens": prompt_tokens}],
                "outputs": [text],
                "tokens": prompt_tokens + completion_tokens,
            }
            notify(observers, seen, route, rid, 200, t0)

    if not req.stream:
        try:
            done = await rt.engine.complete(prompt_ids, params)
        finally:
            rt.release()
        observe(done.text, done.prompt_tokens, done.completion_tokens)
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": done.text},
                "finish_reason": done.finish_reason,
                "logprobs": None,
            }
        else:
            choice = {
                "index": 0,
                "text": done.text,
                "finish_reason": done.finish_reason,
                "logprobs": None,
            }
        return JSONBody(
            {
                **base,
                "object": "chat.completion" if chat else "text_completion",
                "choices": [choice],
                "usage": _usage(done.prompt_tokens, done.completion_tokens),
            },
            headers={RESPONSE_ID_HEADER: rid},
        )

    obj = "chat.completion.chunk" if chat else "text_completion"
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk(delta: dict[str, Any] | str, finish: str | None) -> dict[str, Any]:
        if chat:
            c: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "finish_reason": finish,
                "logprobs": None,
            }
        else:
            c = {"index": 0, "text": delta, "finish_reason": finish, "logprobs": None}
        return {**base, "object": obj, "choices": [c]}

    async def events() -> AsyncIterator[bytes]:
        try:
            if chat:
                yield _sse(chunk({"role": "assistant", "content": ""}, None))
            try:
                parts: list[str] = []
                async for kind, value in rt.engine.stream(prompt_ids, params):
                    if kind == "delta":
                        parts.append(value)
                        yield _sse(chunk({"content": value} if chat else value, None))
                    else:
                        observe("".join(parts), value.prompt_tokens, value.completion_tokens)
                        yield _sse(chunk({} if chat else "", value.finish_reason))
                        if include_usage:
                            usage = _usage(value.prompt_tokens, value.completion_tokens)
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
        if req.tools:
            raise InvalidArgument("tools are not supported", details={"param": "tools"})

        def prompt(rt: Runtime) -> str:
            msgs = [{"role": m.role, "content": _content(m, i)} for i, m in enumerate(req.messages)]
            return str(rt.model.apply_chat_template(msgs))

        last = next((m for m in reversed(req.messages) if m.role == "user"), None)
        asked = _content(last, len(req.messages) - 1) if last is not None else ""
        return await _generate(holder, req, prompt, chat=True, observers=observers, asked=asked)

    @router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
    async def completions(req: CompletionRequest) -> Response:
        if req.echo:
            raise InvalidArgument("echo is not supported", details={"param": "echo"})
        if req.best_of not in (None, 1):
            raise InvalidArgument("only best_of=1 is supported", details={"param": "best_of"})
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
            holder, req, lambda _rt: text, chat=False, observers=observers, asked=text
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
