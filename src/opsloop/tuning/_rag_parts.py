"""The parts of ``rag_objective`` that need no model: corpus and question loading, chunking,
the settings' bounds, and the result types."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.datasets import MARKDOWN_SUFFIXES, ChunkingConfig, chunk_id, chunk_text
from opsloop.errors import InvalidArgument
from opsloop.tuning._space import Categorical, Float, Int, SearchSpace

__all__ = [
    "CONTEXT_METRICS",
    "DEFAULT_CHUNK",
    "DEFAULT_TOP_K",
    "KNOWN_INPUTS",
    "PARAMS",
    "PROMPT_VARIABLES",
    "RAG_PIPELINE_SPACE",
    "RagAnswer",
    "RagResult",
    "RagSettings",
    "check_values",
    "check_variables",
    "chunk_corpus",
    "load_corpus",
    "load_questions",
    "space_error",
    "token_counter",
    "values_of",
    "version_of",
]

RAG_PIPELINE_SPACE: SearchSpace = {
    "chunk_size": Categorical([32, 64, 128]),
    "top_k": Int(1, 4),
    "temperature": Float(0.0, 1.0),
    "prompt_version": Categorical([1, 2]),
}
"""The default space: prompt versions 1 and 2 of the prompt ``rag_objective`` is given."""

PARAMS = ("chunk_size", "top_k", "temperature", "prompt_version")
PROMPT_VARIABLES = ("question", "context")
DOC_SUFFIXES = (".md", ".markdown", ".mdx", ".txt", ".rst")
DEFAULT_CHUNK = 64
DEFAULT_TOP_K = 3
MAX_TOP_K = 100  # RetrieveStep's limit
MAX_CHUNK = 100_000
# Metrics that judge what was retrieved rather than what was answered.
CONTEXT_METRICS = frozenset({"context_recall", "context_precision"})
KNOWN_INPUTS = frozenset({"predictions", "references", "contexts", "question"})


@dataclass(frozen=True)
class RagSettings:
    """One point of the space, with the defaults filled in."""

    chunk_size: int
    top_k: int
    temperature: float
    prompt_version: int


@dataclass
class RagAnswer:
    question: str
    answer: str
    references: list[str]
    score: float | None
    contexts: list[str]  # retrieved chunk ids, best first
    latency_ms: float
    context_tokens: int
    input_tokens: int
    output_tokens: int


@dataclass
class RagResult:
    """What one set of settings scored: ``metrics`` by run metric key, and every answer."""

    settings: RagSettings
    index: str
    prompt: str
    metric: str
    metrics: dict[str, float]
    answers: list[RagAnswer] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.metrics[self.metric]


# ---------------------------------------------------------------------- inputs


def load_corpus(corpus: Any) -> list[tuple[str, str]]:
    """``(path, text)`` pairs from a folder (``.md .txt .rst`` files, recursively, sorted),
    a sequence of ``(path, text)`` pairs, or a sequence of texts (named ``doc-<i>``)."""
    if isinstance(corpus, (str, Path)):
        root = Path(corpus)
        if not root.is_dir():
            raise InvalidArgument(
                f"corpus folder {root} does not exist", details={"corpus": str(root)}
            )
        docs = [
            (p.relative_to(root).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix.lower() in DOC_SUFFIXES
        ]
    elif isinstance(corpus, Sequence):
        docs = []
        for i, item in enumerate(corpus):
            if isinstance(item, str):
                docs.append((f"doc-{i}", item))
            elif (
                isinstance(item, Sequence)
                and len(item) == 2
                and all(isinstance(x, str) for x in item)
            ):
                docs.append((item[0], item[1]))
            else:
                raise InvalidArgument(
                    f"corpus[{i}] must be a text or a (path, text) pair, got {type(item).__name__}",
                    details={"corpus": i},
                )
    else:
        raise InvalidArgument(
            "corpus must be a folder or a list of (path, text) pairs", details={"corpus": None}
        )
    docs = [(p, t) for p, t in docs if t.strip()]
    if not docs:
        raise InvalidArgument("the corpus holds no text", details={"corpus": str(corpus)[:200]})
    paths = [p for p, _ in docs]
    if len(set(paths)) != len(paths):
        raise InvalidArgument("corpus paths must be unique", details={"corpus": "paths"})
    return docs


_ANSWER_KEYS = ("answer", "answers", "reference", "expected")


def load_questions(questions: Any) -> list[tuple[str, list[str]]]:
    """``(question, [accepted answers])`` from rows ``{question, answer}`` (``answer`` a text or
    a list; also ``answers``/``reference``/``expected``), ``(question, answer)`` pairs, or a
    ``.jsonl``/``.json`` file of such rows."""
    if isinstance(questions, (str, Path)):
        path = Path(questions)
        if not path.is_file():
            raise InvalidArgument(f"questions file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() == ".jsonl":
                questions = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                questions = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"questions file {path}: {exc}") from None
    if not isinstance(questions, Sequence) or isinstance(questions, str) or not questions:
        raise InvalidArgument("questions must be a non-empty list of {question, answer} rows")
    out = []
    for i, row in enumerate(questions):
        if isinstance(row, Mapping):
            q = row.get("question")
            key = next((k for k in _ANSWER_KEYS if k in row), None)
            a = row.get(key) if key else None
        elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) == 2:
            q, a = row
        else:
            q = a = None
        refs = [a] if isinstance(a, str) else list(a) if isinstance(a, Sequence) else []
        if not isinstance(q, str) or not q.strip():
            raise InvalidArgument(f"questions[{i}] needs a non-empty 'question' text")
        if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise InvalidArgument(
                f"questions[{i}] needs an 'answer': a non-empty text or list of texts"
            )
        out.append((q, refs))
    return out


def chunk_corpus(
    docs: Sequence[tuple[str, str]], chunk_size: int, overlap: int = 0
) -> list[dict[str, Any]]:
    """Chunks ``{id, text, metadata}`` of at most ``chunk_size`` words (Markdown cut at headings
    first), with stable ids from where each chunk is and what it says."""
    cfg = ChunkingConfig(unit="tokens", size=chunk_size, overlap=overlap)
    out = []
    for path, text in docs:
        md = Path(path).suffix.lower() in MARKDOWN_SUFFIXES
        for i, c in enumerate(chunk_text(text, cfg, markdown=md)):
            out.append(
                {
                    "id": chunk_id(path, c.start, c.end, c.text),
                    "text": c.text,
                    "metadata": {
                        "source": path,
                        "title": Path(path).stem,
                        "chunk_index": i,
                        "chunk_size": chunk_size,
                    },
                }
            )
    return out


def space_error(path: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"search space: {path}: {message}", details={"path": path})


def values_of(d: Any) -> list[Any]:
    return [d.low, d.high] if isinstance(d, (Float, Int)) else list(d.choices)


def check_values(name: str, values: Sequence[Any], path: str, overlap: int) -> None:
    """Bounds of one RAG setting (prompt versions are checked against the registry apart)."""
    for v in values:
        if name == "temperature":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 2:
                raise space_error(path, f"temperatures must be numbers in 0..2, got {v!r}")
            continue
        hi = MAX_CHUNK if name == "chunk_size" else MAX_TOP_K
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise space_error(path, f"values must be integers in 1..{hi}, got {v!r}")
        if name == "chunk_size" and v <= overlap:
            raise space_error(
                path, f"every chunk size must exceed chunk_overlap ({overlap}), got {v}"
            )


def check_variables(pv: Any) -> None:
    """``InvalidArgument`` unless the prompt version takes ``question`` (and maybe ``context``)."""
    unknown = sorted(set(pv.variables) - set(PROMPT_VARIABLES))
    if unknown or "question" not in pv.variables:
        raise InvalidArgument(
            f"prompt {pv.uri} has variables {list(pv.variables)}: a RAG prompt uses "
            "'question' (required) and 'context' (the numbered retrieved chunks)",
            details={"prompt": pv.uri, "unknown": unknown},
        )


def version_of(v: Any) -> int | None:
    """A prompt version number as a space or params may hold it (3, 3.0, "3"), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def token_counter(model: Any) -> Any:
    """The model's own token count, or words for a model object that cannot count."""
    fn = getattr(model, "count_tokens", None)
    if callable(fn):
        return lambda x: int(fn(x))

    def words(x: Any) -> int:
        text = x if isinstance(x, str) else " ".join(m.get("content", "") for m in x)
        return len(text.split())

    return words
