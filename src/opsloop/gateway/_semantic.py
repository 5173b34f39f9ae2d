"""The semantic answer cache: a request whose meaning is the same as an earlier one's gets
its answer, and one that only looks the same does not.

Two tests, both needed. The MiniLM cosine similarity of the two requests'
texts must reach the route's threshold; but embeddings put "enable 2FA" and
"disable 2FA" at 0.95, closer than most paraphrases, so similarity alone
cannot tell them apart (``benchmarks/gateway_cache.py`` shows it on the
shipped pairs). The second test, :func:`meaning_differs` (``_contrast``),
refuses a candidate whose text differs from the request in what flips an
answer: its numbers, its names, the parity of its negations, a known opposite
word, or one or two content words swapped for others (the contrast check).

Entries live in this process, per scope (team or key), route, endpoint and
the request's other parameters (temperature, max_tokens, ...), at most
``max_entries`` per scope, for the route's TTL. Replicas each keep their own
(the exact cache is the one shared through Redis).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from opsloop.gateway._contrast import meaning_differs

__all__ = [
    "DEFAULT_SIMILARITY",
    "SemanticCache",
    "SemanticHit",
    "meaning_differs",
    "request_text",
]

# Chosen by benchmarks/gateway_cache.py on the tuning split of the shipped pairs
# (gateway/data/cache_pairs_tune.jsonl): the lowest threshold whose false-hit rate on
# look-alike pairs stays at most 1%, with no false hit on unrelated pairs. The value to put
# in a route's cache.semantic_similarity.
DEFAULT_SIMILARITY = 0.75

_IGNORED = ("stream", "stream_options", "user", "metadata", "messages", "prompt")


def request_text(endpoint: str, body: dict[str, Any]) -> str | None:
    """The text a request's meaning is read from: its messages (role and content) or its
    prompt; None when it has none to compare (non-text parts, token lists)."""
    if endpoint == "chat":
        parts = []
        for m in body.get("messages") or []:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                return None
            parts.append(f"{m.get('role', 'user')}: {m['content']}")
        return "\n".join(parts) or None
    if endpoint == "completions":
        p = body.get("prompt")
        return p if isinstance(p, str) and p else None
    return None


def bucket_key(endpoint: str, route: str, scope: str, body: dict[str, Any]) -> str:
    """Requests are compared only with requests of the same scope, route, endpoint and
    other parameters."""
    rest = {k: v for k, v in body.items() if k not in _IGNORED}
    raw = orjson.dumps([endpoint, route, scope, rest], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class SemanticHit:
    answer: bytes
    similarity: float
    text: str


class _Bucket:
    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.entries: list[tuple[float, str, bytes]] = []  # expiry, text, answer


class SemanticCache:
    """Per-process semantic cache; ``embed(texts) -> (n, d) array`` computes embeddings."""

    def __init__(self, embed: Any, *, max_entries: int = 1000, max_buckets: int = 10_000) -> None:
        self.embed = embed
        self.max_entries = max_entries
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        v: np.ndarray = np.asarray(self.embed([text]), dtype=np.float32)[0]
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    def lookup(
        self, bucket: str, text: str, vec: np.ndarray, threshold: float
    ) -> SemanticHit | None:
        """The most similar live entry at or above ``threshold`` whose meaning does not differ."""
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None or not b.entries:
                return None
            sims = b.vectors @ vec
            order = np.argsort(-sims)
            now = time.monotonic()
            entries = list(b.entries)
        for i in order[:8]:
            sim = float(sims[i])
            if sim < threshold:
                break
            expiry, cached_text, answer = entries[i]
            if expiry < now or meaning_differs(text, cached_text):
                continue
            return SemanticHit(answer, sim, cached_text)
        return None

    def put(self, bucket: str, text: str, vec: np.ndarray, answer: bytes, ttl_s: int) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None:
                b = self._buckets[bucket] = _Bucket(vec.shape[0])
                while len(self._buckets) > self.max_buckets:
                    self._buckets.popitem(last=False)
            self._buckets.move_to_end(bucket)
            now = time.monotonic()
            live = [i for i, e in enumerate(b.entries) if e[0] >= now]
            keep = live[max(0, len(live) - (self.max_entries - 1)) :]  # room for the new one
            b.entries = [b.entries[i] for i in keep] + [(now + ttl_s, text, answer)]
            b.vectors = np.vstack([b.vectors[keep], vec[None, :].astype(np.float32)])
