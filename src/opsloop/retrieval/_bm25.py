"""Keyword search: Okapi BM25 on ``bm25s`` (sparse score matrices), and reciprocal rank fusion.

``BM25(passages)`` indexes texts once; ``scores(query)`` and ``top(query, k,
mask=None)`` answer queries, ``mask`` (a bool per passage) restricting the
answers (a metadata filter, applied inside the scoring as bm25s's weight
mask). Words are lower-cased runs of letters and digits, less the commonest
English function words; the IDF is Lucene's (``log(1 + (N - df + 0.5) / (df +
0.5))``), which stays positive for words in more than half the passages.

``rrf(rankings, k)``: reciprocal rank fusion, ``score(d) = sum 1 / (c + rank)``
over the rankings that hold ``d`` (ranks from 1, ``c`` = 60 as in Cormack et
al. 2009): it fuses rankings whose scores are not comparable (cosine, BM25).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from opsloop.errors import InvalidArgument

__all__ = ["BM25", "rrf", "tokenize"]

H = TypeVar("H", bound=Hashable)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# The commonest English function words: they match everything and rank nothing.
_STOP_WORDS = (
    "a an and are as at be by for from has have how in is it its of on or that the this to "
    "was were what when where which who why will with do does did can i you me my we our"
)
STOP = frozenset(_STOP_WORDS.split())


def tokenize(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOP]


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:  # pragma: no cover - the retrieval extra installs it
        raise InvalidArgument(
            "keyword search needs bm25s: pip install 'opsloop[retrieval]'"
        ) from None
    return bm25s


class BM25:
    """Scores passages for a query: ``k1`` term saturation, ``b`` length normalisation."""

    def __init__(self, passages: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        bm25s = _bm25s()
        self.k1, self.b = k1, b
        self.n = len(passages)
        self._model: Any = None
        if self.n:
            model = bm25s.BM25(k1=k1, b=b, method="lucene")
            # create_empty_token: a passage with no words still gets a (zero) score.
            model.index([tokenize(p) for p in passages], show_progress=False)
            self._model = model

    def scores(self, query: str, mask: Any = None) -> Any:
        """A float32 score per passage (0 where no query word occurs, or ``mask`` is false)."""
        import numpy as np

        if self._model is None:
            return np.zeros(0, dtype=np.float32)
        terms = [t for t in tokenize(query) if t in self._model.vocab_dict]
        if not terms:
            return np.zeros(self.n, dtype=np.float32)
        weights = None if mask is None else np.asarray(mask, dtype=np.float32)
        out: Any = self._model.get_scores(terms, weight_mask=weights)
        return np.asarray(out, dtype=np.float32)

    def top(self, query: str, k: int, mask: Any = None) -> list[tuple[int, float]]:
        """``(passage index, score)`` of the ``k`` best passages with a positive score."""
        import numpy as np

        s = self.scores(query, mask)
        pos = np.flatnonzero(s > 0)
        if len(pos) > k:
            pos = pos[np.argpartition(-s[pos], k - 1)[:k]]
        order = sorted(pos.tolist(), key=lambda i: (-float(s[i]), i))
        return [(i, float(s[i])) for i in order]


def rrf(rankings: Sequence[Sequence[H]], k: int, c: int = 60) -> list[tuple[H, float]]:
    """The ``k`` best items of several rankings (best first each), fused by reciprocal rank."""
    fused: dict[H, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (c + rank)
    best = sorted(fused.items(), key=lambda kv: -kv[1])
    return best[:k]
