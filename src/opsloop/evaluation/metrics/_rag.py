"""Retrieval-augmented generation metrics: faithfulness, answer relevancy, context precision/recall.

Each metric decides *support* (is this claim backed by that text?) in one of
three ways, picked by what the caller passes:

- ``judge=`` a chat model: one structured request per call, validated and
  retried like :func:`opsloop.evaluation.metrics.judge` (the RAGAS approach);
- ``embedder=`` (or ``method="embedding"`` for the bundled MiniLM): the best
  cosine similarity between the claim and any context sentence reaches
  ``threshold`` (default 0.6);
- otherwise token overlap, offline and instant: the share of the claim's
  content words found in one context reaches ``threshold`` (default 0.6).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, model_validator

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics._embedding import cosine_matrix, embed
from opsloop.evaluation.metrics._judge import Rubric, ask_structured
from opsloop.evaluation.metrics._judge import judge as run_judge
from opsloop.evaluation.metrics._text import normalize_answer

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "them",
        "his",
        "her",
        "their",
        "our",
        "your",
        "my",
        "me",
        "us",
        "so",
        "than",
        "then",
        "also",
        "very",
    ]
)


class Support(BaseModel):
    """Whether one claim (or context) is supported, with a score in [0, 1] and a reason."""

    text: str
    supported: bool
    score: float
    reason: str = ""


def split_claims(text: str) -> list[str]:
    """Sentences of ``text`` that hold at least one word: the claims a faithfulness check tests."""
    return [s.strip() for s in _SENTENCE.split(text) if re.search(r"\w", s)]


def _content_words(text: str) -> set[str]:
    return {w for w in normalize_answer(text).split() if w not in _STOP}


def _text_list(values: Any, name: str) -> list[str]:
    if isinstance(values, str):
        return [values]
    if not isinstance(values, Sequence) or not values:
        raise InvalidArgument(f"{name} must be a non-empty list of strings")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise InvalidArgument(f"{name}[{i}] must be a string, got {type(v).__name__}")
    return list(values)


def _nonempty(text: Any, name: str) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"{name} must be a string")
    if not text.strip():
        raise InvalidArgument(f"{name} is empty")
    return text


class _Verdict(BaseModel):
    index: int
    supported: bool
    reason: str = ""


class _Verdicts(BaseModel):
    verdicts: list[_Verdict] = Field(min_length=1)

    @model_validator(mode="after")
    def _all_claims(self, info: ValidationInfo) -> _Verdicts:
        n = (info.context or {}).get("n", 0)
        got = sorted(v.index for v in self.verdicts)
        if got != list(range(1, n + 1)):
            raise ValueError(f"give exactly one verdict for each index 1..{n}, got {got}")
        return self


def _judge_support(
    model: Any, claims: list[str], contexts: list[str], max_retries: int, what: str
) -> list[Support]:
    numbered = "\n".join(f"{i}. {c}" for i, c in enumerate(claims, start=1))
    ctx = "\n\n".join(f"[{i}] {c}" for i, c in enumerate(contexts, start=1))
    example = '{"verdicts": [{"index": 1, "supported": true, "reason": "..."}]}'
    messages = [
        {
            "role": "system",
            "content": "You check statements against source text. Answer with one JSON object only.",
        },
        {
            "role": "user",
            "content": (
                f"Source text:\n{ctx}\n\n{what}:\n{numbered}\n\nFor each numbered item, say whether "
                "the source text supports it. Answer with only this JSON object: " + example
            ),
        },
    ]
    parsed, _ = ask_structured(
        model,
        messages,
        _Verdicts,
        max_retries=max_retries,
        example=example,
        context={"n": len(claims)},
    )
    by_index = {v.index: v for v in parsed.verdicts}
    return [
        Support(
            text=c,
            supported=by_index[i].supported,
            score=float(by_index[i].supported),
            reason=by_index[i].reason,
        )
        for i, c in enumerate(claims, start=1)
    ]


def _support(
    claims: list[str],
    contexts: list[str],
    *,
    judge: Any,
    embedder: Any,
    method: str | None,
    threshold: float | None,
    max_retries: int,
    what: str = "Statements",
) -> list[Support]:
    if method not in (None, "judge", "embedding", "overlap"):
        raise InvalidArgument(f"method must be 'judge', 'embedding' or 'overlap', got {method!r}")
    chosen = method or (
        "judge" if judge is not None else "embedding" if embedder is not None else "overlap"
    )
    if chosen == "judge":
        if judge is None:
            raise InvalidArgument("method='judge' needs judge=<a chat model>")
        return _judge_support(judge, claims, contexts, max_retries, what)
    cut = 0.6 if threshold is None else float(threshold)
    if not 0 <= cut <= 1:
        raise InvalidArgument(f"threshold must lie in [0, 1], got {threshold!r}")
    if chosen == "embedding":
        sentences = [s for c in contexts for s in split_claims(c)] or contexts
        vectors = embed(embedder, claims + sentences)
        sims = cosine_matrix(vectors[: len(claims)], vectors[len(claims) :]).max(axis=1)
        scores = [max(0.0, float(s)) for s in sims]
        reason = "best cosine similarity to a context sentence"
    else:
        bags = [_content_words(c) for c in contexts]
        scores = []
        for claim in claims:
            words = _content_words(claim)
            scores.append(max(len(words & bag) / len(words) for bag in bags) if words else 0.0)
        reason = "share of content words found in one context"
    return [
        Support(text=c, supported=s >= cut, score=s, reason=reason)
        for c, s in zip(claims, scores, strict=True)
    ]


def claim_support(
    answer: str,
    contexts: str | Sequence[str],
    *,
    judge: Any = None,
    embedder: Any = None,
    method: str | None = None,
    threshold: float | None = None,
    max_retries: int = 2,
) -> list[Support]:
    """Each claim (sentence) of ``answer`` with whether ``contexts`` support it."""
    claims = split_claims(_nonempty(answer, "answer"))
    if not claims:
        raise InvalidArgument("answer holds no claim to check")
    ctx = _text_list(contexts, "contexts")
    return _support(
        claims,
        ctx,
        judge=judge,
        embedder=embedder,
        method=method,
        threshold=threshold,
        max_retries=max_retries,
    )


def faithfulness(answer: str, contexts: str | Sequence[str], **options: Any) -> float:
    """Share of the answer's claims that the contexts support (0-1); options as :func:`claim_support`."""
    rows = claim_support(answer, contexts, **options)
    return sum(r.supported for r in rows) / len(rows)


_RELEVANCY = Rubric(
    name="answer_relevancy",
    criteria=[
        "The response answers the question that was asked, directly and completely.",
        "Correctness does not matter here; off-topic or evasive content lowers the score.",
    ],
)


def answer_relevancy(
    question: str,
    answer: str,
    *,
    judge: Any = None,
    embedder: Any = None,
    max_retries: int = 2,
) -> float:
    """How well ``answer`` addresses ``question``, in [0, 1].

    With ``judge``: the judge's 1-5 relevancy grade, rescaled. Otherwise the
    cosine similarity of question and answer embeddings (negative counts as 0).
    """
    q, a = _nonempty(question, "question"), _nonempty(answer, "answer")
    if judge is not None:
        return run_judge(judge, _RELEVANCY, output=a, input=q, max_retries=max_retries).normalized
    vectors = embed(embedder, [q, a])
    return max(0.0, float(cosine_matrix(vectors[:1], vectors[1:])[0, 0]))


def _relevance(
    contexts: Any, relevant_ids: Any, reference: Any, options: dict[str, Any]
) -> list[bool]:
    if (relevant_ids is None) == (reference is None):
        raise InvalidArgument(
            "pass exactly one of relevant_ids= (id mode) or reference= (text mode)"
        )
    if isinstance(contexts, str) or not isinstance(contexts, Sequence) or not contexts:
        raise InvalidArgument(
            "contexts must be a non-empty list (retrieved ids or texts, best first)"
        )
    if relevant_ids is not None:
        if isinstance(relevant_ids, str) or not isinstance(relevant_ids, Collection):
            raise InvalidArgument("relevant_ids must be a collection of ids")
        wanted = set(relevant_ids)
        return [c in wanted for c in contexts]
    ref = _nonempty(reference, "reference")
    ctx = _text_list(contexts, "contexts")
    # a context is relevant when it supports some sentence of the reference answer
    sentences = split_claims(ref)
    flags = []
    for c in ctx:
        rows = _support(sentences, [c], what="Reference sentences", **options)
        flags.append(any(r.supported for r in rows))
    return flags


def context_precision(
    contexts: Any,
    *,
    relevant_ids: Collection[Any] | None = None,
    reference: str | None = None,
    judge: Any = None,
    embedder: Any = None,
    method: str | None = None,
    threshold: float | None = None,
    max_retries: int = 2,
) -> float:
    """Ranking-aware precision of the retrieved contexts (RAGAS): ``sum_k P@k * rel_k / #relevant``.

    ``contexts`` is the ranked retrieval (best first). Id mode: ``contexts``
    holds ids and ``relevant_ids`` the right ones. Text mode: ``contexts``
    holds texts and a context is relevant when it supports a sentence of
    ``reference``. 0.0 when nothing retrieved is relevant.
    """
    opts = {
        "judge": judge,
        "embedder": embedder,
        "method": method,
        "threshold": threshold,
        "max_retries": max_retries,
    }
    rel = _relevance(contexts, relevant_ids, reference, opts)
    hits, total = 0, 0.0
    for k, r in enumerate(rel, start=1):
        if r:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


def context_recall(
    contexts: Any,
    *,
    relevant_ids: Collection[Any] | None = None,
    reference: str | None = None,
    judge: Any = None,
    embedder: Any = None,
    method: str | None = None,
    threshold: float | None = None,
    max_retries: int = 2,
) -> float:
    """How much of what was needed was retrieved, in [0, 1].

    Id mode: share of ``relevant_ids`` among ``contexts``. Text mode: share of
    the sentences of ``reference`` that the contexts support (RAGAS).
    """
    if (relevant_ids is None) == (reference is None):
        raise InvalidArgument(
            "pass exactly one of relevant_ids= (id mode) or reference= (text mode)"
        )
    if relevant_ids is not None:
        if (
            isinstance(relevant_ids, str)
            or not isinstance(relevant_ids, Collection)
            or not relevant_ids
        ):
            raise InvalidArgument("relevant_ids must be a non-empty collection of ids")
        if isinstance(contexts, str) or not isinstance(contexts, Sequence):
            raise InvalidArgument("contexts must be a list of retrieved ids")
        wanted = set(relevant_ids)
        return len(wanted & set(contexts)) / len(wanted)
    sentences = split_claims(_nonempty(reference, "reference"))
    if not sentences:
        raise InvalidArgument("reference holds no sentence")
    rows = _support(
        sentences,
        _text_list(contexts, "contexts"),
        judge=judge,
        embedder=embedder,
        method=method,
        threshold=threshold,
        max_retries=max_retries,
        what="Reference sentences",
    )
    return sum(r.supported for r in rows) / len(rows)
