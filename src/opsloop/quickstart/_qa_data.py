"""Small question-answering sets the quickstart's LLM steps use.

``GENERAL_QA``: short factual questions with one-word answers, for choosing
between the two bundled LLMs (scored with ``contains``: tiny models answer
in sentences). ``DOCS_QA``: questions about opsloop itself, answered by the
retrieval pipeline over opsloop's own docs.
"""

from __future__ import annotations

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
