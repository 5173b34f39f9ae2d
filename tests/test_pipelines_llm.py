"""Pipelines on real models: SmolLM2 (structured output, chains, tool loop) and MiniLM (RAG).

Generation is kept to a few dozen tokens: these run on 2 CPU cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.pipelines import (
    AgentStep,
    LocalCorpusSearch,
    Pipeline,
    RunContext,
    build_rag_index,
    rag_qa,
    structured,
    summarize_then_answer,
)
from opsloop.pipelines._parsing import validate

pytest.importorskip("transformers")
pytest.importorskip("gguf")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMOL = "local:smollm2"


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> Iterator[Any]:
    from opsloop.llm import get_provider

    p = get_provider(SMOL, cache_dir=model_cache)
    yield p
    p.close()


def _ctx(client: opsloop.Client, smol: Any, model_cache: Path) -> RunContext:
    return RunContext(
        providers={SMOL: smol}, client=client, cache_dir=model_cache, tracer=client.tracing.tracer
    )


def _tree(client: opsloop.Client, trace_id: str) -> list[Any]:
    client.tracing.flush()
    return client.tracing.get_trace(trace_id, flat=True).spans


def test_structured_output_from_smollm2(
    smol: Any, client: opsloop.Client, model_cache: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    value = structured(
        smol,
        schema,
        "What is the capital of France?",
        max_tokens=32,
        context=_ctx(client, smol, model_cache),
    )
    assert validate(value, schema) == []
    assert isinstance(value["answer"], str) and value["answer"].strip()


def test_summarize_then_answer_is_two_model_calls(
    smol: Any, client: opsloop.Client, model_cache: Path
) -> None:
    p = summarize_then_answer(SMOL, max_tokens=24)
    p.context = _ctx(client, smol, model_cache)
    res = p.run(
        {
            "document": "The kettle warranty covers heating element failures for two years. "
            "Damage from descaling with vinegar is not covered.",
            "question": "How long is the warranty?",
        }
    )
    assert set(res.outputs) == {"summary", "answer"}
    assert all(isinstance(v, str) and v.strip() for v in res.outputs.values())
    # The answer prompt really carried the first call's output.
    assert res.outputs["summary"] in res.state["answer_prompt"]
    spans = _tree(client, res.trace_id or "")
    root = next(s for s in spans if s.parent_span_id is None)
    kids = [(s.name, s.kind) for s in spans if s.parent_span_id == root.span_id]
    assert root.kind == "chain" and kids == [
        ("summary_prompt", "chain"),
        ("summary", "llm"),
        ("answer_prompt", "chain"),
        ("answer", "llm"),
    ]
    llm = [s for s in spans if s.kind == "llm"]
    assert len(llm) == 2 and all(s.input_tokens and s.output_tokens for s in llm)


def test_agent_tool_loop_is_bounded_and_traced(
    smol: Any, client: opsloop.Client, model_cache: Path, tmp_path: Path
) -> None:
    (tmp_path / "kettle.md").write_text("# Kettle\n\nThe kettle warranty lasts two years.\n")
    p = Pipeline(
        [AgentStep("agent", SMOL, tools=["search"], max_iterations=1, max_tokens=32)],
        name="agent-loop",
        inputs=["question"],
        tools=[LocalCorpusSearch(tmp_path, name="search")],
    )
    p.context = _ctx(client, smol, model_cache)
    res = p.run({"question": "How long does the kettle warranty last? Use the search tool."})
    out = res.outputs["agent"]
    assert isinstance(out["answer"], str)
    assert out["iterations"] == len(out["tool_calls"]) + 1 <= 2
    spans = _tree(client, res.trace_id or "")
    agent = next(s for s in spans if s.name == "agent")
    assert agent.kind == "agent"
    kids = [s for s in spans if s.parent_span_id == agent.span_id]
    # One llm span per model call, one tool span per tool call, under the agent span.
    assert sum(s.kind == "llm" for s in kids) == out["iterations"]
    assert sum(s.kind == "tool" for s in kids) == len(out["tool_calls"])


def test_agent_calls_tools_through_the_models_tool_protocol(
    smol: Any, client: opsloop.Client, model_cache: Path, tmp_path: Path
) -> None:
    """A local model takes tools: the first reply must be a call (``tool_choice="required"``),
    generated under the tool's schema, so its arguments validate; the result goes back as a
    ``tool`` turn and the model answers from it."""
    import json

    (tmp_path / "kettle.md").write_text("# Kettle\n\nThe kettle warranty lasts two years.\n")
    search = LocalCorpusSearch(tmp_path, name="search")
    p = Pipeline(
        [AgentStep("agent", SMOL, tools=["search"], max_iterations=1, tool_choice="required",
                   max_tokens=48)],
        name="agent-tools", inputs=["question"], tools=[search],
    )  # fmt: skip
    p.context = _ctx(client, smol, model_cache)
    res = p.run({"question": "How long does the kettle warranty last?"})
    out = res.outputs["agent"]
    assert out["protocol"] == "tools" and out["iterations"] == 2
    (call,) = out["tool_calls"]
    assert call["tool"] == "search" and call["id"].startswith("call_")
    assert search.check_args(call["args"]) == call["args"]  # valid for its schema
    # The search ran on what the 135M model asked (its query is its own: not asserted).
    assert isinstance(call["result"], list) and isinstance(call["args"]["query"], str)
    assert isinstance(out["answer"], str) and out["answer"]
    spans = _tree(client, res.trace_id or "")
    agent = next(s for s in spans if s.name == "agent")
    assert agent.attributes["opsloop.agent.protocol"] == "tools"
    kids = sorted((s for s in spans if s.parent_span_id == agent.span_id), key=lambda s: s.start_us)
    assert [s.kind for s in kids] == ["llm", "tool", "llm"]
    # The second call saw the first one's call and its result as a tool turn.
    second = kids[2].inputs
    assert second[-2]["tool_calls"][0]["id"] == call["id"]
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": json.dumps(call["result"], ensure_ascii=False),
    }
    with pytest.raises(Exception, match="tool_choice"):
        AgentStep("agent", SMOL, tools=["search"], tool_choice="always")


def test_agent_falls_back_to_the_json_protocol_for_a_model_without_tools(
    smol: Any, client: opsloop.Client, model_cache: Path, tmp_path: Path
) -> None:
    class PlainChat:  # a user's own wrapper: chat() only, no tool protocol
        def chat(self, messages: Any, **params: Any) -> Any:
            return smol.chat(messages, **params)

    (tmp_path / "kettle.md").write_text("# Kettle\n\nThe kettle warranty lasts two years.\n")
    p = Pipeline(
        [AgentStep("agent", "mine", tools=["search"], max_iterations=1, max_tokens=32)],
        name="agent-json", inputs=["question"],
        tools=[LocalCorpusSearch(tmp_path, name="search")],
    )  # fmt: skip
    p.context = RunContext(
        providers={"mine": PlainChat()}, client=client, cache_dir=model_cache,
        tracer=client.tracing.tracer,
    )  # fmt: skip
    out = p.run({"question": "How long does the kettle warranty last?"}).outputs["agent"]
    assert out["protocol"] in ("json", "free_text")
    assert out["iterations"] == len(out["tool_calls"]) + 1 <= 2


def test_rag_over_a_document_collection_cites_real_chunks(
    smol: Any, client: opsloop.Client, model_cache: Path, tmp_path: Path, home: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text(
        "# Warranty\n\nThe kettle warranty covers the heating element for two years.\n"
    )
    (docs / "shipping.md").write_text("# Shipping\n\nOrders ship within three days.\n")
    (docs / "colours.md").write_text("# Colours\n\nThe kettle comes in red, black and white.\n")
    v = client.datasets.create("kb", docs, kind="documents", chunking={"size": 300, "overlap": 30})
    idx = build_rag_index(client, f"kb@{v.version}", "kb-index")
    chunk_ids = {c["chunk_id"] for c in client.datasets.chunks(f"kb@{v.version}").to_pylist()}
    assert len(idx) == len(chunk_ids) == 3
    p = rag_qa(index="kb-index", provider=SMOL, k=2, max_tokens=40)
    p.context = _ctx(client, smol, model_cache)
    res = p.run({"question": "How long is the kettle warranty?"})
    out = res.outputs
    assert isinstance(out["answer"], str) and out["answer"]
    assert out["citation_source"] in ("model", "retrieved")
    cited = [c["chunk_id"] for c in out["citations"]]
    assert cited and set(cited) <= chunk_ids
    assert "warranty.md" in {c["path"] for c in out["citations"]}
    spans = _tree(client, res.trace_id or "")
    root = next(s for s in spans if s.parent_span_id is None)
    kids = [(s.name, s.kind) for s in spans if s.parent_span_id == root.span_id]
    assert (root.name, root.kind) == ("rag_qa", "chain")
    assert kids == [
        ("retrieve", "retriever"),
        ("prompt", "chain"),
        ("generate", "llm"),
        ("cite", "other"),
    ]
    retrieve = next(s for s in spans if s.name == "retrieve")
    assert [h["id"] for h in retrieve.outputs] == [h["id"] for h in res.state["retrieve"]]
