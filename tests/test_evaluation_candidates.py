"""Evaluating every kind of candidate with the real rooms: pipelines, providers, registry prompts.

The fast tests need no model weights: pipelines of BM25 search and Python
steps, and an OpenAI-compatible endpoint played by the scripted upstream of
``test_llm_http`` (a hosted API cannot be reached offline; it answers with a
fixed usage, so token and cost figures are exact). The slow test evaluates two
registry prompt versions on the real SmolLM2-135M-Instruct and compares them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.errors import InvalidArgument, PromotionRefused
from opsloop.evaluation import compare, evaluate
from opsloop.pipelines import LLMStep, LocalCorpusSearch, Pipeline, PromptStep, PythonStep, ToolStep
from opsloop.settings import Settings
from tests.conftest import live_server
from tests.test_llm_http import OK_BODY, Reply, Upstream


def shout(text: str) -> str:
    """Upper-case a text (a python step of the pipelines below)."""
    return text.upper()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "warranty.md").write_text(
        "# Warranty\n\nThe kettle warranty covers heating element failures for two years.\n"
    )
    (d / "shipping.md").write_text(
        "# Shipping\n\nOrders ship within three days. Express shipping costs twelve euros.\n"
    )
    (d / "descaling.md").write_text("# Descaling\n\nDescale the kettle with citric acid.\n")
    return d


# The search is right on q0, q1, q3 and wrong on q2 ("heating" is in warranty.md).
ROWS = [
    {"id": "q0", "question": "express shipping price", "topic": "orders", "answer": "shipping.md"},
    {"id": "q1", "question": "kettle warranty years", "topic": "support", "answer": "warranty.md"},
    {"id": "q2", "question": "heating element", "topic": "support", "answer": "descaling.md"},
    {"id": "q3", "question": "citric acid", "topic": "care", "answer": "descaling.md"},
]


def _finder(corpus: Path, **kw: Any) -> Pipeline:
    return Pipeline(
        [
            ToolStep("hits", "search", args={"query": "{{ question }}", "k": 1}),
            PythonStep(
                "loud",
                "tests.test_evaluation_candidates:shout",
                args={"text": "{{ hits.0.title }}"},
            ),
        ],
        name="finder",
        inputs=["question"],
        tools=[LocalCorpusSearch(corpus, name="search")],
        **kw,
    )


def _eval_traces(client: opsloop.Client) -> list[Any]:
    client.tracing.flush()
    return client.tracing.list_traces(limit=100).traces


# ---------------------------------------------------------------------------- pipelines


def test_pipeline_object_gets_its_inputs_and_gives_per_example_outputs(
    client: opsloop.Client, corpus: Path
) -> None:
    ds = client.datasets.create("kb-qa", ROWS)
    pipe = _finder(corpus, outputs={"answer": "hits.0.path", "title": "loud"})
    res = evaluate(pipe, f"kb-qa@{ds.version}", metrics=["exact_match"], client=client,
                   n_bootstrap=200)  # fmt: skip
    # "topic" is a dataset column the pipeline does not declare: it was not sent.
    assert [e.inputs for e in res.examples] == [{"question": r["question"]} for r in ROWS]
    assert [e.output for e in res.examples] == [
        "shipping.md", "warranty.md", "warranty.md", "descaling.md",
    ]  # fmt: skip
    assert [e.scores["exact_match"] for e in res.examples] == [1.0, 1.0, 0.0, 1.0]
    v, lo, hi = res.ci("exact_match")
    assert v == pytest.approx(0.75) and lo <= v <= hi and lo < hi
    assert res.candidate == "pipeline:finder" and res.candidate_kind == "pipeline"
    assert all(e.latency_ms is not None and e.latency_ms > 0 for e in res.examples)
    assert all(e.input_tokens is None for e in res.examples)  # no model inside

    run = client.get_run(res.run_id)
    assert run.params["pipeline"] == "finder" and run.params["pipeline_output"] == "answer"
    assert run.params["pipeline_digest"].startswith("sha256:")
    assert run.tags["opsloop.eval.pipeline"] == "finder" and "opsloop.eval.model" not in run.tags
    assert run.metrics["exact_match_ci_high"].value == pytest.approx(hi)
    assert [i.context for i in client.datasets.run_inputs(res.run_id)] == ["evaluation"]
    stored = client.evaluation.get(res.run_id)
    assert [e.output for e in stored.examples] == [e.output for e in res.examples]
    # Each example is one trace in the evaluation's own store, tagged as evaluation traffic.
    traces = _eval_traces(client)
    assert len(traces) == 4 and all("evaluation" in t.tags for t in traces)

    # Another output as the prediction; the same pipeline object is reusable.
    loud = evaluate(pipe, ROWS, metrics=["exact_match"], output_key="title", client=client,
                    n_bootstrap=50)  # fmt: skip
    assert [e.output for e in loud.examples][:2] == ["SHIPPING", "WARRANTY"]
    assert client.get_run(loud.run_id).params["pipeline_output"] == "title"


def test_pipeline_refusals_store_nothing(client: opsloop.Client, corpus: Path) -> None:
    two = _finder(corpus, outputs={"path": "hits.0.path", "title": "loud"})
    with pytest.raises(InvalidArgument, match="name the prediction with output_key="):
        evaluate(two, ROWS, metrics=["exact_match"], client=client)
    with pytest.raises(InvalidArgument, match="'nope' is not an output"):
        evaluate(two, ROWS, metrics=["exact_match"], output_key="nope", client=client)
    with pytest.raises(InvalidArgument, match=r"no input columns \['question'\]"):
        evaluate(_finder(corpus), [{"q": "x", "answer": "y"}], metrics="exact_match",
                 client=client)  # fmt: skip
    with pytest.raises(InvalidArgument, match="prompt= applies to LLM candidates"):
        evaluate(_finder(corpus), ROWS, metrics="exact_match", prompt="{{question}}",
                 client=client)  # fmt: skip
    with pytest.raises(InvalidArgument, match="unknown options"):
        evaluate("local:smollm2", ROWS, metrics="exact_match", options={"max_token": 8},
                 client=client)  # fmt: skip
    assert client.evaluation.list() == []


def test_registered_pipeline_by_alias_is_linked_to_its_version(
    client: opsloop.Client, corpus: Path, home: Path
) -> None:
    mv = _finder(corpus, outputs={"answer": "hits.0.path"}).register(client, "finder", alias="prod")
    client.datasets.create("kb-qa", ROWS)
    res = evaluate("models:/finder@prod", "kb-qa@1", metrics=["exact_match"], client=client,
                   cache_dir=home / "cache", n_bootstrap=200)  # fmt: skip
    assert res.candidate == f"models:/finder/{mv.version}" and res.candidate_kind == "pipeline"
    assert [e.output for e in res.examples][2] == "warranty.md"
    assert res.metrics["exact_match"] == pytest.approx(0.75)
    run = client.get_run(res.run_id)
    assert run.tags["opsloop.eval.model"] == "finder"
    assert run.tags["opsloop.eval.model_version"] == str(mv.version)
    traces = _eval_traces(client)
    assert len(traces) == 4
    assert all({"pipeline", f"finder/{mv.version}", "evaluation"} <= set(t.tags) for t in traces)
    # The promotion gate reads this evaluation as the version's metrics.
    client.evaluation.set_gate("finder", [{"metric": "exact_match", "min": 0.9}],
                               aliases=["champion"])  # fmt: skip
    with pytest.raises(PromotionRefused, match=r"exact_match 0\.75 is below the min"):
        client.registry.set_alias("finder", "champion", mv.version)


# ---------------------------------------------------------------------------- providers, usage, cost


GPT_MINI_COST = (7 * 0.15 + 2 * 0.60) / 1e6  # OK_BODY's usage at gpt-4o-mini's default price


def test_prompt_version_with_a_provider_records_usage_cost_and_lineage(home: Path) -> None:
    with Upstream(Reply()) as up:
        settings = Settings(home=home, llm_base_url=up.url, llm_api_key="sk-test")
        client = opsloop.Client(settings=settings)
        try:
            client.prompts.create("ask", "Q: {{ question }}", message="v1", labels=["prod"])
            rows = [{"id": "a", "question": "one", "answer": "hi"},
                    {"id": "b", "question": "two", "answer": "bye"}]  # fmt: skip
            res = evaluate("openai:gpt-4o-mini", rows, metrics=["exact_match"],
                           prompt="prompts:/ask@prod", options={"max_tokens": 5},
                           client=client, n_bootstrap=50)  # fmt: skip
        finally:
            client.close()
    sent = [r["body"]["messages"] for r in up.requests]
    assert sent == [
        [{"role": "user", "content": "Q: one"}],
        [{"role": "user", "content": "Q: two"}],
    ]
    assert all(r["body"]["max_tokens"] == 5 for r in up.requests)
    assert [e.output for e in res.examples] == ["hi", "hi"]
    assert [(e.input_tokens, e.output_tokens) for e in res.examples] == [(7, 2), (7, 2)]
    assert all(e.cost_usd == pytest.approx(GPT_MINI_COST) for e in res.examples)
    m = res.metrics
    assert m["exact_match"] == 0.5
    assert (m["input_tokens_total"], m["output_tokens_total"], m["tokens_per_example"]) == (
        14.0, 4.0, 9.0,
    )  # fmt: skip
    assert m["cost_usd_total"] == pytest.approx(2 * GPT_MINI_COST)
    assert res.candidate == "openai:gpt-4o-mini" and res.candidate_kind == "provider"
    with opsloop.Client(settings=Settings(home=home)) as c:
        run = c.get_run(res.run_id)
    assert (
        run.params["prompt"] == "prompts:/ask/1" and run.params["prompt_ref"] == "prompts:/ask@prod"
    )
    assert run.params["llm_model"] == "gpt-4o-mini" and run.params["llm_provider"] == "openai"
    assert (
        run.tags["opsloop.eval.prompt"] == "ask" and run.tags["opsloop.eval.prompt_version"] == "1"
    )
    assert run.name == "eval ask/1 on openai:gpt-4o-mini"
    assert run.metrics["cost_usd_total"].value == pytest.approx(2 * GPT_MINI_COST)


def test_pipeline_usage_comes_from_its_llm_spans(home: Path) -> None:
    from opsloop.llm import get_provider

    body = {**OK_BODY, "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}
    with Upstream(Reply(body=body)) as up, opsloop.Client(settings=Settings(home=home)) as client:
        provider = get_provider("openai:gpt-4o-mini", base_url=up.url, api_key="sk-test",
                                settings=client.settings)  # fmt: skip
        pipe = Pipeline(
            [
                PromptStep("prompt", "Say hi to {{ name }}"),
                LLMStep("answer", provider, max_tokens=4),
                LLMStep("again", provider, max_tokens=4, input="answer"),
            ],
            name="two-calls",
            outputs=["answer"],
        )
        res = evaluate(pipe, [{"name": "Ann", "answer": "hi"}, {"name": "Bo", "answer": "yo"}],
                       metrics=["exact_match"], client=client, n_bootstrap=20)  # fmt: skip
        traces = _eval_traces(client)
        # A step holding a provider object cannot be saved, so there is no spec digest.
        params = client.get_run(res.run_id).params
    assert len(up.requests) == 4  # two model calls per example
    assert [(e.input_tokens, e.output_tokens) for e in res.examples] == [(22, 6), (22, 6)]
    cost = (22 * 0.15 + 6 * 0.60) / 1e6
    assert all(e.cost_usd == pytest.approx(cost) for e in res.examples)
    assert res.metrics["cost_usd_total"] == pytest.approx(2 * cost)
    assert res.metrics["exact_match"] == 0.5
    assert "pipeline_digest" not in params and params["pipeline"] == "two-calls"
    # The spans still reached the store: one trace per example with both llm calls.
    assert len(traces) == 2


# ---------------------------------------------------------------------------- a real LLM


CAPITALS = [
    {"id": "fr", "question": "What is the capital of France?", "answer": "Paris"},
    {"id": "de", "question": "What is the capital of Germany?", "answer": "Berlin"},
    {"id": "it", "question": "What is the capital of Italy?", "answer": "Rome"},
    {"id": "jp", "question": "What is the capital of Japan?", "answer": "Tokyo"},
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_prompt_versions_on_smollm2_compared_in_sdk_and_rest(
    home: Path, model_cache: Path
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    # A price for the local model, so cost is a real figure to check.
    (home / "prices.yaml").write_text("SmolLM2-135M-Instruct: {input: 1000, output: 2000}\n")
    client = opsloop.Client(settings=Settings(home=home))
    try:
        client.prompts.create("capital", "Answer with one word. {{ question }}",
                              message="terse", labels=["a"])  # fmt: skip
        # SmolLM2 starts a story here and runs out of its 10 tokens before naming the city.
        client.prompts.create("capital", "Tell a long story about travelling. {{ question }}",
                              message="derailed", labels=["b"])  # fmt: skip
        ds = client.datasets.create("capitals", CAPITALS)
        runs = [
            evaluate(
                "local:smollm2",
                f"capitals@{ds.version}",
                metrics=["contains"],
                prompt=f"prompts:/capital@{label}",
                options={"max_tokens": 10},
                client=client,
                cache_dir=model_cache,
                n_bootstrap=200,
            )
            for label in ("a", "b")
        ]
        for res, version in zip(runs, (1, 2), strict=True):
            assert res.n_errors == 0 and res.candidate_kind == "provider"
            assert all(isinstance(e.output, str) and e.output for e in res.examples)
            assert all(e.input_tokens and 0 < (e.output_tokens or 0) <= 10 for e in res.examples)
            for e in res.examples:
                want = (e.input_tokens or 0) * 1000e-6 + (e.output_tokens or 0) * 2000e-6
                assert e.cost_usd == pytest.approx(want)
            assert res.metrics["cost_usd_total"] == pytest.approx(
                sum(e.cost_usd or 0 for e in res.examples)
            )
            v, lo, hi = res.ci("contains")
            assert lo <= v <= hi
            run = client.get_run(res.run_id)
            assert run.params["prompt"] == f"prompts:/capital/{version}"
            assert run.tags["opsloop.eval.prompt_version"] == str(version)
        outputs = [[e.output for e in r.examples] for r in runs]
        # Version 1 asks for the city: SmolLM2 names at least two of the four; version 2 derails.
        assert runs[0].metrics["contains"] >= 0.5, outputs
        assert runs[1].metrics["contains"] < runs[0].metrics["contains"], outputs

        cmp = compare([r.run_id for r in runs], metric="contains", client=client)
        c = cmp.candidates[1]
        diffs = [e.diffs[1] for e in cmp.examples]
        vals = [(e.values[0], e.values[1]) for e in cmp.examples]
        assert [e.id for e in cmp.examples] == ["fr", "de", "it", "jp"]
        assert diffs == [b - a for a, b in vals]  # type: ignore[operator]
        assert c.wins == sum(d > 0 for d in diffs) and c.losses == sum(d < 0 for d in diffs)  # type: ignore[operator]
        assert c.wins + c.losses + c.ties == 4
        assert c.losses > c.wins, outputs
        # Exact sign-flip test: the share of the 2^k sign patterns at least as extreme.
        d = [x for x in diffs if x]  # type: ignore[misc]
        extreme = sum(
            abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= abs(sum(d)) - 1e-12
            for signs in itertools.product((1, -1), repeat=len(d))
        )
        assert c.p_value_permutation == pytest.approx(extreme / 2 ** len(d))
        assert c.delta == pytest.approx(runs[1].metrics["contains"] - runs[0].metrics["contains"])
    finally:
        client.close()

    with live_server(Settings(home=home)) as srv:
        r = httpx.get(f"{srv.url}/api/v1/evaluations/compare",
                      params={"runs": ",".join(x.run_id for x in runs), "metric": "contains"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    got = body["candidates"][1]
    assert (got["wins"], got["losses"], got["ties"]) == (c.wins, c.losses, c.ties)
    assert got["p_value_permutation"] == pytest.approx(c.p_value_permutation)
    assert [e["diffs"][1] for e in body["examples"]] == diffs
    assert [e["outputs"] for e in body["examples"]] == [e.outputs for e in cmp.examples]
