"""Evaluation runs: bootstrap intervals, stored runs, comparison statistics, REST and CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.errors import InvalidArgument
from opsloop.evaluation import (
    bootstrap_ci,
    compare,
    evaluate,
    get_metric,
    mcnemar_exact,
    paired_permutation_test,
)
from opsloop.evaluation._bootstrap import metric_ci
from opsloop.settings import Settings
from tests.conftest import live_server

# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    trials, hits = 300, 0
    for t in range(trials):
        x = rng.exponential(scale=2.0, size=80)  # skewed; true mean 2.0
        ci = bootstrap_ci(x, n_bootstrap=400, confidence=0.9, seed=t)
        hits += ci.low <= 2.0 <= ci.high
    rate = hits / trials
    # percentile bootstrap under-covers a little on skewed data; 300 trials give ~±0.035 noise
    assert 0.82 <= rate <= 0.96, rate


def test_bootstrap_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidArgument, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(InvalidArgument, match="non-empty"):
        bootstrap_ci([])


def test_count_path_matches_the_metric_and_recomputation() -> None:
    rng = np.random.default_rng(3)
    refs = rng.integers(0, 3, 300).tolist()
    preds = [r if rng.random() < 0.7 else int(rng.integers(0, 3)) for r in refs]
    for name in ("accuracy", "f1_macro", "precision_weighted", "recall_micro"):
        m = get_metric(name)
        value = m(preds, refs)
        fast = metric_ci(
            m, preds, refs, {}, value=value, per_example=None,
            n_bootstrap=300, confidence=0.9, seed=1,
        )  # fmt: skip
        assert fast.method == "counts"
        slow = metric_ci(
            m.bind(zero_division=0) if name != "accuracy" else m.bind(normalize=True),
            preds, refs, {}, value=value, per_example=None,
            n_bootstrap=300, confidence=0.9, seed=1,
        )  # fmt: skip
        assert slow.method == "recompute"
        assert fast.low < value < fast.high
        assert abs(fast.low - slow.low) < 0.03 and abs(fast.high - slow.high) < 0.03


def test_corpus_bleu_interval_by_resampling_sentences() -> None:
    pytest.importorskip("sacrebleu")
    refs = [f"the cat number {i} sat on the mat" for i in range(40)]
    preds = [r if i % 3 else r.replace("cat", "dog") for i, r in enumerate(refs)]
    m = get_metric("bleu")
    value = m(preds, refs)
    ci = metric_ci(m, preds, refs, {}, value=value, per_example=None,
                   n_bootstrap=200, confidence=0.95, seed=0)  # fmt: skip
    assert ci.method == "counts"
    assert ci.low <= value <= ci.high and ci.high - ci.low > 0


# ---------------------------------------------------------------------------- runs


ROWS = [{"id": f"q{i}", "question": f"{i} plus one", "answer": str(i + 1)} for i in range(12)]


def _right(x: dict[str, object]) -> str:
    return str(int(str(x["question"]).split()[0]) + 1)


def _wrong_on_3(x: dict[str, object]) -> str:
    n = int(str(x["question"]).split()[0])
    return "nope" if n % 4 == 0 else str(n + 1)


def test_evaluate_stores_a_run_with_intervals_examples_and_lineage(
    client: opsloop.Client,
) -> None:
    ds = client.datasets.create("qa", ROWS)
    res = evaluate(_wrong_on_3, f"qa@{ds.version}", metrics=["exact_match", "token_f1"],
                   client=client, n_bootstrap=200)  # fmt: skip
    assert res.target_column == "answer" and res.n_examples == 12
    assert res.metrics["exact_match"] == pytest.approx(9 / 12)
    v, lo, hi = res.ci("exact_match")
    assert lo <= v <= hi and lo < hi
    run = client.get_run(res.run_id)
    assert run.params["dataset"] == "qa@1" and run.params["dataset_digest"] == ds.content_digest
    assert run.tags["opsloop.eval"] == "1"
    assert run.metrics["exact_match_ci_low"].value == pytest.approx(lo)
    assert "latency_p99_ms" in run.metrics
    lines = client.read_artifact(res.run_id, "eval/examples.jsonl").decode().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 12 and first["id"] == "q0" and first["output"] == "nope"
    assert first["scores"]["exact_match"] == 0.0
    assert [i.context for i in client.datasets.run_inputs(res.run_id)] == ["evaluation"]
    again = client.evaluation.get(res.run_id)
    assert again.metrics == res.metrics and len(again.examples) == 12
    assert [r.id for r in client.evaluation.list()] == [res.run_id]


def test_failed_examples_are_kept_and_left_out_of_the_metrics(client: opsloop.Client) -> None:
    def flaky(x: dict[str, object]) -> str:
        if x["question"] == "0 plus one":
            raise ValueError("boom")
        return _right(x)

    res = evaluate(flaky, ROWS, metrics="exact_match", client=client, n_bootstrap=50)
    assert res.n_errors == 1 and res.metrics["exact_match"] == 1.0
    assert res.metrics["error_rate"] == pytest.approx(1 / 12)
    assert res.examples[0].error == "ValueError: boom"


def test_bad_inputs_are_clear_errors(client: opsloop.Client) -> None:
    with pytest.raises(InvalidArgument, match="target_column"):
        evaluate(_right, [{"q": "1"}], metrics="exact_match", client=client)
    with pytest.raises(InvalidArgument, match="no target column"):
        evaluate(_right, ROWS, metrics="exact_match", target_column="zzz", client=client)
    with pytest.raises(opsloop.errors.NotFound):
        evaluate(_right, ROWS, metrics="no_such_metric", client=client)
    assert client.evaluation.list() == []  # nothing stored by a refused call


# ---------------------------------------------------------------------------- compare


def _brute_force_p(diffs: list[float]) -> float:
    d = [x for x in diffs if x != 0]
    obs = abs(sum(d))
    count = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= obs - 1e-12
        for signs in itertools.product((1, -1), repeat=len(d))
    )
    return count / 2 ** len(d)


def test_compare_counts_wins_and_losses_and_its_p_values_are_exact(
    client: opsloop.Client,
) -> None:
    base = evaluate(_wrong_on_3, ROWS, metrics="exact_match", client=client, n_bootstrap=100)

    def other(x: dict[str, object]) -> str:  # right on 0 and 4, wrong on 1, 2, 5
        n = int(str(x["question"]).split()[0])
        return "x" if n in (1, 2, 5) else str(n + 1)

    cand = evaluate(other, ROWS, metrics="exact_match", client=client, n_bootstrap=100)
    cmp = compare([base.run_id, cand.run_id], metric="exact_match", client=client)
    c = cmp.candidates[1]
    # base wrong on 0, 4, 8; other wrong on 1, 2, 5: other wins 0, 4, 8 and loses 1, 2, 5
    assert (c.wins, c.losses, c.ties) == (3, 3, 6)
    diffs = [e.diffs[1] for e in cmp.examples]
    assert diffs == [1.0, -1.0, -1.0, 0, 1.0, -1.0, 0, 0, 1.0, 0, 0, 0]
    assert c.p_value_permutation == pytest.approx(_brute_force_p(diffs))
    assert c.p_value_mcnemar == pytest.approx(1.0) and c.p_value_sign == pytest.approx(1.0)
    assert cmp.per_example_basis == "score" and c.delta == 0.0

    lopsided = [1.0] * 9 + [-1.0] + [0.0] * 5
    assert paired_permutation_test(lopsided) == pytest.approx(_brute_force_p(lopsided))
    assert paired_permutation_test(lopsided) == pytest.approx(22 / 1024)
    # McNemar exact: b=9, c=1 -> 2 * P(X <= 1), X ~ Bin(10, 0.5)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * (1 + 10) / 1024)


def test_monte_carlo_permutation_agrees_with_the_exact_test() -> None:
    rng = np.random.default_rng(0)
    diffs = (rng.normal(0.3, 1.0, 20)).tolist()  # 20 nonzero: Monte Carlo path
    mc = paired_permutation_test(diffs, n_permutations=20_000, seed=1)
    exact = _brute_force_p(diffs)
    assert abs(mc - exact) < 0.01


def test_compare_errors(client: opsloop.Client) -> None:
    a = evaluate(_right, ROWS, metrics="exact_match", client=client, n_bootstrap=10)
    with pytest.raises(InvalidArgument, match="at least two"):
        compare([a.run_id], metric="exact_match", client=client)
    with pytest.raises(InvalidArgument, match="no metric 'f1'"):
        compare([a, a], metric="f1")
    plain = client.create_run(experiment_name="x")
    with pytest.raises(InvalidArgument, match="not an evaluation run"):
        compare([a.run_id, plain.id], metric="exact_match", client=client)


# ---------------------------------------------------------------------------- a real sklearn model


def test_sklearn_model_on_a_dataset_version(client: opsloop.Client, tmp_path: Path) -> None:
    sk = pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from opsloop.registry.flavors import save_sklearn

    assert sk
    x, y = load_iris(return_X_y=True)
    cols = ["sl", "sw", "pl", "pw"]
    rows = [
        dict(zip(cols, map(float, r), strict=True)) | {"label": int(t)}
        for r, t in zip(x, y, strict=True)
    ]
    train, test = rows[::2], rows[1::2]
    model = LogisticRegression(max_iter=300).fit(
        [[r[c] for c in cols] for r in train], [r["label"] for r in train]
    )
    folder = save_sklearn(
        model, tmp_path / "m", input_example=[{c: r[c] for c in cols} for r in train[:3]]
    )
    mv = client.registry.register("iris", folder)
    ds = client.datasets.create("iris-test", test)
    res = evaluate("models:/iris/1", "iris-test@1", metrics=["accuracy", "f1_macro"],
                   target_column="label", client=client, n_bootstrap=200)  # fmt: skip
    pred = model.predict([[r[c] for c in cols] for r in test])
    truth = [r["label"] for r in test]
    assert res.metrics["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert res.metrics["f1_macro"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert (
        res.metrics["f1_macro_ci_low"] <= res.metrics["f1_macro"] <= res.metrics["f1_macro_ci_high"]
    )
    run = client.get_run(res.run_id)
    assert (
        run.tags["opsloop.eval.model"] == "iris" and run.tags["opsloop.eval.model_version"] == "1"
    )
    assert res.candidate == f"models:/iris/{mv.version}" and ds.version == 1


# ---------------------------------------------------------------------------- REST and CLI


def test_rest_lists_and_compares_evaluations(home: Path) -> None:
    with live_server(Settings(home=home)) as srv:
        remote = opsloop.Client(settings=Settings(home=home / "c", tracking_uri=srv.url))
        a = remote.evaluation.evaluate(_wrong_on_3, ROWS, metrics=["exact_match"], n_bootstrap=50)
        b = remote.evaluation.evaluate(_right, ROWS, metrics=["exact_match"], n_bootstrap=50)
        remote.close()
        api = f"{srv.url}/api/v1"
        listed = httpx.get(f"{api}/evaluations").json()["evaluations"]
        assert {e["run_id"] for e in listed} == {a.run_id, b.run_id}
        row = next(e for e in listed if e["run_id"] == a.run_id)
        assert row["metrics"]["exact_match"] == pytest.approx(0.75)
        assert "exact_match_ci_low" in row["metrics"] and row["metric_names"] == ["exact_match"]
        r = httpx.get(f"{api}/evaluations/compare",
                      params={"runs": f"{a.run_id},{b.run_id}", "metric": "exact_match",
                              "offset": 2, "limit": 3})  # fmt: skip
        body = r.json()
        assert r.status_code == 200 and body["total_examples"] == 12
        assert [e["id"] for e in body["examples"]] == ["q2", "q3", "q4"]
        assert body["candidates"][1]["wins"] == 3 and body["candidates"][1]["losses"] == 0
        bad = httpx.get(f"{api}/evaluations/compare", params={"runs": a.run_id, "metric": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
        missing = httpx.get(f"{api}/evaluations/compare",
                            params={"runs": f"{a.run_id},nope", "metric": "exact_match"})  # fmt: skip
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
        one = httpx.get(f"{api}/evaluations/{a.run_id}", params={"limit": 2}).json()
        assert one["n_examples"] == 12 and len(one["examples"]) == 2


def test_cli_run_and_compare(client: opsloop.Client, home: Path) -> None:
    from opsloop.cli._app import app

    client.datasets.create("qa", ROWS)
    a = evaluate(_wrong_on_3, "qa@1", metrics=["exact_match"], client=client, n_bootstrap=50)
    b = evaluate(_right, "qa@1", metrics=["exact_match"], client=client, n_bootstrap=50)
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "compare", a.run_id, b.run_id, "--metric", "exact_match",
                              "--home", str(home)], env={"COLUMNS": "250"})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3/0/9" in res.output and "q0" in res.output
    res = runner.invoke(app, ["eval", "compare", a.run_id, "--metric", "exact_match",
                              "--home", str(home)])  # fmt: skip
    assert res.exit_code == 1 and "error [INVALID_ARGUMENT]" in res.output
    res = runner.invoke(app, ["eval", "run", "--candidate", "nowhere", "--dataset", "qa@1",
                              "--metric", "exact_match", "--home", str(home)])  # fmt: skip
    assert res.exit_code == 1 and "is not a models:/ URI" in res.output
    assert not math.isnan(b.metrics["exact_match"])


# ---------------------------------------------------------------------------- a real LLM


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smollm2_candidate_on_five_qa_rows(client: opsloop.Client, model_cache: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from opsloop.registry import LoadedCausalLM, bundled_gguf, load_model

    client.registry.register(
        "smol", bundled_gguf("smollm2"), flavor="transformers",
        options={"model_id": "SmolLM2-135M-Instruct"},
    )  # fmt: skip
    lm = load_model("models:/smol/1", client=client, cache_dir=model_cache)
    assert isinstance(lm, LoadedCausalLM)
    qa = [
        {"id": "fr", "question": "What is the capital of France?", "answer": "Paris"},
        {"id": "de", "question": "What is the capital of Germany?", "answer": "Berlin"},
        {"id": "it", "question": "What is the capital of Italy?", "answer": "Rome"},
        {"id": "es", "question": "What is the capital of Spain?", "answer": "Madrid"},
        {"id": "jp", "question": "What is the capital of Japan?", "answer": "Tokyo"},
    ]
    res = evaluate(lm, qa, metrics=["token_f1", "exact_match"], client=client,
                   prompt="Answer with one word. {{question}}", options={"max_tokens": 6},
                   n_bootstrap=100)  # fmt: skip
    assert res.candidate == "models:/smol/1" and res.candidate_kind == "llm"
    assert res.n_errors == 0 and all(isinstance(e.output, str) for e in res.examples)
    assert all(e.input_tokens and e.output_tokens and e.output_tokens <= 6 for e in res.examples)
    assert res.metrics["tokens_per_example"] > 6
    assert 0.0 <= res.metrics["token_f1"] <= 1.0
    run = client.get_run(res.run_id)
    assert run.params["prompt"] == "Answer with one word. {{question}}"
    assert json.loads(run.params["options"]) == {"max_tokens": 6}
