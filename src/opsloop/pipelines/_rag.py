"""The steps of RAG question answering with citations (``rag_qa`` and ``KnowledgeBaseQA``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsloop.pipelines._steps import LLMStep, PromptStep
from opsloop.pipelines._steps_agent import CiteStep
from opsloop.pipelines._steps_io import RetrieveStep

__all__ = ["RAG_TEMPLATE", "rag_parts"]

RAG_TEMPLATE = """Answer the question using only the numbered sources below. \
Cite the sources you use as [1], [2].

Sources:
{{ retrieve | numbered }}

Question: {{ question }}"""


def rag_parts(
    index: str,
    provider: Any = "local:smollm2",
    k: int = 4,
    *,
    max_tokens: int = 128,
    filter: Mapping[str, Any] | None = None,
    embedder: str | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """``Pipeline`` arguments (steps, inputs, outputs) of RAG question answering over ``index``."""
    return {
        "steps": [
            RetrieveStep(
                "retrieve",
                index,
                query="{{ question }}",
                k=k,
                filter=filter,
                embedder=embedder,
                mode=mode,
            ),
            PromptStep("prompt", RAG_TEMPLATE),
            LLMStep("generate", provider, max_tokens=max_tokens, temperature=0.0),
            CiteStep("cite", answer="generate", hits="retrieve"),
        ],
        "inputs": ["question"],
        "outputs": {
            "answer": "cite.answer",
            "citations": "cite.citations",
            "citation_source": "cite.citation_source",
        },
    }
