"""LLM pipelines: chains of steps declared in Python or YAML, registered, served and traced.

::

    from opsloop.pipelines import Pipeline, PromptStep, LLMStep, ParseStep

    p = Pipeline.from_yaml("qa.yaml")           # or Pipeline([...steps...], name="qa")
    p({"question": "What does the warranty cover?"})
    p.register(client, "qa", alias="prod")      # then: opsloop serve models:/qa@prod

Steps: ``prompt``, ``llm``, ``parse`` (JSON schema, repair), ``retrieve``,
``tool``, ``agent`` (a bounded tool loop), ``python``, ``cite``. Built-ins:
``rag_qa``, ``structured``, ``summarize_then_answer``; tools: ``LocalCorpusSearch``
(offline BM25), ``WebSearchTool``, ``KnowledgeBaseQA``. Every invocation is a
trace with one span per step and per model, retrieval and tool call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.pipelines._builtins import (
        build_rag_index,
        rag_qa,
        structured,
        structured_pipeline,
        summarize_then_answer,
    )
    from opsloop.pipelines._context import RunContext
    from opsloop.pipelines._flavor import LoadedPipeline, save_pipeline
    from opsloop.pipelines._parsing import extract_json
    from opsloop.pipelines._pipeline import KnowledgeBaseQA, Pipeline, PipelineResult
    from opsloop.pipelines._steps import LLMStep, ParseStep, PromptStep, Step
    from opsloop.pipelines._steps_agent import AgentStep, CiteStep
    from opsloop.pipelines._steps_io import PythonStep, RetrieveStep, ToolStep
    from opsloop.pipelines._template import FILTERS
    from opsloop.pipelines._tools import (
        FunctionTool,
        LocalCorpusSearch,
        Tool,
        WebSearch,
        WebSearchTool,
    )

__all__ = [
    "FILTERS",
    "AgentStep",
    "CiteStep",
    "FunctionTool",
    "KnowledgeBaseQA",
    "LLMStep",
    "LoadedPipeline",
    "LocalCorpusSearch",
    "ParseStep",
    "Pipeline",
    "PipelineResult",
    "PromptStep",
    "PythonStep",
    "RetrieveStep",
    "RunContext",
    "Step",
    "Tool",
    "ToolStep",
    "WebSearch",
    "WebSearchTool",
    "build_rag_index",
    "extract_json",
    "rag_qa",
    "save_pipeline",
    "structured",
    "structured_pipeline",
    "summarize_then_answer",
]

_LAZY: dict[str, str] = {
    "build_rag_index": "_builtins",
    "rag_qa": "_builtins",
    "structured": "_builtins",
    "structured_pipeline": "_builtins",
    "summarize_then_answer": "_builtins",
    "RunContext": "_context",
    "LoadedPipeline": "_flavor",
    "save_pipeline": "_flavor",
    "extract_json": "_parsing",
    "Pipeline": "_pipeline",
    "PipelineResult": "_pipeline",
    "KnowledgeBaseQA": "_pipeline",
    "FILTERS": "_template",
}
_LAZY.update({n: "_steps" for n in ("LLMStep", "ParseStep", "PromptStep", "Step")})
_LAZY.update({n: "_steps_agent" for n in ("AgentStep", "CiteStep")})
_LAZY.update({n: "_steps_io" for n in ("PythonStep", "RetrieveStep", "ToolStep")})
_LAZY.update(
    {
        n: "_tools"
        for n in (
            "FunctionTool",
            "LocalCorpusSearch",
            "Tool",
            "WebSearch",
            "WebSearchTool",
        )
    }
)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'opsloop.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"opsloop.pipelines.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
