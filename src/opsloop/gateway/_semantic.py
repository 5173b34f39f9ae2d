"""The semantic answer cache: a request whose meaning is the same as an earlier one's gets
its answer, and one that only looks the same does not.

Two tests, both needed. The MiniLM cosine similarity of the two requests'
texts must reach the route's threshold; but embeddings put "enable 2FA" and
"disable 2FA" at 0.95, closer than most paraphrases, so similarity alone
cannot tell them apart (``benchmarks/gateway_cache.py`` shows it on the
shipped pairs). The second test, :func:`meaning_differs`, refuses a candidate
whose text differs from the request in what flips an answer: its numbers, its
names (capitalised words, words with digits), the parity of its negations, or
a word of a known opposite pair (enable/disable, buy/sell, before/after, ...).

Entries live in this process, per scope (team or key), route, endpoint and
the request's other parameters (temperature, max_tokens, ...), at most
``max_entries`` per scope, for the route's TTL. Replicas each keep their own
(the exact cache is the one shared through Redis).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

__all__ = [
    "DEFAULT_SIMILARITY",
    "SemanticCache",
    "SemanticHit",
    "meaning_differs",
    "request_text",
]

# Chosen by benchmarks/gateway_cache.py on the shipped pairs (gateway/data/cache_pairs.jsonl):
# the lowest threshold whose false-hit rate stays at most 1%.
DEFAULT_SIMILARITY = 0.85

_IGNORED = ("stream", "stream_options", "user", "metadata", "messages", "prompt")

_NEGATION_WORDS = (
    "not no non never none nothing nobody nowhere neither nor without cannot forbid forbidden "
    "prohibit prohibited lack lacks lacking miss missed missing fail fails failed refuse "
    "refused absent"
)
_NEGATIONS = frozenset(_NEGATION_WORDS.split())
# Opposite pairs, compared on simple stems (see _stem).
_OPPOSITES = [
    ("enable", "disable"), ("increase", "decrease"), ("add", "remove"), ("add", "delete"),
    ("encrypt", "decrypt"), ("lock", "unlock"), ("buy", "sell"), ("upload", "download"),
    ("allow", "block"), ("allow", "deny"), ("allow", "forbid"), ("permit", "forbid"),
    ("permit", "deny"), ("start", "stop"), ("high", "low"), ("higher", "lower"),
    ("highest", "lowest"), ("ascend", "descend"), ("import", "export"), ("open", "close"),
    ("raise", "lower"), ("rise", "fall"), ("show", "hide"), ("accept", "reject"),
    ("on", "off"), ("include", "exclude"), ("up", "down"), ("grant", "revoke"),
    ("maximum", "minimum"), ("max", "min"), ("merge", "split"), ("connect", "disconnect"),
    ("for", "against"), ("install", "uninstall"), ("before", "after"), ("with", "without"),
    ("pass", "fail"), ("win", "lose"), ("true", "false"), ("first", "last"),
    ("left", "right"), ("above", "below"), ("more", "less"), ("most", "least"),
    ("push", "pull"), ("send", "receive"), ("subscribe", "unsubscribe"), ("login", "logout"),
    ("mount", "unmount"), ("compress", "decompress"), ("approve", "reject"),
    ("guilty", "innocent"), ("success", "failure"), ("valid", "invalid"), ("legal", "illegal"),
    ("safe", "unsafe"), ("public", "private"), ("inbound", "outbound"), ("early", "late"),
    ("earliest", "latest"), ("oldest", "newest"), ("old", "new"), ("cheap", "expensive"),
    ("cheapest", "dearest"), ("hot", "cold"), ("light", "dark"), ("fast", "slow"),
    ("in", "out"), ("into", "from"), ("to", "from"), ("plus", "minus"), ("asc", "desc"),
]  # fmt: skip
_SMALL_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:[.,:/]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")


def _stem(word: str) -> str:
    """A crude stem: enough to match "raising" with "raise" and "descending" with "descend"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            base = word[: -len(suffix)]
            return base + "e" if suffix in ("ing", "ed") and base + "e" in _OPPOSITE_WORDS else base
    return word


_PREFIXES = ("un", "non", "dis", "in", "im", "il", "ir", "de", "anti", "counter", "mis")
_SWAPPED_FORMS = ("er", "est", "ly")
_OPPOSITE_WORDS = {w for pair in _OPPOSITES for w in pair}
# Each pair with its stems, stemmed once here rather than on every comparison.
_OPPOSITE_STEMS = [(a, b, _stem(a), _stem(b)) for a, b in _OPPOSITES]


@dataclass(frozen=True)
class _Features:
    words: frozenset[str]  # lower-cased stems
    numbers: frozenset[str]
    names: frozenset[str]
    negations: int


def _features(text: str) -> _Features:
    text = text.replace("\u2019", "'").replace("n't", " not")
    words: set[str] = set()
    numbers: set[str] = set()
    names: set[str] = set()
    negations = 0
    for m in _TOKEN.finditer(text):
        tok = re.sub(r"'s$", "", m.group())
        low = tok.lower()
        if _NUMBER.fullmatch(tok):
            numbers.add(tok.replace(",", ""))
            continue
        if low in _SMALL_NUMBERS:
            numbers.add(_SMALL_NUMBERS[low])
            continue
        if low in _NEGATIONS:
            negations += 1
        words.add(_stem(low))
        # A name: a capitalised word that does not start a sentence (or a line, or what
        # follows a colon), or a word with a capital inside (iPhone, GitHub, 2FA).
        before = text[: m.start()].rstrip()
        starts = not before or before[-1] in '.?!:\n"\u201c('
        if low != "i" and (any(c.isupper() for c in tok[1:]) or (tok[0].isupper() and not starts)):
            names.add(low)
    return _Features(frozenset(words), frozenset(numbers), frozenset(names), negations)


def meaning_differs(a: str, b: str) -> str | None:
    """Why ``a`` and ``b`` may ask for different answers (``number``, ``name``, ``negation``,
    ``opposite:x/y``), or None when nothing of that kind differs."""
    fa, fb = _features(a), _features(b)
    if fa.numbers != fb.numbers:
        return "number"
    if fa.names != fb.names:
        return "name"
    if fa.negations % 2 != fb.negations % 2:
        return "negation"
    only_a, only_b = fa.words - fb.words, fb.words - fa.words
    # A word and its negating prefix: lock/unlock, advantage/disadvantage, legal/illegal.
    for w in only_a:
        for v in only_b:
            longer, shorter = (w, v) if len(w) > len(v) else (v, w)
            if any(longer == p + shorter for p in _PREFIXES):
                return f"opposite:{w}/{v}"
    # One word swapped for another of the same form (bigger/smaller, quickly/slowly):
    # comparisons and manners, which flip answers more often than paraphrases use them.
    for suffix in _SWAPPED_FORMS:
        if any(w.endswith(suffix) for w in only_a) and any(v.endswith(suffix) for v in only_b):
            return f"swapped:-{suffix}"
    for x, y, sx, sy in _OPPOSITE_STEMS:
        if (sx in only_a and sy in only_b) or (sy in only_a and sx in only_b):
            return f"opposite:{x}/{y}"
    return None


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
