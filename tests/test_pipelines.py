"""LLM pipelines without model weights: YAML checks, JSON repair, BM25 search, tools, registry, serving.

The one test double here is ``ScriptedModel``: an upstream that answers
malformed JSON first, which a real greedy model cannot be made to do on
demand; it drives the repair branch. Real models are in test_pipelines_llm.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument, OutputInvalid, PipelineInvalid
from opsloop.pipelines import (
    FunctionTool,
    LocalCorpusSearch,
    ParseStep,
    Pipeline,
    PromptStep,
    PythonStep,
    ToolStep,
    WebSearchTool,
    extract_json,
)
from opsloop.pipelines._bm25 import BM25
from opsloop.pipelines._steps import LLMStep
from opsloop.pipelines._steps_agent import cite
from opsloop.settings import Settings
from tests._procs import wait_until
from tests.test_serving import ThreadServer

# ---------------------------------------------------------------- helpers used by pipelines


def shout(text: str) -> str:
    """Upper-case the text (a python step)."""
    return text.upper()


def word_count(text: str) -> dict[str, int]:
    """Count the words of a text (a python tool)."""
    return {"words": len(text.split())}


@dataclass
class _Resp:
    text: str


class ScriptedModel:
    """An upstream that answers from a script, in order (only for the malformed-output branch)."""

    model = "scripted"
    provider = "test"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict[str, str]]] = []

    def chat(self, messages: list[dict[str, str]], **kw: Any) -> _Resp:
        self.seen.append(list(messages))
        return _Resp(self.replies.pop(0))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "warranty.md").write_text(
        "# Warranty\n\nThe kettle warranty covers heating element failures for two years.\n"
        "Damage from descaling with vinegar is not covered.\n"
    )
    (d / "shipping.md").write_text(
        "# Shipping\n\nOrders ship within three days. Express shipping costs twelve euros.\n"
    )
    (d / "notes.txt").write_text("Kettles boil water. Descaling keeps a kettle quiet.\n")
    return d


def _spans(client: Any, trace_id: str) -> list[Any]:
    client.tracing.flush()
    return client.tracing.get_trace(trace_id, flat=True).spans


# ---------------------------------------------------------------- YAML declarations

GOOD = """
name: shouter
inputs: [text]
outputs: [loud]
steps:
  - name: loud
    type: python
    function: tests.test_pipelines:shout
    args: {text: "{{ text }}"}
"""


@pytest.mark.parametrize(
    ("yaml_text", "needle", "details"),
    [
        ("name: x\nsteps: [", "line", {}),
        ("name: x\nsteps: []\n", "'steps' must be a non-empty list", {"field": "steps"}),
        (
            "name: x\nbogus: 1\nsteps: [{name: a, type: prompt, template: hi}]\n",
            "unknown top-level field 'bogus'",
            {"field": "bogus"},
        ),
        (
            "steps: [{name: a, type: telepathy}]\n",
            "step 'a': field 'type'",
            {"step": "a", "field": "type"},
        ),
        (
            "steps: [{name: a, type: prompt, template: hi, colour: red}]\n",
            "step 'a': field 'colour'",
            {"step": "a", "field": "colour"},
        ),
        (
            "steps: [{name: a, type: llm, max_tokens: lots, input: q}]\n",
            "step 'a': field 'max_tokens'",
            {"step": "a", "field": "max_tokens"},
        ),
        (
            "steps: [{name: a, type: llm}]\n",
            "step 'a' is first, so it needs an explicit input",
            {"step": "a", "field": "input"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: prompt, template: '{{ nope }}'}]\n",
            "step 'a' reads 'nope'",
            {"step": "a", "field": "input"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: parse, input: q, schema: {type: 12}}]\n",
            "step 'a': field 'schema'",
            {"step": "a", "field": "schema"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: tool, tool: search, args: {query: '{{ q }}'}}]\n",
            "uses tool 'search'",
            {"step": "a", "field": "tool"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: prompt, template: x}, {name: a, type: prompt, template: y}]\n",
            "two steps are named 'a'",
            {"step": "a", "field": "name"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: python, function: 'os.path:nope'}]\n",
            "step 'a': field 'function'",
            {"step": "a", "field": "function"},
        ),
        (
            "inputs: [q]\nsteps: [{name: a, type: prompt, template: 'x {{ q | shout }}'}]\n",
            "unknown template filter 'shout'",
            {"step": "a"},
        ),
        (
            "inputs: [q]\noutputs: [ghost]\nsteps: [{name: a, type: prompt, template: x}]\n",
            "output 'ghost'",
            {"field": "outputs"},
        ),
    ],
)
def test_yaml_errors_name_the_step_and_field(
    yaml_text: str, needle: str, details: dict[str, Any]
) -> None:
    with pytest.raises(PipelineInvalid) as ei:
        Pipeline.from_yaml(yaml_text)
    err = ei.value
    assert err.code == "PIPELINE_INVALID" and err.http_status == 400
    assert needle in err.message
    for k, v in details.items():
        assert err.details.get(k) == v, err.details


def test_yaml_pipeline_runs_and_round_trips(tmp_path: Path, client: Any) -> None:
    p = Pipeline.from_yaml(GOOD)
    p.configure(client=client, tracer=client.tracing.tracer)
    assert p.inputs == ["text"] and list(p.outputs) == ["loud"]
    assert p({"text": "hi there"}) == {"loud": "HI THERE"}
    f = tmp_path / "p.yaml"
    f.write_text(p.to_yaml())
    again = Pipeline.from_yaml(f)
    assert again.to_dict() == p.to_dict()
    with pytest.raises(InvalidArgument, match=r"missing \['text'\]"):
        p({})
    with pytest.raises(InvalidArgument, match=r"unknown \['other'\]"):
        p({"text": "a", "other": 1})


def test_python_declaration_refuses_unsaveable_function() -> None:
    p = Pipeline([PythonStep("f", lambda s: 1)], inputs=["x"])
    assert p({"x": 1}) == {"f": 1}  # runs in-process
    with pytest.raises(PipelineInvalid, match="step 'f': field 'function'"):
        p.to_dict()


# ---------------------------------------------------------------- JSON parsing and repair


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure! Here it is:\n```json\n{"a": [1, 2]}\n```\nAnything else?', {"a": [1, 2]}),
        ('The answer is {"a": "x}y", "b": {"c": 2}} as requested.', {"a": "x}y", "b": {"c": 2}}),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("[1, 2, 3]", [1, 2, 3]),
    ],
)
def test_extract_json(text: str, value: Any) -> None:
    assert extract_json(text) == value


def test_extract_json_refuses_text_without_json() -> None:
    with pytest.raises(InvalidArgument, match="cut off"):
        extract_json('{"a": 1, "b": ')


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def test_malformed_upstream_output_is_repaired_with_the_error(client: Any) -> None:
    upstream = ScriptedModel(
        [
            "The city is Paris, population about 2 million.",  # no JSON at all
            '```json\n{"city": "Paris", "population": "2 million"}\n```',  # wrong type
            'Here: {"city": "Paris", "population": 2102650}',
        ]
    )
    p = Pipeline(
        [
            PromptStep("prompt", "Give the city and population as JSON: {{ q }}"),
            LLMStep("gen", upstream, max_tokens=32),
            ParseStep("parsed", schema=SCHEMA, retries=2),
        ],
        name="structured-test",
        inputs=["q"],
    )
    p.configure(client=client, tracer=client.tracing.tracer)
    res = p.run({"q": "capital of France"})
    assert res.outputs == {"parsed": {"city": "Paris", "population": 2102650}}
    # Each repair re-asks with the conversation, the bad reply and the validation error.
    assert len(upstream.seen) == 3
    second = upstream.seen[1]
    assert second[-2] == {
        "role": "assistant",
        "content": "The city is Paris, population about 2 million.",
    }
    assert "no JSON value" in second[-1]["content"] and '"population"' in second[-1]["content"]
    assert "is not of type 'integer'" in upstream.seen[2][-1]["content"]
    spans = _spans(client, res.trace_id or "")
    by_name = {s.name: s for s in spans}
    assert by_name["parsed"].attributes["opsloop.parse.attempts"] == 3
    assert by_name["parsed"].attributes["opsloop.parse.repaired"] is True
    repairs = [s for s in spans if s.name.startswith("parsed repair")]
    assert [s.kind for s in repairs] == ["llm", "llm"]
    assert all(s.parent_span_id == by_name["parsed"].span_id for s in repairs)
    assert by_name["gen"].kind == "llm" and by_name["gen"].model == "scripted"


def test_repair_gives_up_with_output_invalid(client: Any) -> None:
    upstream = ScriptedModel(["nope", "still nope"])
    p = Pipeline(
        [LLMStep("gen", upstream, input="q"), ParseStep("parsed", schema=SCHEMA, retries=1)],
        inputs=["q"],
    )
    p.configure(client=client, tracer=client.tracing.tracer)
    with pytest.raises(OutputInvalid) as ei:
        p({"q": "x"})
    assert ei.value.code == "OUTPUT_INVALID" and ei.value.details["step"] == "parsed"
    assert len(ei.value.details["attempts"]) == 2 and upstream.replies == []


# ---------------------------------------------------------------- BM25 and tools


def test_bm25_ranks_the_matching_passage_first() -> None:
    bm = BM25(["the cat sat on the mat", "dogs chase cats", "a warranty for kettles"])
    assert bm.top("kettle warranty", 3)[0][0] == 2
    assert bm.top("zebra", 3) == []
    assert [i for i, _ in bm.top("cat", 3)] == [0]  # "cats" is another token


def test_local_corpus_search_over_a_folder(corpus: Path) -> None:
    s = LocalCorpusSearch(corpus)
    hits = s.search("is vinegar descaling damage covered by the warranty", k=2)
    assert hits[0]["title"] == "Warranty" and hits[0]["path"] == "warranty.md"
    assert hits[0]["url"] == (corpus / "warranty.md").resolve().as_uri()
    assert "vinegar" in hits[0]["snippet"]
    assert {h["path"] for h in hits} <= {"warranty.md", "notes.txt"}
    assert s.search("express shipping price", k=1)[0]["path"] == "shipping.md"
    assert s.search("xylophone", k=3) == []
    with pytest.raises(InvalidArgument):
        s.search("  ", k=1)
    # The web-search interface: title, url, snippet.
    assert set(WebSearchTool(s)(query="kettle")[0]) >= {"title", "url", "snippet"}


def test_local_corpus_search_over_a_document_collection(client: Any, corpus: Path) -> None:
    v = client.datasets.create(
        "kb", corpus, kind="documents", chunking={"size": 200, "overlap": 20}
    )
    s = LocalCorpusSearch(collection=f"kb@{v.version}", client=client)
    hits = s.search("express shipping", k=1)
    assert hits[0]["path"] == "shipping.md" and hits[0]["url"].startswith(
        f"collection://kb@{v.version}/"
    )


def test_tool_steps_and_spans(client: Any, corpus: Path) -> None:
    p = Pipeline(
        [
            ToolStep("search", "search", args={"query": "{{ question }}", "k": 2}),
            ToolStep("count", "word_count", args={"text": "{{ search.0.snippet }}"}),
        ],
        name="tools",
        inputs=["question"],
        outputs=["search", "count.words"],
        tools=[
            LocalCorpusSearch(corpus, name="search"),
            FunctionTool(
                word_count,
                parameters={
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
            ),
        ],
    )
    p.configure(client=client, tracer=client.tracing.tracer)
    res = p.run({"question": "shipping costs"})
    assert res.outputs["search"][0]["path"] == "shipping.md"
    assert res.outputs["words"] == len(res.outputs["search"][0]["snippet"].split())
    spans = _spans(client, res.trace_id or "")
    root = next(s for s in spans if s.parent_span_id is None)
    assert root.name == "tools" and root.kind == "chain"
    children = [s for s in spans if s.parent_span_id == root.span_id]
    assert [(s.name, s.kind) for s in children] == [("search", "tool"), ("count", "tool")]
    assert children[0].inputs == {"query": "shipping costs", "k": 2}
    # Bad tool arguments are refused against the tool's JSON schema.
    with pytest.raises(InvalidArgument, match="bad arguments"):
        p.context.tool("word_count").check_args({"text": 3})


def test_cite_parses_markers_and_falls_back() -> None:
    hits = [
        {"id": "c1", "text": "alpha", "score": 0.9, "source": "a.md", "title": "A"},
        {"id": "c2", "text": "beta", "score": 0.5, "source": "b.md", "title": "B"},
    ]
    got = cite("Beta it is [2], also [2, 7].", hits)
    assert got["citation_source"] == "model" and [c["chunk_id"] for c in got["citations"]] == ["c2"]
    none = cite("No idea.", hits)
    assert none["citation_source"] == "retrieved" and [
        c["chunk_id"] for c in none["citations"]
    ] == ["c1", "c2"]


# ---------------------------------------------------------------- registry, serving, CLI


def _corpus_pipeline(corpus: Path) -> Pipeline:
    return Pipeline(
        [
            ToolStep("hits", "search", args={"query": "{{ question }}", "k": 1}),
            PythonStep("loud", "tests.test_pipelines:shout", args={"text": "{{ hits.0.title }}"}),
        ],
        name="loud-search",
        inputs=["question"],
        outputs={"title": "loud", "url": "hits.0.path"},
        tools=[LocalCorpusSearch(corpus, name="search")],
    )


def test_register_load_and_serve_a_pipeline(client: Any, home: Path, corpus: Path) -> None:
    from opsloop.registry import Registry, load_model

    mv = _corpus_pipeline(corpus).register(client, "finder", alias="prod")
    assert mv.flavor == "pipeline" and "corpus/search/warranty.md" in mv.files
    assert Registry(client).get_model("finder").kind == "pipeline"
    m = load_model("models:/finder@prod", client=client, cache_dir=home / "cache")
    assert (
        m.flavor == "pipeline"
        and m.signature is not None
        and m.signature.input_names == ["question"]
    )
    assert m.predict([{"question": "express shipping"}, {"question": "warranty"}]) == [
        {"title": "SHIPPING", "url": "shipping.md"},
        {"title": "WARRANTY", "url": "warranty.md"},
    ]
    before = client.tracing.list_traces(limit=100).traces
    with ThreadServer("models:/finder@prod", Settings(home=home)) as srv:
        srv.wait_ready()
        meta = httpx.get(f"{srv.url}/v1/metadata").json()
        assert meta["flavor"] == "pipeline" and meta["kind"] == "tabular"
        r = httpx.post(f"{srv.url}/invocations", json={"inputs": [{"question": "kettle warranty"}]})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [{"title": "WARRANTY", "url": "warranty.md"}]}
        bad = httpx.post(f"{srv.url}/invocations", json={"records": [{"query": "x"}]})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"

    # The served request was traced into the server's home, one span per step.
    def served() -> Any:
        page = client.tracing.list_traces(limit=100).traces
        return [t for t in page if t.id not in {b.id for b in before}] or None

    new = wait_until(served, 20, "served trace")
    spans = client.tracing.get_trace(new[0].id, flat=True).spans
    assert sorted((s.name, s.kind) for s in spans) == [
        ("hits", "tool"),
        ("loud", "chain"),
        ("loud-search", "chain"),
    ]


def test_cli_validate_run_register(client: Any, home: Path, tmp_path: Path) -> None:
    from opsloop.cli._app import app

    f = tmp_path / "shout.yaml"
    f.write_text(GOOD)
    env = {"COLUMNS": "200", "OPSLOOP_HOME": str(home)}
    r = CliRunner().invoke(app, ["pipelines", "validate", str(f)], env=env)
    assert r.exit_code == 0 and "valid" in r.output and "loud" in r.output
    r = CliRunner().invoke(
        app, ["pipelines", "run", str(f), "--input", "text=hey you", "--json"], env=env
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["outputs"] == {"loud": "HEY YOU"} and len(data["trace_id"]) == 32
    assert client.tracing.get_trace(data["trace_id"]).spans
    r = CliRunner().invoke(
        app, ["pipelines", "register", "shouty", str(f), "--alias", "prod"], env=env
    )
    assert r.exit_code == 0 and "version 1" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [{name: a, type: nope}]\n")
    r = CliRunner().invoke(app, ["pipelines", "validate", str(bad)], env=env)
    assert r.exit_code == 1 and "error [PIPELINE_INVALID]" in r.output and "step 'a'" in r.output


def test_a_bare_yaml_file_registers_as_a_pipeline(client: Any, home: Path, tmp_path: Path) -> None:
    from opsloop.registry import Registry, load_model

    f = tmp_path / "shout.yaml"
    f.write_text(GOOD)
    mv = Registry(client).register("bare", f, flavor="pipeline")  # kind follows the flavor
    # Saved as `opsloop pipelines register` saves it: the checked spec as pipeline.yaml.
    assert mv.flavor == "pipeline" and mv.metadata.get("pipeline_file") == "pipeline.yaml"
    assert Registry(client).get_model("bare").kind == "pipeline"
    m = load_model("models:/bare/1", client=client, cache_dir=home / "cache")
    assert m.predict({"text": ["a b"]}) == [{"loud": "A B"}]


def test_prompt_step_renders_a_registry_prompt_by_label(client: Any) -> None:
    """A ``prompts:/NAME@label`` step renders the version the label points at, with state values."""
    client.prompts.create("greet", "Hello {{ name }}, about {{ topic }}!", labels=["production"])
    client.prompts.create("greet", "Hi {{ name }}. Topic: {{ topic }}.")

    def build(inputs: list[str]) -> Pipeline:
        p = Pipeline(
            [PromptStep("p", prompt="prompts:/greet@production", variables={"name": "{{ who }}"})],
            name="greeter",
            inputs=inputs,
        )
        return p.configure(client=client)

    out = build(["who", "topic"]).run({"who": "Ada", "topic": "engines"})
    assert out.outputs == {"p": "Hello Ada, about engines!"}
    client.prompts.set_label("greet", "production", 2)
    client.prompts.invalidate()
    out = build(["who", "topic"]).run({"who": "Ada", "topic": "engines"})
    assert out.outputs == {"p": "Hi Ada. Topic: engines."}
    # The state has no `topic`: the step fails naming it, nothing is rendered empty.
    with pytest.raises(InvalidArgument, match="topic"):
        build(["who"]).run({"who": "Ada"})
