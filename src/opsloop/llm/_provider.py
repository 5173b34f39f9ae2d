"""``Provider``: the one interface over local models and HTTP endpoints, with tracing built in.

Subclasses implement the underscored methods (``_chat``, ``_complete``,
``_stream``, ``_embed``, ...); the public methods validate arguments once, time
the call, put a price on it, and record a GenAI span when tracing is on.

Tracing is on for a call when the provider was given ``tracing=`` (a
``Tracing``, an ``opsloop.Client`` or a ``Tracer``), or the call runs inside an
open span, or the process has a default tracer (``opsloop.tracing.configure``,
``Tracing.activate()``, or any earlier module-level span). ``trace=False``
turns it off; ``trace=True`` records to the default tracer even when none was
set up yet. Nothing is traced by default otherwise, so a plain script calling a
model does not create a database as a side effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from opsloop.errors import InvalidArgument, OpsloopError, ProviderError
from opsloop.llm._types import (
    ChatResponse,
    EmbeddingResponse,
    GenArgs,
    GenOptions,
    StreamChunk,
    Usage,
    check_messages,
    check_texts,
    check_tool_messages,
    gen_options,
)
from opsloop.tracing import (
    PriceTable,
    Tracer,
    configured_tracer,
    current_span,
    get_tracer,
    record_llm_call,
)

if TYPE_CHECKING:
    from opsloop.settings import Settings

__all__ = ["Provider"]

log = logging.getLogger("opsloop.llm")

Messages = list[dict[str, str]]
_T = TypeVar("_T")


def _as_tracer(tracing: Any) -> Tracer | None:
    if tracing is None:
        return None
    if isinstance(tracing, Tracer):
        return tracing
    tracer = getattr(tracing, "tracer", None)  # a Tracing
    if isinstance(tracer, Tracer):
        return tracer
    own = getattr(type(tracing), "tracing", None)  # an opsloop.Client
    if own is not None:
        t = tracing.tracing.tracer
        if isinstance(t, Tracer):
            return t
    raise InvalidArgument("tracing= takes a Tracing, an opsloop.Client or a Tracer")


class Provider:
    """A model you can chat with, complete, stream from, embed with and count tokens for.

    ``spec`` is how it was asked for (``"local:smollm2"``, ``"openai:gpt-4o-mini"``),
    ``model`` the model's name, ``provider`` the GenAI system
    (``"opsloop-local"`` or ``"openai"``). Every response carries its ``Usage``.

    ``chat``, ``complete``, ``stream`` and ``batch_chat`` take the generation
    keywords of ``GenArgs``: ``max_tokens=256``, ``temperature=0.0``,
    ``top_p=1.0``, ``stop=None``, ``seed=None``, ``response_format=None``,
    ``timeout_s=None``.
    """

    spec: str
    model: str
    provider: str
    #: ``chat_tools`` works (a local language model, an OpenAI-compatible endpoint).
    supports_tools: bool = False

    def __init__(
        self,
        *,
        spec: str,
        model: str,
        provider: str,
        settings: Settings,
        tracing: Any = None,
        trace: bool | None = None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.provider = provider
        self.settings = settings
        self._tracer = _as_tracer(tracing)
        self._trace = trace
        self._prices: PriceTable | None = None

    # ------------------------------------------------------------------ public API

    def chat(
        self,
        messages: list[dict[str, str]],
        **gen: Unpack[GenArgs],
    ) -> ChatResponse:
        """The assistant's reply to a conversation (``[{role, content}, ...]``)."""
        msgs = check_messages(messages)
        opts = gen_options(**gen)
        return self._traced("chat", msgs, opts, lambda: self._chat(msgs, opts))

    def chat_tools(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        *,
        tool_choice: Any = "auto",
        **gen: Unpack[GenArgs],
    ) -> ChatResponse:
        """The reply to a conversation that offers ``tools`` (OpenAI function objects):
        ``tool_calls`` set when the model calls one (their arguments valid JSON for the
        tool's ``parameters``), else ``text``. ``tool_choice``: ``"auto"``, ``"none"``,
        ``"required"`` or ``{"type": "function", "function": {"name": ...}}``. Earlier calls
        (assistant turns with ``tool_calls``) and their results (``tool`` turns) continue
        the conversation. Local models and OpenAI-compatible endpoints take tools."""
        if not self.supports_tools:
            raise InvalidArgument(
                f"{self.spec} does not take tools", details={"param": "tools", "spec": self.spec}
            )
        msgs = check_tool_messages(messages)
        if isinstance(tools, str | bytes) or not isinstance(tools, Sequence) or not tools:
            raise InvalidArgument(
                "tools must be a non-empty list of {type: function, function: {...}} objects",
                details={"param": "tools"},
            )
        opts = gen_options(**gen)
        listed = [dict(t) for t in tools]
        return self._traced(
            "chat", msgs, opts, lambda: self._chat_tools(msgs, listed, tool_choice, opts)
        )

    def complete(
        self,
        prompt: str,
        **gen: Unpack[GenArgs],
    ) -> ChatResponse:
        """The continuation of a raw prompt (no chat template)."""
        if not isinstance(prompt, str):
            raise InvalidArgument("prompt must be a string", details={"param": "prompt"})
        opts = gen_options(**gen)
        return self._traced("text_completion", prompt, opts, lambda: self._complete(prompt, opts))

    def stream(
        self,
        messages: list[dict[str, str]],
        **gen: Unpack[GenArgs],
    ) -> Iterator[StreamChunk]:
        """The reply as it is generated; the last chunk carries ``finish_reason`` and ``usage``.

        Arguments are checked now; generation starts at the first ``next()``.
        Leaving the loop early stops the generation.
        """
        msgs = check_messages(messages)
        opts = gen_options(**gen)
        self._check_can_generate()
        return self._traced_stream(msgs, opts)

    def batch_chat(
        self,
        conversations: list[list[dict[str, str]]],
        **gen: Unpack[GenArgs],
    ) -> list[ChatResponse]:
        """One reply per conversation (a local model answers them in one batched generate)."""
        if isinstance(conversations, str) or not isinstance(conversations, Sequence):
            raise InvalidArgument(
                "conversations must be a list of message lists", details={"param": "conversations"}
            )
        convs = [check_messages(c) for c in conversations]
        if not convs:
            return []
        opts = gen_options(**gen)

        def failed(start: float, err: OpsloopError) -> None:
            for c in convs:
                self._record("chat", c, opts, start, error=err)

        out, start, elapsed = self._timed(lambda: self._batch_chat(convs, opts), failed)
        for c, r in zip(convs, out, strict=True):
            r.latency_s = elapsed
            r.cost_usd = self._cost(r.usage)
            self._record("chat", c, opts, start, response=r)
        return out

    def embed(self, texts: Sequence[str]) -> EmbeddingResponse:
        """One vector per text, in order, with the tokens the texts used."""
        items = check_texts(texts)
        if not items:
            return EmbeddingResponse([], Usage(0, 0), self.model)
        r, start, elapsed = self._timed(
            lambda: self._embed(items),
            lambda start, err: self._record("embeddings", items, None, start, error=err),
        )
        r.latency_s = elapsed
        dim = len(r.vectors[0]) if r.vectors else 0
        self._record(
            "embeddings",
            items,
            None,
            start,
            usage=r.usage,
            output={"vectors": len(r.vectors), "dimensions": dim},
        )
        return r

    def count_tokens(self, text_or_messages: str | list[dict[str, str]]) -> int:
        """Tokens in a text, or in the prompt a conversation becomes (as ``chat`` would send it)."""
        if isinstance(text_or_messages, str):
            return self._count_text(text_or_messages)
        return self._count_messages(check_messages(text_or_messages))

    def close(self) -> None:
        """Release connections (HTTP providers); local models stay cached for the process."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} spec={self.spec!r} model={self.model!r}>"

    # ------------------------------------------------------------------ for subclasses

    def _check_can_generate(self) -> None:
        """Raise now (not at the first chunk) when this provider cannot generate text."""

    def _chat(self, messages: Messages, opts: GenOptions) -> ChatResponse:
        raise InvalidArgument(f"{self.spec} cannot chat", details={"spec": self.spec})

    def _chat_tools(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        opts: GenOptions,
    ) -> ChatResponse:
        raise NotImplementedError

    def _complete(self, prompt: str, opts: GenOptions) -> ChatResponse:
        raise InvalidArgument(f"{self.spec} cannot complete text", details={"spec": self.spec})

    def _stream(self, messages: Messages, opts: GenOptions) -> Iterator[StreamChunk]:
        r = self._chat(messages, opts)
        yield StreamChunk(r.text, r.finish_reason, r.usage)

    def _batch_chat(self, conversations: list[Messages], opts: GenOptions) -> list[ChatResponse]:
        return [self._chat(c, opts) for c in conversations]

    def _embed(self, texts: list[str]) -> EmbeddingResponse:
        raise InvalidArgument(
            f"{self.spec} is not an embedding model; use an embedder such as local:minilm",
            details={"spec": self.spec},
        )

    def _count_text(self, text: str) -> int:
        raise InvalidArgument(f"{self.spec} cannot count tokens", details={"spec": self.spec})

    def _count_messages(self, messages: Messages) -> int:
        raise InvalidArgument(f"{self.spec} cannot count tokens", details={"spec": self.spec})

    # ------------------------------------------------------------------ plumbing

    def _wrap(self, exc: Exception) -> OpsloopError:
        if isinstance(exc, OpsloopError):
            return exc
        return ProviderError(
            f"{self.spec} failed: {type(exc).__name__}: {exc}",
            details={"spec": self.spec, "error": type(exc).__name__},
        )

    def _timed(
        self, fn: Callable[[], _T], on_error: Callable[[float, OpsloopError], None]
    ) -> tuple[_T, float, float]:
        """``fn()`` with its start (epoch seconds) and duration; a failure goes to
        ``on_error`` (to be recorded) and is raised as an ``OpsloopError``."""
        start, p0 = time.time(), time.perf_counter()
        try:
            out = fn()
        except Exception as exc:
            err = self._wrap(exc)
            on_error(start, err)
            if err is exc:
                raise
            raise err from exc
        return out, start, time.perf_counter() - p0

    def _traced(
        self, op: str, inputs: Any, opts: GenOptions, fn: Callable[[], ChatResponse]
    ) -> ChatResponse:
        r, start, elapsed = self._timed(
            fn, lambda start, err: self._record(op, inputs, opts, start, error=err)
        )
        r.latency_s = elapsed
        r.cost_usd = self._cost(r.usage)
        self._record(op, inputs, opts, start, response=r)
        return r

    def _traced_stream(self, msgs: Messages, opts: GenOptions) -> Iterator[StreamChunk]:
        start, p0 = time.time(), time.perf_counter()
        parts: list[str] = []
        last: StreamChunk | None = None
        first_s: float | None = None
        error: OpsloopError | None = None
        try:
            for chunk in self._stream(msgs, opts):
                if first_s is None and chunk.text:
                    first_s = time.perf_counter() - p0
                parts.append(chunk.text)
                if chunk.finish_reason is not None:
                    last = chunk
                yield chunk
        except Exception as exc:
            error = self._wrap(exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            extra = {} if first_s is None else {"gen_ai.response.time_to_first_token_s": first_s}
            self._record(
                "chat",
                msgs,
                opts,
                start,
                usage=last.usage if last else None,
                output="".join(parts),
                finish=(last.finish_reason if last else "cancelled"),
                error=error,
                extra={"opsloop.stream": True, **extra},
            )

    def _cost(self, usage: Usage) -> float | None:
        if self._prices is None:
            self._prices = PriceTable.build(self.settings.home, {})
        return self._prices.cost(self.model, usage.input_tokens, usage.output_tokens)

    def _active_tracer(self) -> Tracer | None:
        if self._trace is False:
            return None
        if self._tracer is not None:
            return self._tracer if self._tracer.enabled else None
        cur = current_span()
        if cur is not None:
            return cur.tracer if cur.tracer.enabled else None
        default = configured_tracer()
        if default is None and self._trace:
            default = get_tracer()
        return default if default is not None and default.enabled else None

    def _record(
        self,
        op: str,
        inputs: Any,
        opts: GenOptions | None,
        start: float,
        *,
        response: ChatResponse | None = None,
        usage: Usage | None = None,
        output: Any = None,
        finish: str | None = None,
        error: BaseException | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        try:
            tracer = self._active_tracer()
            if tracer is not None:
                self._record_to(
                    tracer, op, inputs, opts, start, response, usage, output, finish, error, extra
                )
        except Exception:  # a tracing problem must never fail the model call
            log.warning("could not record the span of a %s call", self.spec, exc_info=True)

    def _record_to(
        self,
        tracer: Tracer,
        op: str,
        inputs: Any,
        opts: GenOptions | None,
        start: float,
        response: ChatResponse | None,
        usage: Usage | None,
        output: Any,
        finish: str | None,
        error: BaseException | None,
        extra: dict[str, Any] | None,
    ) -> None:
        if response is not None:
            usage, output, finish = response.usage, response.text, response.finish_reason
        attrs: dict[str, Any] = {"opsloop.llm.spec": self.spec, **(extra or {})}
        if opts is not None and opts.response_format is not None:
            attrs["gen_ai.request.response_format"] = opts.response_format.get("type")
        record_llm_call(
            model=self.model,
            provider=self.provider,
            operation=op,
            input_messages=inputs,
            output=output,
            input_tokens=None if usage is None else usage.input_tokens,
            output_tokens=None if usage is None else usage.output_tokens,
            params=None if opts is None else opts.trace_params(),
            response_model=self.model,
            response_id=None if response is None else response.response_id,
            finish_reasons=None if finish is None else [finish],
            start_time=start,
            end_time=time.time(),
            error=error,
            attributes=attrs,
            tracer=tracer,
        )
