"""Question-answering sets the quickstart's LLM steps use.

``GENERAL_QA``: short factual questions with one-word answers, for choosing
between the two bundled LLMs (scored with ``contains``: tiny models answer
in sentences). ``DOCS_QA``: the few questions about opsloop the quickstart
asks its retrieval pipeline over opsloop's own docs.

``docs_questions()``: the docs question-answering task, about a hundred
questions written from opsloop's own docs (``README.md``, ``docs/*.md``),
each with a short reference answer the docs support (``|`` separates
accepted alternatives) and the file it comes from, split once into
``train`` (about 70%) and ``heldout`` (about 30%). The split is fixed by
each row's id (``split_of``), stored in the shipped ``docs_qa.jsonl`` and
never changes when questions are added. Its quality metric is the
quickstart's: ``contains`` (a reference answer occurs in the answer as whole
words, SQuAD-normalised), with ``token_f1`` beside it.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from opsloop.errors import InvalidArgument

DOCS_QUALITY_METRIC = "contains"
SPLITS = ("train", "heldout")
HELDOUT_PERCENT = 30

GENERAL_QA: list[dict[str, str]] = [
    {"id": "q01", "question": "What is the capital of France?", "answer": "Paris"},
    {"id": "q02", "question": "What is the capital of Italy?", "answer": "Rome"},
    {"id": "q03", "question": "What is the capital of Japan?", "answer": "Tokyo"},
    {"id": "q04", "question": "What color is the sky on a clear day?", "answer": "blue"},
    {"id": "q05", "question": "How many days are there in a week?", "answer": "seven|7"},
    {
        "id": "q06",
        "question": "What is the largest planet in the solar system?",
        "answer": "Jupiter",
    },
    {"id": "q07", "question": "What do bees make?", "answer": "honey"},
    {"id": "q08", "question": "What is frozen water called?", "answer": "ice"},
    {"id": "q09", "question": "Which animal is known as the king of the jungle?", "answer": "lion"},
    {
        "id": "q10",
        "question": "What gas do plants take in from the air?",
        "answer": "carbon dioxide|CO2",
    },
    {"id": "q11", "question": "On which continent is Egypt?", "answer": "Africa"},
    {"id": "q12", "question": "What is the opposite of hot?", "answer": "cold"},
]

DOCS_QA: list[str] = [
    "How do I start the opsloop server?",
    "How are metrics buffered by the SDK?",
    "Which formats does the registry use to save scikit-learn models?",
]


def answers(row: dict[str, str]) -> list[str]:
    """The accepted answers of a row (``|`` separates alternatives)."""
    return row["answer"].split("|")


def split_of(row_id: str) -> str:
    """``heldout`` for about 30% of ids, ``train`` for the rest: a function of the id alone."""
    h = int(hashlib.sha256(row_id.encode()).hexdigest()[:8], 16)
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


@lru_cache(maxsize=1)
def _docs_rows() -> tuple[dict[str, str], ...]:
    text = resources.files("opsloop.quickstart").joinpath("docs_qa.jsonl").read_text("utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def docs_questions(split: str | None = None) -> list[dict[str, Any]]:
    """The docs QA rows: ``{id, question, answer, source, split}``, in id order.

    ``split``: ``"train"``, ``"heldout"`` or None (all). ``answer`` is the
    list of accepted answers, ready for ``contains``/``token_f1`` as references.
    """
    if split is not None and split not in SPLITS:
        raise InvalidArgument(
            f"unknown split {split!r}: use one of {', '.join(SPLITS)} (or none for all)",
            details={"split": split},
        )
    return [
        {**r, "answer": answers(r)} for r in _docs_rows() if split is None or r["split"] == split
    ]
