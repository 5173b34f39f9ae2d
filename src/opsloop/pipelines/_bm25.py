"""Okapi BM25 for the pipelines' offline search: ``opsloop.retrieval``'s, on the bm25s library."""

from __future__ import annotations

from opsloop.retrieval import BM25
from opsloop.retrieval import keyword_tokens as tokenize

__all__ = ["BM25", "tokenize"]
