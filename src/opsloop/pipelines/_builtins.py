"""Built-in pipelines: RAG question answering with citations, structured output, multi-call chains.

``rag_qa`` numbers the retrieved chunks in its prompt and asks for ``[n]``
citations; the ``cite`` step turns the markers into citations of real chunk
ids, and when the model cites nothing (small models often do not) it cites
every retrieved chunk and says so in ``citation_source``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opsloop.pipelines._parsing import check_schema, schema_example
from opsloop.pipelines._pipeline import Pipeline
from opsloop.pipelines._rag import rag_parts
from opsloop.pipelines._steps import LLMStep, ParseStep, PromptStep
from opsloop.retrieval import Embedder, index_collection

__all__ = [
    "build_rag_index",
    "rag_qa",
    "structured",
    "structured_pipeline",
    "summarize_then_answer",
]


SUMMARY_TEMPLATE = "Summarize this text in two sentences.\n\n{{ document }}"
ANSWER_FROM_SUMMARY = "Summary: {{ summary }}\n\nUsing the summary, answer briefly: {{ question }}"

STRUCTURED_TEMPLATE = """{{ instruction }}

Reply with only JSON in this form, no other text:
{{ example }}"""


def rag_qa(
    index: str,
    provider: Any = "local:smollm2",
    k: int = 4,
    *,
    max_tokens: int = 128,
    filter: Mapping[str, Any] | None = None,
    embedder: str | None = None,
    name: str = "rag_qa",
    mode: str | None = None,
) -> Pipeline:
    """Question answering over vector ``index``: input ``question``; outputs ``answer``,
    ``citations`` (``[{n, chunk_id, path, title, text, score}]``) and ``citation_source``
    (``"model"`` when the answer cited chunks, ``"retrieved"`` when it cited none).
    ``mode``: the retriever, ``dense`` (default), ``keyword`` (BM25) or ``hybrid``."""
    return Pipeline(
        **rag_parts(
            index,
            provider,
            k,
            max_tokens=max_tokens,
            filter=filter,
            embedder=embedder,
            mode=mode,
        ),
        name=name,
    )


def build_rag_index(
    client: Any,
    collection: str,
    index_name: str,
    *,
    embedder: Any = None,
    home: Any = None,
    batch_size: int = 64,
    cache_dir: Any = None,
) -> Any:
    """Embed every chunk of document collection ``collection`` (``"name@version"``) into vector
    index ``index_name`` (under ``home``, default the client's): ids are chunk ids, metadata
    ``{source, title, doc_id, chunk_index, heading_path, ...}``, texts the chunk texts.
    ``embedder``: an ``opsloop.retrieval.Embedder`` (default: the bundled MiniLM). Returns the
    index (``opsloop.retrieval.index_collection`` does the work)."""
    emb = embedder if embedder is not None else Embedder.bundled(cache_dir=cache_dir)
    return index_collection(client, collection, index_name, emb, batch_size=batch_size, home=home)


def structured_pipeline(
    provider: Any,
    schema: Mapping[str, Any],
    *,
    retries: int = 2,
    max_tokens: int = 128,
    name: str = "structured",
) -> Pipeline:
    """Input ``instruction``; output ``value``, JSON matching ``schema`` (repaired/retried)."""
    schema = check_schema(schema)
    # The skeleton is literal text in the template: break any "{{" so it is not a placeholder.
    example = json.dumps(schema_example(schema), ensure_ascii=False).replace("{{", "{ {")
    return Pipeline(
        [
            PromptStep("prompt", STRUCTURED_TEMPLATE.replace("{{ example }}", example)),
            LLMStep("generate", provider, max_tokens=max_tokens, temperature=0.0),
            ParseStep("value", format="json", schema=schema, retries=retries),
        ],
        name=name,
        inputs=["instruction"],
        outputs=["value"],
    )


def structured(
    provider: Any,
    schema: Mapping[str, Any],
    prompt: str,
    *,
    retries: int = 2,
    max_tokens: int = 128,
    context: Any = None,
) -> Any:
    """The JSON value ``provider`` answers to ``prompt``, validated against ``schema``.

    Text around the JSON and Markdown fences are stripped; an invalid reply is
    sent back with the validation error up to ``retries`` times, then
    ``OutputInvalid`` is raised. ``provider``: a spec or a chat model object.
    """
    p = structured_pipeline(provider, schema, retries=retries, max_tokens=max_tokens)
    if context is not None:
        p.context = context
    return p.invoke({"instruction": prompt})["value"]


def summarize_then_answer(
    provider: Any = "local:smollm2", *, max_tokens: int = 64, name: str = "summarize_then_answer"
) -> Pipeline:
    """Two model calls: summarise ``document``, then answer ``question`` from the summary.
    Outputs ``summary`` and ``answer``."""
    return Pipeline(
        [
            PromptStep("summary_prompt", SUMMARY_TEMPLATE),
            LLMStep("summary", provider, max_tokens=max_tokens),
            PromptStep("answer_prompt", ANSWER_FROM_SUMMARY),
            LLMStep("answer", provider, max_tokens=max_tokens),
        ],
        name=name,
        inputs=["document", "question"],
        outputs=["summary", "answer"],
    )
