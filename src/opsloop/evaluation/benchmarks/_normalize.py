"""Answer normalisation for exact match (SQuAD-style text, or the final number for maths)."""

from __future__ import annotations

import re
import string

from opsloop.evaluation.benchmarks._task import Normalization

__all__ = ["extract_number", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_NUMBER = re.compile(r"-?[$]?\d[\d,]*(?:\.\d+)?")
_PUNCT = str.maketrans("", "", string.punctuation)


def extract_number(text: str, answer_prefix: str | None = "####") -> str | None:
    """The answer number of a worked solution: after ``answer_prefix`` if present, else the last one.

    ``"... #### 1,234"`` -> ``"1234"``; ``"$18.00."`` -> ``"18"``; no number -> ``None``.
    """
    region = text
    if answer_prefix and answer_prefix in text:
        region = text.rsplit(answer_prefix, 1)[1]
        found = _NUMBER.search(region)
    else:
        matches = _NUMBER.findall(region)
        found = None
        if matches:
            return _canonical_number(matches[-1])
    return _canonical_number(found.group(0)) if found else None


def _canonical_number(raw: str) -> str:
    s = raw.replace(",", "").replace("$", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s


def normalize_answer(text: str, norm: Normalization) -> str:
    """``text`` as exact match compares it under ``norm``."""
    if norm.number:
        return extract_number(text, norm.answer_prefix) or ""
    s = text.lower() if norm.lowercase else text
    if norm.strip_punctuation:
        s = s.translate(_PUNCT)
    if norm.strip_articles:
        s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())
