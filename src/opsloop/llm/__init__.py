"""LLM providers: one interface over local models and OpenAI-compatible HTTP endpoints.

::

    from opsloop.llm import get_provider
    p = get_provider("local:smollm2")              # bundled SmolLM2-135M-Instruct
    r = p.chat([{"role": "user", "content": "Hi"}], max_tokens=32)
    r.text, r.usage.input_tokens, r.usage.output_tokens
    for chunk in p.stream([{"role": "user", "content": "Hi"}]):
        print(chunk.text, end="")
    get_provider("local:minilm").embed(["a sentence"]).vectors
    get_provider("openai:gpt-4o-mini", api_key_secret="openai")   # key from `opsloop secrets set`

Every call is timed, priced and, when tracing is on, recorded as a span with
the OpenTelemetry GenAI attributes. ``import opsloop.llm`` is cheap: torch,
transformers and httpx load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.llm._factory import BundledModel, bundled_models, get_provider
    from opsloop.llm._local import LocalProvider, check_local, clear_model_cache, load_local_model
    from opsloop.llm._openai import OpenAIProvider
    from opsloop.llm._provider import Provider
    from opsloop.llm._retry import RetryPolicy
    from opsloop.llm._secrets import SecretStore
    from opsloop.llm._structured import (
        Constraint,
        apply_masks,
        compile_response_format,
        example_schemas,
        fill_masks,
        grammar_tokenizer,
        token_bytes,
    )
    from opsloop.llm._tools import ToolPlan, parse_tool_calls, plan_tools, render_tool_messages
    from opsloop.llm._types import ChatResponse, EmbeddingResponse, StreamChunk, Usage

_LAZY = {
    "BundledModel": "opsloop.llm._factory",
    "bundled_models": "opsloop.llm._factory",
    "get_provider": "opsloop.llm._factory",
    "LocalProvider": "opsloop.llm._local",
    "check_local": "opsloop.llm._local",
    "clear_model_cache": "opsloop.llm._local",
    "load_local_model": "opsloop.llm._local",
    "OpenAIProvider": "opsloop.llm._openai",
    "Provider": "opsloop.llm._provider",
    "RetryPolicy": "opsloop.llm._retry",
    "SecretStore": "opsloop.llm._secrets",
    "Constraint": "opsloop.llm._structured",
    "apply_masks": "opsloop.llm._structured",
    "compile_response_format": "opsloop.llm._structured",
    "fill_masks": "opsloop.llm._structured",
    "example_schemas": "opsloop.llm._structured",
    "grammar_tokenizer": "opsloop.llm._structured",
    "token_bytes": "opsloop.llm._structured",
    "ToolPlan": "opsloop.llm._tools",
    "parse_tool_calls": "opsloop.llm._tools",
    "plan_tools": "opsloop.llm._tools",
    "render_tool_messages": "opsloop.llm._tools",
    "ChatResponse": "opsloop.llm._types",
    "EmbeddingResponse": "opsloop.llm._types",
    "StreamChunk": "opsloop.llm._types",
    "Usage": "opsloop.llm._types",
}

__all__ = [
    "BundledModel",
    "ChatResponse",
    "Constraint",
    "EmbeddingResponse",
    "LocalProvider",
    "OpenAIProvider",
    "Provider",
    "RetryPolicy",
    "SecretStore",
    "StreamChunk",
    "ToolPlan",
    "Usage",
    "apply_masks",
    "bundled_models",
    "check_local",
    "clear_model_cache",
    "compile_response_format",
    "example_schemas",
    "fill_masks",
    "get_provider",
    "grammar_tokenizer",
    "load_local_model",
    "parse_tool_calls",
    "plan_tools",
    "render_tool_messages",
    "token_bytes",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
