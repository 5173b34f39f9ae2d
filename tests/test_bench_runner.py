"""Standard benchmark runner: task YAML, data loading, EM normalisation, log-likelihood scoring, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument, NotFound
from opsloop.evaluation.benchmarks import (
    LoglikelihoodRequest,
    Normalization,
    encode_pair,
    extract_number,
    list_tasks,
    load_task,
    loglikelihoods,
    normalize_answer,
    parse_task,
    read_records,
    run_benchmark,
)
from opsloop.evaluation.benchmarks._data import default_data_dir, resolve_source
from opsloop.evaluation.benchmarks._scoring import _batches, _windows

MINIMAL: dict[str, Any] = {
    "name": "tiny",
    "source": "tiny.jsonl",
    "output_type": "multiple_choice",
    "doc_to_text": "Q: {{ q }}\nA:",
    "doc_to_choice": "options",
    "doc_to_target": "gold",
}

# The first rows of every shipped task's data (tests/data/benchdata): the runner's tests
# never depend on the full sets being beside the checkout.
EXCERPT = Path(__file__).parent / "data" / "benchdata"


# ---------------------------------------------------------------------- task definitions


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"name": "Bad Name"}, "'name'"),
        ({"output_type": "ranking"}, "output_type must be one of"),
        ({"doc_to_target": None}, "doc_to_target"),
        ({"doc_to_choice": None}, "needs doc_to_text and doc_to_choice"),
        ({"doc_to_text": "{{ q "}, "not a valid Jinja template"),
        ({"doc_to_choice": "options |"}, "not a valid Jinja expression"),
        ({"num_fewshot": -1}, "num_fewshot"),
        ({"metrics": ["bleu"]}, "metrics must be a list"),
        ({"normalization": {"lowercase": "yes"}}, "normalization.lowercase"),
        ({"doc_to_contexts": "[a, b]"}, "partial scoring"),
    ],
)
def test_a_malformed_task_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    data = {**MINIMAL, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(InvalidArgument, match=message):
        parse_task(data)


def test_task_files_invalid_yaml_unknown_name_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InvalidArgument, match="not valid YAML"):
        load_task(bad)
    with pytest.raises(NotFound, match=r"shipped tasks: .*hellaswag"):
        load_task("hellaswagg")
    with pytest.raises(NotFound, match="does not exist"):
        load_task(tmp_path / "missing.yaml")


def test_templates_render_in_a_sandbox_and_errors_name_the_task() -> None:
    spec = parse_task({**MINIMAL, "doc_to_text": "{{ q.__class__.__mro__ }}"})
    with pytest.raises(InvalidArgument, match="'tiny': doc_to_text failed"):
        spec.text({"q": "x", "options": ["a"], "gold": 0})
    spec = parse_task(MINIMAL)
    with pytest.raises(InvalidArgument, match="target index 3 is outside the 2 choices"):
        spec.gold_index({"gold": 3}, ["a", "b"])
    doc = {"q": "2+2?", "options": ["3", "4"], "gold": "4"}
    assert spec.text(doc) == "Q: 2+2?\nA:"
    assert spec.gold_index(doc, spec.choices(doc)) == 1  # a target may be the choice's text


def test_every_shipped_task_renders_its_first_records() -> None:
    data_dir = default_data_dir() or EXCERPT
    specs = {s.name: s for s in list_tasks()}
    assert set(specs) == {
        "arc_challenge", "arc_easy", "boolq", "commonsense_qa", "gsm8k", "hellaswag",
        "mmlu", "openbookqa", "piqa", "winogrande",
    }  # fmt: skip
    for spec in specs.values():
        for doc in read_records(resolve_source(spec.source, data_dir, task=spec.name))[:3]:
            if spec.output_type == "generate_until":
                assert extract_number(str(spec.target(doc))) is not None
            elif spec.partial:
                contexts = spec.contexts(doc)
                assert len(contexts) == 2 and spec.continuation(doc)
                assert 0 <= spec.gold_index(doc, contexts) < 2
            else:
                choices = spec.choices(doc)
                assert spec.text(doc) and len(choices) >= 2
                assert 0 <= spec.gold_index(doc, choices) < len(choices)
    hs = specs["hellaswag"]
    doc = {"activity_label": "Cooking", "ctx_a": "A cook [title] stirs.", "ctx_b": "she",
           "endings": [" adds salt [step]. ", "x"], "label": "0"}  # fmt: skip
    assert hs.text(doc) == "Cooking: A cook. stirs. She"
    assert hs.choices(doc) == ["adds salt .", "x"]  # as lm-eval cleans it


# ---------------------------------------------------------------------- data


def test_jsonl_records_and_a_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"q": "a"}\n\n{"q": "b"}\n')
    assert read_records(f) == [{"q": "a"}, {"q": "b"}]
    f.write_text('{"q": "a"}\n{"q": \n')
    with pytest.raises(InvalidArgument, match="line 2 is not JSON"):
        read_records(f, task="t")
    with pytest.raises(NotFound, match="does not exist"):
        resolve_source("nope.jsonl", tmp_path, task="t")


def _save_hf_dataset(folder: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    """A DatasetDict on disk: with `datasets` when installed, else the same layout with pyarrow."""
    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is not None:
        datasets.DatasetDict(
            {k: datasets.Dataset.from_list(v) for k, v in splits.items()}
        ).save_to_disk(str(folder))
        return
    import pyarrow as pa

    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    for split, rows in splits.items():
        d = folder / split
        d.mkdir()
        table = pa.Table.from_pylist(rows)
        with (
            pa.OSFile(str(d / "data-00000-of-00001.arrow"), "wb") as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table)
        (d / "state.json").write_text(
            json.dumps(
                {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": split}
            )
        )


def test_hf_on_disk_dataset_by_split(tmp_path: Path) -> None:
    rows = [
        {"q": "2+2?", "options": ["3", "4"], "gold": 1},
        {"q": "1+1?", "options": ["2", "5"], "gold": 0},
    ]
    _save_hf_dataset(tmp_path / "ds", {"train": rows[:1], "validation": rows})
    assert read_records(tmp_path / "ds", split="validation") == rows
    assert read_records(tmp_path / "ds", split="train") == rows[:1]
    with pytest.raises(NotFound, match="no split 'test'"):
        read_records(tmp_path / "ds", split="test")
    with pytest.raises(InvalidArgument, match="name one with 'split'"):
        read_records(tmp_path / "ds")
    spec = parse_task({**MINIMAL, "source": "ds", "split": "validation"})
    docs = read_records(resolve_source(spec.source, tmp_path, task="tiny"), split=spec.split)
    assert [spec.gold_index(d, spec.choices(d)) for d in docs] == [1, 0]


# ---------------------------------------------------------------------- exact match


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("so the answer is $18.00.", "18"),
        ("first 3 then 4, finally -7.50 apples", "-7.5"),
        ("no digits here", None),
        ("#### 5\nQuestion: 2 more", "5"),
    ],
)
def test_gsm8k_number_extraction(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


def test_exact_match_normalisation() -> None:
    gsm = load_task("gsm8k").normalization
    assert normalize_answer("We get 3+15 = 18 eggs.", gsm) == normalize_answer("... #### 18", gsm)
    assert normalize_answer("#### 17", gsm) != normalize_answer("#### 18", gsm)
    squad = Normalization()
    assert normalize_answer("  The Eiffel-Tower! ", squad) == "eiffeltower"
    assert normalize_answer("an apple", squad) == normalize_answer("Apple.", squad)
    assert normalize_answer("Apple", Normalization(lowercase=False)) != "apple"


def test_bad_arguments_are_refused_before_loading_a_model(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        run_benchmark("local:smollm2", "piqa", limit=0, log=False)
    with pytest.raises(InvalidArgument, match="batch_size"):
        run_benchmark("local:smollm2", "piqa", batch_size=0, log=False)
    with pytest.raises(NotFound, match="no benchmark task named"):
        run_benchmark("local:smollm2", "piqa,nope", log=False)
    with pytest.raises(NotFound, match="does not exist"):
        run_benchmark("local:smollm2", "piqa", data_dir=tmp_path, log=False)


# ---------------------------------------------------------------------- with a real model


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> Iterator[Any]:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from opsloop.evaluation.benchmarks._model import load_benchmark_model

    lm, _ = load_benchmark_model("local:smollm2", cache_dir=model_cache)
    yield lm


def _direct_logprob(lm: Any, context: str, continuation: str) -> float:
    """The same quantity computed the plain way: one unpadded sequence, full logits."""
    import torch

    ctx, cont = encode_pair(lm.tokenizer, context, continuation)
    with torch.inference_mode():
        logits = lm.model(torch.tensor([ctx + cont])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return float(sum(lp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_loglikelihood_equals_a_direct_torch_computation(smol: Any) -> None:
    reqs = [
        LoglikelihoodRequest("Question: What colour is a clear daytime sky?\nAnswer:", " blue"),
        LoglikelihoodRequest("Question: What colour is a clear daytime sky?\nAnswer:", " green"),
        LoglikelihoodRequest("The capital of France is ", "Paris"),  # trailing space moves over
    ]
    got = loglikelihoods(smol, reqs, batch_size=3)
    for r, g in zip(reqs, got, strict=True):
        assert g.logprob == pytest.approx(
            _direct_logprob(smol, r.context, r.continuation), abs=1e-3
        )
        assert g.logprob < 0
    assert got[0].logprob > got[1].logprob  # the model knows the sky is blue
    _, cont = encode_pair(smol.tokenizer, "The capital of France is ", "Paris")
    assert smol.tokenizer.decode(cont) == " Paris"


SKY = "Question: What colour is a clear daytime sky?\nAnswer:"
# A context far longer than the others packed with it.
FARM = (
    "Question: A farmer grows tomatoes, carrots, beans and potatoes on a small plot beside "
    "the river, and every Saturday morning he loads his cart and drives into town. Where "
    "does he sell what he grows?\nAnswer:"
)


def _shared_cases() -> list[LoglikelihoodRequest]:
    return [
        LoglikelihoodRequest(SKY, " blue"),  # one token
        LoglikelihoodRequest(SKY, " green"),
        LoglikelihoodRequest(SKY, " it is blue during the day, turning orange and red at dusk"),
        LoglikelihoodRequest(FARM, " at the market"),
        LoglikelihoodRequest(FARM, " on the moon, in a very large crater that nobody has seen"),
        LoglikelihoodRequest(FARM, "!"),
        LoglikelihoodRequest("The capital of France is ", "Paris"),  # trailing space moves over
        LoglikelihoodRequest("The capital of France is ", "a city"),
        # WinoGrande's partial scoring: different contexts, one continuation, no sharing.
        LoglikelihoodRequest(
            "The trophy did not fit in the suitcase because the trophy", " was big."
        ),
        LoglikelihoodRequest(
            "The trophy did not fit in the suitcase because the suitcase", " was big."
        ),
    ]


def _fed_tokens(lm: Any, reqs: list[LoglikelihoodRequest], **kw: Any) -> tuple[list[Any], int]:
    """The scores, and how many real (unpadded) tokens went through the model for them."""
    fed = [0]

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        n = kwargs["input_ids"].shape[1]
        fed[0] += int(kwargs["attention_mask"][:, -n:].sum())

    handle = lm.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        return loglikelihoods(lm, reqs, **kw), fed[0]
    finally:
        handle.remove()


def test_shared_context_batches_and_windows() -> None:
    assert _batches([], 4) == []
    # At most batch_size rows, and a batch ends before a row much shorter than its first.
    got = [list(r) for r in _batches([40, 39, 38, 37, 36, 20, 19, 3, 3], 4)]
    assert got == [[0, 1, 2, 3], [4], [5, 6], [7, 8]]
    enc = [([1] * n, [9]) for n in (3, 8, 8, 8, 5, 5)]
    # Groups longest context first; a group larger than the window is split.
    assert _windows(enc, [[0], [1, 2, 3], [4, 5]], 2) == [[[1, 2]], [[3]], [[4, 5]], [[0]]]
    assert _windows(enc, [[0], [1, 2, 3], [4, 5]], 8) == [[[1, 2, 3], [4, 5], [0]]]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("batch_size", [2, 4, 16])
def test_shared_context_scores_equal_a_direct_torch_computation(smol: Any, batch_size: int) -> None:
    reqs = _shared_cases()
    shared, fed_shared = _fed_tokens(smol, reqs, batch_size=batch_size)
    pairs, fed_pairs = _fed_tokens(smol, reqs, batch_size=batch_size, share_context=False)
    # Sharing really happens: each context runs once, not once per choice.
    ctx_tokens = {len(encode_pair(smol.tokenizer, r.context, r.continuation)[0]) for r in reqs[:6]}
    assert fed_pairs - fed_shared >= 2 * min(ctx_tokens)
    # WinoGrande's pairs share no context, so they go through the per-pair path unchanged.
    assert (
        _fed_tokens(smol, reqs[-2:], batch_size=batch_size)[1]
        == (_fed_tokens(smol, reqs[-2:], batch_size=batch_size, share_context=False)[1])
    )
    for r, g, p in zip(reqs, shared, pairs, strict=True):
        direct = _direct_logprob(smol, r.context, r.continuation)
        assert g.logprob == pytest.approx(direct, abs=1e-3), r
        assert (g.n_tokens, g.is_greedy) == (p.n_tokens, p.is_greedy)
    assert shared[0].n_tokens == shared[5].n_tokens == 1
    assert shared[2].n_tokens > 10 and shared[4].n_tokens > 10
    assert shared[0].logprob > shared[1].logprob


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_batched_scores_equal_one_at_a_time(smol: Any) -> None:
    kw: dict[str, Any] = {"limit": 4, "log": False, "sample_seed": 3, "data_dir": EXCERPT}
    shared = run_benchmark(smol, "hellaswag,winogrande", batch_size=8, **kw)
    batched = run_benchmark(smol, "hellaswag,winogrande", batch_size=8, share_context=False, **kw)
    single = run_benchmark(smol, "hellaswag,winogrande", batch_size=1, **kw)
    for name in ("hellaswag", "winogrande"):
        s = single.tasks[name]
        for b in (batched.tasks[name], shared.tasks[name]):
            assert b.n == s.n == 4
            for eb, es in zip(b.examples, s.examples, strict=True):
                assert eb["doc_index"] == es["doc_index"]
                assert eb["logprobs"] == pytest.approx(es["logprobs"], abs=2e-3)
                assert (eb["pred"], eb["pred_norm"]) == (es["pred"], es["pred_norm"])
            assert b.metrics["acc"] == s.metrics["acc"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_generation_task_scores_exact_match(smol: Any) -> None:
    res = run_benchmark(
        smol, ["gsm8k"], limit=2, num_fewshot=1, max_gen_toks=8, log=False, data_dir=EXCERPT
    )
    t = res.tasks["gsm8k"]
    assert t.n == 2 and t.num_fewshot == 1 and 0.0 <= t.metrics["exact_match"] <= 1.0
    for e in t.examples:
        assert e["answer"].lstrip("-").isdigit() and isinstance(e["generation"], str)
        assert e["exact_match"] == float(e["prediction"] == e["answer"])
        assert "Question:" not in e["generation"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_run_stores_a_run_with_metrics_and_per_example_artifacts(
    home: Path, model_cache: Path, smol: Any
) -> None:
    from opsloop.cli import app

    result = CliRunner().invoke(
        app,
        ["--home", str(home), "bench", "run", "--model", "local:smollm2", "--tasks",
         "piqa,winogrande", "--limit", "8", "--batch-size", "8", "--cache-dir",
         str(model_cache), "--data-dir", str(EXCERPT), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("{") :])
    assert body["tasks"]["piqa"]["n"] == 8 and body["model_id"] == "SmolLM2-135M-Instruct"
    import opsloop
    from opsloop.settings import Settings

    with opsloop.Client(settings=Settings(home=home)) as client:
        run = client.get_run(body["run_id"])
        assert run.status == "FINISHED"
        keys = client.list_metric_keys(run.id)
        for k in (
            "piqa/acc",
            "piqa/acc_norm",
            "piqa/acc_stderr",
            "winogrande/acc",
            "examples_per_s",
        ):
            assert k in keys
        assert keys["piqa/acc"].value == pytest.approx(body["tasks"]["piqa"]["metrics"]["acc"])
        lines = client.read_artifact(run.id, "benchmarks/piqa.jsonl").decode().splitlines()
        assert len(lines) == 8 and {"acc", "acc_norm", "logprobs"} <= set(json.loads(lines[0]))
        params = run.params if isinstance(run.params, dict) else {}
        assert str(params.get("limit")) == "8" and str(params.get("batch_size")) == "8"
        assert str(params.get("share_context")).lower() == "true"
    bad = CliRunner().invoke(
        app,
        ["--home", str(home), "bench", "run", "--model", "local:nope", "--tasks", "piqa",
         "--data-dir", str(EXCERPT)],
    )  # fmt: skip
    assert bad.exit_code == 1 and "error [INVALID_ARGUMENT]" in bad.output
