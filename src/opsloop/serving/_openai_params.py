"""The OpenAI request bodies, and what each documented parameter becomes (or why it is refused).

Every parameter OpenAI documents for ``/v1/chat/completions`` and
``/v1/completions`` is either honoured or answered with a 400 naming it
(``error.param``); none is accepted and then ignored. ``user``,
``safety_identifier`` and ``prompt_cache_key`` identify the caller and never
change an answer, so they are accepted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsloop.errors import InvalidArgument
from opsloop.llm import compile_response_format, token_bytes
from opsloop.serving._engine import TokenLogprob
from opsloop.serving._runtime import Runtime
from opsloop.serving._sampling import GenerationParams

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "EmbeddingRequest",
    "chat_logprobs",
    "completion_logprobs",
    "generation_params",
]

MAX_STOP = 16
MAX_N = 16
MAX_TOP_LOGPROBS = 20

# Documented by OpenAI, not offered here: any value other than the harmless one is refused.
_REFUSED_CHAT: dict[str, Any] = {
    "audio": None,
    "functions": None,
    "function_call": None,
    "prediction": None,
    "reasoning_effort": None,
    "web_search_options": None,
    "verbosity": None,
    "metadata": None,
    "store": (None, False),
    "modalities": (None, ["text"]),
    "service_tier": (None, "auto", "default"),
}
_REFUSED_COMPLETION: dict[str, Any] = {"suffix": None, "echo": (None, False), "best_of": (None, 1)}


class _Req(BaseModel):
    # Vendor extensions other servers accept are let through; OpenAI's own are checked below.
    model_config = ConfigDict(extra="allow")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


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
    n: int = Field(default=1, ge=1, le=MAX_N)
    seed: int | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    ignore_eos: bool = False  # an extension (as in vLLM): always generate max_tokens tokens


class ChatRequest(_GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(_GenerationRequest):
    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=5)


class EmbeddingRequest(_Req):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


def _refuse_unsupported(req: _GenerationRequest, refused: dict[str, Any]) -> None:
    extra = req.model_extra or {}
    for name, allowed in refused.items():
        if name not in extra and name not in type(req).model_fields:
            continue
        value = extra.get(name, getattr(req, name, None))
        ok = (None,) if allowed is None else allowed
        if value not in ok:
            raise InvalidArgument(
                f"{name} is not supported by this server", details={"param": name}
            )


def _logit_bias(req: _GenerationRequest, vocab: int) -> tuple[tuple[int, float], ...]:
    out = []
    for key, bias in (req.logit_bias or {}).items():
        try:
            tok = int(key)
        except ValueError:
            tok = -1
        if not 0 <= tok < vocab:
            raise InvalidArgument(
                f"logit_bias: {key!r} is not a token id of this model (0..{vocab - 1})",
                details={"param": "logit_bias"},
            )
        if not -100.0 <= bias <= 100.0:
            raise InvalidArgument(
                "logit_bias values must be in [-100, 100]", details={"param": "logit_bias"}
            )
        out.append((tok, float(bias)))
    return tuple(out)


def generation_params(
    req: _GenerationRequest, rt: Runtime, *, chat: bool, grammar: str | None = None
) -> GenerationParams:
    """The engine's parameters for ``req``; ``InvalidArgument`` naming what cannot be honoured.

    ``grammar``: a constraint already decided by the caller (tool calls);
    otherwise ``response_format`` gives it.
    """
    _refuse_unsupported(req, _REFUSED_CHAT if chat else _REFUSED_COMPLETION)
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
    tok = rt.model.tokenizer
    if grammar is None:
        grammar = compile_response_format(req.response_format, tok)
    if isinstance(req, ChatRequest):
        logprobs = bool(req.logprobs)
        if req.top_logprobs and not logprobs:
            raise InvalidArgument(
                "top_logprobs needs logprobs=true", details={"param": "top_logprobs"}
            )
        top = req.top_logprobs or 0
    elif isinstance(req, CompletionRequest):
        logprobs = req.logprobs is not None
        top = req.logprobs or 0
    else:
        logprobs, top = False, 0
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
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        logit_bias=_logit_bias(req, len(tok)),
        grammar=grammar,
        logprobs=logprobs,
        top_logprobs=top,
        n=req.n,
    )


def _token(tok: Any, token: int) -> tuple[str, list[int]]:
    raw = token_bytes(tok, token)
    return raw.decode("utf-8", errors="replace"), list(raw)


def chat_logprobs(tok: Any, entries: list[TokenLogprob] | None) -> dict[str, Any] | None:
    """OpenAI's ``choice.logprobs`` of a chat answer: ``{"content": [...]}``."""
    if entries is None:
        return None
    content = []
    for e in entries:
        text, raw = _token(tok, e.token)
        top = []
        for t, lp in e.top:
            tt, tr = _token(tok, t)
            top.append({"token": tt, "bytes": tr, "logprob": lp})
        content.append({"token": text, "bytes": raw, "logprob": e.logprob, "top_logprobs": top})
    return {"content": content, "refusal": None}


def completion_logprobs(
    tok: Any, entries: list[TokenLogprob] | None, offset: int = 0
) -> dict[str, Any] | None:
    """The legacy completions ``logprobs``: tokens, token_logprobs, top_logprobs, text_offset."""
    if entries is None:
        return None
    tokens, lps, tops, offsets = [], [], [], []
    pos = offset
    for e in entries:
        text, _ = _token(tok, e.token)
        tokens.append(text)
        lps.append(e.logprob)
        tops.append({_token(tok, t)[0]: lp for t, lp in e.top} if e.top else None)
        offsets.append(pos)
        pos += len(text)
    return {
        "tokens": tokens,
        "token_logprobs": lps,
        "top_logprobs": tops,
        "text_offset": offsets,
    }
