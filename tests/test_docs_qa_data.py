"""The docs question-answering task: written from opsloop's own docs, split once, shipped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics import normalize_answer
from opsloop.quickstart import DOCS_QUALITY_METRIC, docs_questions
from opsloop.quickstart._qa_data import split_of

ROOT = Path(__file__).resolve().parents[1]


def test_the_set_is_about_a_hundred_unique_questions_each_with_an_answer() -> None:
    rows = docs_questions()
    assert 80 <= len(rows) <= 120
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["question"].lower() for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "question", "answer", "source", "split"}
        assert r["question"].endswith("?")
        assert r["answer"] and all(a.strip() for a in r["answer"])


def test_every_reference_answer_is_in_the_doc_it_was_written_from() -> None:
    texts: dict[str, str] = {}
    for r in docs_questions():
        path = ROOT / r["source"]
        assert path.is_file(), r
        text = texts.setdefault(r["source"], normalize_answer(path.read_text("utf-8")))
        assert any(normalize_answer(a) in text for a in r["answer"]), (r["id"], r["answer"])


def test_the_split_is_fixed_by_the_id_about_70_30_and_covers_every_doc() -> None:
    train, held = docs_questions("train"), docs_questions("heldout")
    assert {r["split"] for r in train} == {"train"} and {r["split"] for r in held} == {"heldout"}
    assert len(train) + len(held) == len(docs_questions())
    assert 0.25 <= len(held) / (len(train) + len(held)) <= 0.35
    for r in train + held:
        assert split_of(r["id"]) == r["split"]
    # Held-out questions come from many docs, not one corner of them.
    assert len(Counter(r["source"] for r in held)) >= 8


def test_bad_split_is_refused_and_the_metric_is_the_quickstarts() -> None:
    with pytest.raises(InvalidArgument, match="unknown split"):
        docs_questions("test")
    assert DOCS_QUALITY_METRIC == "contains"
    from opsloop.evaluation.metrics import get_metric

    rows = docs_questions("heldout")[:2]
    answers = [f"It is {r['answer'][0]}." for r in rows]
    assert get_metric(DOCS_QUALITY_METRIC)(answers, [r["answer"] for r in rows]) == 1.0
