"""Tuning a real RAG pipeline (MiniLM retrieval, registry prompts, SmolLM2) against an evaluation
metric: the fast tests cover loading, chunking and the space checks (no model); the slow one
runs a real three-trial study with three questions and at most 24 new tokens per answer."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop import Client
from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import VectorIndex
from opsloop.tuning import Categorical, Float, Int
from opsloop.tuning import examples as ex
from opsloop.tuning._rag_parts import chunk_corpus, load_corpus, load_questions

pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("quiet_optuna")

DOCS = [
    (
        "danube.md",
        "The Danube is the second longest river in Europe. It rises in the Black Forest "
        "of Germany, flows through ten countries and four capital cities, and empties "
        "into the Black Sea through a wide delta in Romania.",
    ),
    (
        "kilimanjaro.md",
        "Mount Kilimanjaro in Tanzania is the highest mountain in Africa. It is a dormant "
        "volcano with three cones, and its summit on the Kibo cone is called Uhuru Peak. "
        "Climbers usually need five to seven days to reach it.",
    ),
    (
        "baikal.md",
        "Lake Baikal in Siberia is the deepest lake in the world, more than 1600 metres "
        "deep. It is also the oldest lake on Earth and holds about a fifth of all the "
        "fresh surface water on the planet.",
    ),
]
QUESTIONS = [
    {"question": "Into which sea does the Danube empty?", "answer": ["Black Sea", "Black"]},
    {"question": "What is the summit of Kilimanjaro called?", "answer": ["Uhuru Peak", "Uhuru"]},
    {"question": "Which lake is the deepest in the world?", "answer": ["Lake Baikal", "Baikal"]},
]
EXPECTED_SOURCE = ["danube.md", "kilimanjaro.md", "baikal.md"]
PROMPT_V1 = "Context:\n{{ context }}\n\nQuestion: {{ question }}\nAnswer in a few words:"
PROMPT_V2 = [
    {"role": "system", "content": "Answer with a short phrase taken from the sources."},
    {"role": "user", "content": "Sources:\n{{ context }}\n\n{{ question }}"},
]


def _register_prompts(client: Client, name: str = "qa") -> None:
    client.prompts.create(name, PROMPT_V1, message="plain")
    client.prompts.create(name, PROMPT_V2, message="chat", labels=["production"])


# ---------------------------------------------------------------------- fast: no model


def test_corpus_and_questions_load_from_folders_files_and_rows(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# A\n\nalpha text\n")
    (docs / "sub" / "b.txt").write_text("beta text")
    (docs / "c.bin").write_bytes(b"\x00ignored")
    (docs / "empty.md").write_text("   \n")
    assert load_corpus(docs) == [("a.md", "# A\n\nalpha text\n"), ("sub/b.txt", "beta text")]
    assert load_corpus(["one", ("x.md", "two")]) == [("doc-0", "one"), ("x.md", "two")]

    qfile = tmp_path / "qa.jsonl"
    qfile.write_text(
        '{"question": "q1?", "answer": "a1"}\n\n{"question": "q2?", "answers": ["a", "b"]}\n'
    )
    assert load_questions(qfile) == [("q1?", ["a1"]), ("q2?", ["a", "b"])]
    assert load_questions([("q?", "a")]) == [("q?", ["a"])]

    for bad, words in [
        (tmp_path / "nowhere", "does not exist"),
        ([], "no text"),
        ([("a.md", "x"), ("a.md", "y")], "unique"),
        ([3], r"corpus\[0\]"),
    ]:
        with pytest.raises(InvalidArgument, match=words):
            load_corpus(bad)
    for badq, words in [
        ([], "non-empty list"),
        ([{"question": "q?"}], "needs an 'answer'"),
        ([{"question": " ", "answer": "a"}], "needs a non-empty 'question'"),
        ([{"question": "q?", "answer": ["a", ""]}], "needs an 'answer'"),
    ]:
        with pytest.raises(InvalidArgument, match=words):
            load_questions(badq)


def test_chunk_sizes_give_different_chunks_and_index_names(client: Client) -> None:
    small, large = chunk_corpus(DOCS, 12), chunk_corpus(DOCS, 48)
    assert len(small) > len(large) == 3  # every document fits in one 48-word chunk
    assert all(len(c["text"].split()) <= 12 for c in small)
    assert {c["metadata"]["source"] for c in small} == {p for p, _ in DOCS}
    assert [c["id"] for c in chunk_corpus(DOCS, 12)] == [c["id"] for c in small]  # stable ids

    _register_prompts(client)
    obj = ex.rag_objective(DOCS, QUESTIONS, prompt="prompts:/qa", client=client)
    assert obj.index_name(12) != obj.index_name(48)
    assert obj.index_name(12) == ex.rag_objective(DOCS, QUESTIONS, prompt="qa").index_name(12)
    changed = [(p, t + " More.") if p == "baikal.md" else (p, t) for p, t in DOCS]
    assert ex.rag_objective(changed, QUESTIONS).index_name(12) != obj.index_name(12)


def test_a_bad_space_fails_before_any_trial(client: Client, home: Path) -> None:
    _register_prompts(client)
    good = ex.rag_objective(
        DOCS, QUESTIONS, prompt="prompts:/qa", client=client, space=ex.RAG_PIPELINE_SPACE
    )
    assert good.space == ex.RAG_PIPELINE_SPACE
    base = dict(ex.RAG_PIPELINE_SPACE)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "prompt_version": Categorical([1, 7])}, "space.prompt_version", "no version 7"),
        ({**base, "prompt_version": Int(1, 2)}, "space.prompt_version", "categorical"),
        ({**base, "top_p": Float(0.1, 1.0)}, "space.top_p", "does not use it"),
        ({**base, "top_k": Int(0, 3)}, "space.top_k", "integers in 1..100"),
        ({**base, "temperature": Float(0.0, 3.0)}, "space.temperature", "0..2"),
        ({**base, "chunk_size": Float(8.0, 64.0)}, "space.chunk_size", "int range"),
    ]
    for space, path, words in cases:
        with pytest.raises(InvalidArgument, match=words) as ei:
            ex.rag_objective(DOCS, QUESTIONS, prompt="prompts:/qa", client=client, space=space)
        assert ei.value.details["path"] == path
    with pytest.raises(InvalidArgument) as ei:
        good.check_space({"prompt_version": Categorical([1, 7])})
    assert ei.value.details["versions"] == [1, 2]
    # Nothing ran: no index was built, no run was made.
    assert VectorIndex.list(home=home) == []
    assert client.search_runs(max_results=10).runs == []


def test_prompt_metric_and_settings_checks(client: Client) -> None:
    _register_prompts(client)
    client.prompts.create("loose", "Q: {{ query }}")
    client.prompts.create("loose", "Q: {{ question }}")
    loose = ex.rag_objective(DOCS, QUESTIONS, prompt="loose", client=client)
    assert loose.settings({}).prompt_version == 2  # only the versions used must fit
    with pytest.raises(InvalidArgument, match="'question' \\(required\\)") as ei:
        loose.check_space({"prompt_version": Categorical([1, 2])})
    assert ei.value.details["unknown"] == ["query"]
    with pytest.raises(NotFound):
        ex.rag_objective(DOCS, QUESTIONS, metric="no_such_metric")
    with pytest.raises(InvalidArgument, match="latency"):
        ex.rag_objective(DOCS, QUESTIONS, metric="latency_mean")
    with pytest.raises(InvalidArgument, match="max_tokens"):
        ex.rag_objective(DOCS, QUESTIONS, max_tokens=0)

    # Settings the space leaves out take defaults; the prompt's label or version picks one.
    latest = ex.rag_objective(DOCS, QUESTIONS, prompt="qa", client=client).settings({})
    assert (latest.chunk_size, latest.top_k, latest.temperature, latest.prompt_version) == (
        64,
        3,
        0.0,
        2,
    )
    client.prompts.set_label("qa", "production", 1)
    labelled = ex.rag_objective(DOCS, QUESTIONS, prompt="prompts:/qa@production", client=client)
    assert labelled.settings({"top_k": 2}).prompt_version == 1
    with pytest.raises(InvalidArgument, match="no version 5"):
        labelled.settings({"prompt_version": 5})
    with pytest.raises(InvalidArgument, match="unknown RAG settings"):
        labelled.settings({"top_p": 0.5})


def test_the_objective_travels_to_worker_processes(client: Client) -> None:
    _register_prompts(client)
    obj = ex.rag_objective(
        DOCS, QUESTIONS, prompt="qa", metric="token_f1", client=client, max_tokens=8, seed=3
    )
    copy = pickle.loads(pickle.dumps(obj))
    assert copy.metric.name == "token_f1" and copy.metric_key == "token_f1"
    assert (copy.max_tokens, copy.seed, copy.questions) == (8, 3, obj.questions)
    assert copy.index_name(12) == obj.index_name(12)
    assert copy._client is None  # a worker uses its own client (the trial's)

    class Echo:
        def chat(self, messages: Any, **kw: Any) -> str:
            return "x"

    with pytest.raises(InvalidArgument, match="as a spec"):
        pickle.dumps(ex.rag_objective(DOCS, QUESTIONS, provider=Echo()))


def test_cli_study_with_a_missing_prompt_version_fails_before_any_model(
    client: Client, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsloop.cli import app

    _register_prompts(client)
    (tmp_path / "rag_tune.py").write_text(
        textwrap.dedent(
            f"""
            from opsloop.tuning.examples import rag_objective
            objective = rag_objective({DOCS!r}, {QUESTIONS!r}, prompt="prompts:/qa")
            """
        )
    )
    spec = tmp_path / "space.yaml"
    spec.write_text(
        "name: rag-cli\ndirections: [maximize]\nobjectives: [contains]\n"
        "objective: rag_tune.py:objective\nn_trials: 2\n"
        "space:\n  top_k: {type: int, low: 1, high: 2}\n  prompt_version: [1, 9]\n"
    )
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["tune", "run", str(spec), "--home", str(home)])
    assert res.exit_code != 0
    assert "INVALID_ARGUMENT" in res.output and "no version 9" in res.output, res.output
    # The first trial failed on the check, before an index was built or a model loaded.
    assert VectorIndex.list(home=home) == []
    trials = client.tuning.summary("rag-cli").trials
    assert [t.state for t in trials] == ["FAIL"]


# ---------------------------------------------------------------------- slow: real models


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rag_study_on_real_models(client: Client, home: Path, model_cache: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    _register_prompts(client)
    space = {
        "chunk_size": Categorical([12, 48]),
        "top_k": Int(1, 2),
        "temperature": Categorical([0.0, 0.7]),
        "prompt_version": Categorical([1, 2]),
    }
    objective = ex.rag_objective(
        DOCS,
        QUESTIONS,
        provider="local:smollm2",
        prompt="prompts:/qa",
        metric="contains",
        client=client,
        cache_dir=model_cache,
        max_tokens=16,
        space=space,
    )
    study = client.tuning.create_study(
        "rag-real",
        directions=["maximize"],
        objectives=["contains"],
        search_space=objective.space,
        sampler={"type": "random", "seed": 0},
        storage="memory",
    )
    # Two trials are fixed so two chunk sizes (two indexes) are sure to be tried.
    for fixed in (
        {"chunk_size": 12, "top_k": 1, "temperature": 0.0, "prompt_version": 1},
        {"chunk_size": 48, "top_k": 2, "temperature": 0.0, "prompt_version": 2},
    ):
        study.optuna_study.enqueue_trial(fixed)
    summary = study.optimize(objective, n_trials=3)
    assert summary.counts == {"COMPLETE": 3}

    runs = sorted(
        client.search_runs(parent_run_id=study.run_id, max_results=10).runs,
        key=lambda r: int(r.tags["opsloop.tuning.trial"]),
    )
    assert len(runs) == 3
    per_trial: dict[int, list[dict[str, Any]]] = {}
    for r, t in zip(runs, summary.trials, strict=True):
        assert set(r.params) == set(space)
        assert r.params == {k: str(v) for k, v in t.params.items()}
        keys = client.list_metric_keys(r.id)
        for k in ("contains", "context_tokens", "input_tokens", "output_tokens", "latency_ms"):
            assert k in keys, (k, keys)
        assert keys["contains"].value == t.values[0]
        assert r.tags["opsloop.tuning.rag.prompt"] == f"prompts:/qa/{t.params['prompt_version']}"
        assert r.tags["opsloop.tuning.rag.index"].endswith(f"-c{t.params['chunk_size']}")
        rows = [
            json.loads(line)
            for line in client.read_artifact(r.id, "tuning/answers.jsonl").decode().splitlines()
        ]
        assert [row["question"] for row in rows] == [q["question"] for q in QUESTIONS]
        assert all(len(row["contexts"]) == t.params["top_k"] for row in rows)
        assert sum(row["score"] for row in rows) / 3 == pytest.approx(t.values[0])
        assert keys["context_tokens"].value == pytest.approx(
            sum(row["context_tokens"] for row in rows) / 3
        )
        per_trial[t.number] = rows

    # Each chunk size has its own index, built once, with the chunks of that size.
    names = {r.tags["opsloop.tuning.rag.index"] for r in runs}
    assert len(names) == 2 and names <= set(VectorIndex.list(home=home))
    sizes = {}
    for name in names:
        with VectorIndex.open(name, home=home, create=False) as idx:
            sizes[name] = len(idx)
    assert sorted(sizes.values()) == [3, len(chunk_corpus(DOCS, 12))]
    # MiniLM retrieval finds the right document for every question.
    small = VectorIndex.open(objective.index_name(12), home=home, create=False)
    try:
        for row, source in zip(per_trial[0], EXPECTED_SOURCE, strict=True):
            hit = small.search(
                objective.context(client).embedder(None).embed([row["question"]])[0], k=1
            )[0]
            assert hit.id == row["contexts"][0] and hit.metadata["source"] == source
    finally:
        small.close()
    # Longer chunks, two of them: more context tokens than one short chunk.
    assert per_trial[1][0]["context_tokens"] > per_trial[0][0]["context_tokens"]

    # Each answer is a trace tagged with its trial.
    client.tracing.flush()
    assert len(client.tracing.list_traces(tag="tuning:rag-real-0").traces) == 3

    # The best trial's settings give the same answers and score when run again.
    best = study.best_trial
    again = objective.evaluate(best.params)
    assert again.score == study.best_value
    assert [a.answer for a in again.answers] == [row["answer"] for row in per_trial[best.number]]
