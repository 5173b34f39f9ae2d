"""The semantic cache's second test: do two look-alike requests ask for different answers?

MiniLM puts "enable 2FA" and "disable 2FA" at 0.95, closer than most
paraphrases, and it puts single opposite words as close as synonyms or closer
("widen"/"narrow" 0.75, "book"/"reserve" 0.28 on the tuning pairs), so no
similarity threshold, on the texts or on the words that differ, separates
them. :func:`meaning_differs` reads the two texts instead and refuses a pair
whose difference is of a kind that flips answers:

- ``number``: the numbers differ (digits, and number words up to twenty);
- ``name``: the names differ (capitalised words not at a sentence's start,
  words with a capital inside such as iPhone or 2FA);
- ``negation``: the parity of the negations differs (not, never, without, ...);
- ``opposite:x/y``: a word and its negating prefix (lock/unlock,
  legal/illegal), or a word of a known opposite pair (buy/sell, up/down);
- ``order:x/y``: the same words in other roles ("Celsius to Fahrenheit" /
  "Fahrenheit to Celsius");
- ``changed:x/y``: the contrast check. After stop words, stems, a few
  phrasal verbs and synonym groups are folded, the content words that only
  one text has are what the other text replaced; when both texts have such
  words and there are at most :data:`MAX_CHANGED` on each side, the request
  is a small edit of the other and is refused, whatever the words are (two
  words swapped for their other forms count too: "tighten a loose bolt" /
  "loosen a tight bolt"). An antonym list is never complete (safe/dangerous,
  hire/fire, rising/dropping were all missed by one); a swapped content word
  is what an opposite request looks like, and what a paraphrase mostly does
  not (a paraphrase rewrites more, or only adds and drops function words).
  Its cost is the paraphrases that swap a word for a synonym the groups do
  not know ("fix"/"mend"): they miss the cache.

Every list here and :data:`MAX_CHANGED` were tuned on the tuning split
(``data/cache_pairs_tune.jsonl``) only; ``benchmarks/gateway_cache.py``
chooses MAX_CHANGED and the threshold there and measures them on the
held-out split, which nothing here was written against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsloop.gateway._words import STOP_WORDS, stem

__all__ = ["MAX_CHANGED", "meaning_differs"]

# A pair with at most this many swapped content words on each side is a small edit; chosen
# by benchmarks/gateway_cache.py on the tuning split.
MAX_CHANGED = 3

_NEGATION_WORDS = (
    "not no non never none nothing nobody nowhere neither nor without cannot forbid forbidden "
    "prohibit prohibited lack lacks lacking miss missed missing fail fails failed refuse "
    "refused absent avoid skip omit stop stops stopped stopping"
)
_NEGATIONS = frozenset(_NEGATION_WORDS.split())
_OPPOSITES = [
    ("enable", "disable"), ("increase", "decrease"), ("add", "remove"), ("encrypt", "decrypt"),
    ("buy", "sell"), ("upload", "download"), ("allow", "block"), ("allow", "deny"),
    ("allow", "forbid"), ("start", "stop"), ("high", "low"), ("higher", "lower"),
    ("highest", "lowest"), ("ascend", "descend"), ("import", "export"), ("open", "close"),
    ("raise", "lower"), ("rise", "fall"), ("show", "hide"), ("accept", "reject"),
    ("on", "off"), ("include", "exclude"), ("up", "down"), ("grant", "revoke"),
    ("maximum", "minimum"), ("max", "min"), ("merge", "split"), ("for", "against"),
    ("before", "after"), ("with", "without"), ("pass", "fail"), ("win", "lose"),
    ("true", "false"), ("first", "last"), ("left", "right"), ("above", "below"),
    ("more", "less"), ("most", "least"), ("push", "pull"), ("send", "receive"),
    ("login", "logout"), ("success", "failure"), ("public", "private"), ("inbound", "outbound"),
    ("early", "late"), ("earliest", "latest"), ("oldest", "newest"), ("old", "new"),
    ("hot", "cold"), ("fast", "slow"), ("in", "out"), ("plus", "minus"), ("asc", "desc"),
    ("over", "under"), ("add", "delete"), ("approve", "reject"), ("permit", "deny"),
    ("guilty", "innocent"), ("cheap", "expensive"), ("light", "dark"), ("give", "take"),
    ("ahead", "behind"), ("on", "behind"),
]  # fmt: skip
# Phrasal verbs read as one word, and words a paraphrase swaps for one another (each group
# folded to its first word), both compared on stems. Only pairs seen swapped in the tuning
# split's paraphrases.
_PHRASE_WORDS = {
    "turn on": "enable", "switch on": "enable", "turn off": "disable", "switch off": "disable",
    "set up": "configure", "go up": "rise", "go down": "fall", "hook up": "attach",
    "log in": "login", "sign in": "login", "log out": "logout", "sign out": "logout",
    "sign up": "subscribe", "leave out": "exclude", "take away": "remove", "get rid": "remove",
    "close to": "near", "people live": "population",
}  # fmt: skip
_SYNONYM_GROUPS = (
    "enable activate",
    "book reserve",
    "write compose wrote author",
    "send forward",
    "resize scale",
    "allow permit",
    "advantage benefit",
    "recommend suggest",
    "cost price",
    "print output",
    "split divide",
    "configure setup",
    "fix repair",
    "find search",
    "limit restrict",
    "elevator lift",
    "remove delete",
    "holiday vacation",
    "often frequently",
    "gift present",
    "thaw defrost",
    "tall height",
    "earliest first",
    "differ difference compare",
)


def _stems(words: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words.split())


_PHRASES = {_stems(k): stem(v) for k, v in _PHRASE_WORDS.items()}
_SYNONYMS = {stem(w): stem(g.split()[0]) for g in _SYNONYM_GROUPS for w in g.split()}
# Words that carry no request of their own: asking, politeness, quantifiers.
_LIGHT_WORDS = (
    "please can could would make get give tell let help way steps step me know want need "
    "much many every among between set describe explain like look"
)
_LIGHT = frozenset(_LIGHT_WORDS.split())
# Words whose next content word is a direction: "convert Celsius to Fahrenheit".
_DIRECTED_WORDS = "to from into than over versus vs"
_DIRECTED = frozenset(_DIRECTED_WORDS.split())
_PREFIXES = ("un", "non", "dis", "in", "im", "il", "ir", "de", "anti", "counter", "mis")
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_SMALL_NUMBERS = {w: str(i) for i, w in enumerate(_NUMBER_WORDS.split())}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:[.,:/]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_OPPOSITE_STEMS = [(a, b, stem(a), stem(b)) for a, b in _OPPOSITES]


@dataclass(frozen=True)
class _Features:
    words: frozenset[str]  # stems of every word, function words included
    content: frozenset[str]  # stems of the content words, phrases and synonyms folded
    directed: frozenset[tuple[str, str]]  # (to, fahrenheit): a direction and its content word
    numbers: frozenset[str]
    names: frozenset[str]
    negations: int


def _features(text: str) -> _Features:
    text = text.replace("\u2019", "'").replace("n't", " not")
    lows: list[str] = []
    numbers: set[str] = set()
    names: set[str] = set()
    for m in _TOKEN.finditer(text):
        tok = re.sub(r"'s$", "", m.group())
        low = tok.lower()
        if _NUMBER.fullmatch(tok) or low in _SMALL_NUMBERS:
            numbers.add(_SMALL_NUMBERS.get(low, tok.replace(",", "")))
            continue
        lows.append(low)
        # A name: a capitalised word that does not start a sentence (or a line, or what
        # follows a colon), or a word with a capital inside (iPhone, GitHub, 2FA).
        before = text[: m.start()].rstrip()
        starts = not before or before[-1] in '.?!:\n"\u201c('
        if low != "i" and (any(c.isupper() for c in tok[1:]) or (tok[0].isupper() and not starts)):
            names.add(low)
    stems = [stem(w) for w in lows]
    content: list[str] = []
    directed: set[tuple[str, str]] = set()
    pending: str | None = None  # the last direction word, waiting for its content word
    i = 0
    while i < len(lows):
        w, folded = lows[i], _PHRASES.get(tuple(stems[i : i + 2]))
        i += 2 if folded else 1
        if folded is None:
            if w in _DIRECTED:
                pending = w
            if w in STOP_WORDS or w in _LIGHT or w in _NEGATIONS or len(w) < 2:
                continue
            folded = _SYNONYMS.get(stems[i - 1], stems[i - 1])
        content.append(folded)
        if pending is not None:
            directed.add((pending, folded))
            pending = None
    return _Features(
        frozenset(stems),
        frozenset(content),
        frozenset(directed),
        frozenset(numbers),
        frozenset(names),
        sum(w in _NEGATIONS for w in lows),
    )


def _prefixed(w: str, v: str) -> bool:
    """Is one of the two the other with a negating prefix (lock/unlock, legal/illegal)?"""
    longer, shorter = (w, v) if len(w) > len(v) else (v, w)
    return len(shorter) >= 3 and any(longer == p + shorter for p in _PREFIXES)


def _inflected(w: str, v: str) -> bool:
    """Two forms of one word that the stemmer left apart (widen/wider, open/reopen): the same
    first four letters or more and at most two more letters on either, or a re- prefix."""
    if w == "re" + v or v == "re" + w:
        return True
    n = 0
    for x, y in zip(w, v, strict=False):
        if x != y:
            break
        n += 1
    return n >= 4 and len(w) - n <= 2 and len(v) - n <= 2


def meaning_differs(a: str, b: str, *, max_changed: int = MAX_CHANGED) -> str | None:
    """Why ``a`` and ``b`` may ask for different answers (``number``, ``name``, ``negation``,
    ``opposite:x/y``, ``order:x/y``, ``changed:x/y``), or None when nothing of those kinds
    differs. ``max_changed`` (0: no contrast check) is there for the benchmark's comparison."""
    fa, fb = _features(a), _features(b)
    if fa.numbers != fb.numbers:
        return "number"
    if fa.names != fb.names:
        return "name"
    if fa.negations % 2 != fb.negations % 2:
        return "negation"
    wa, wb = fa.words | fa.content, fb.words | fb.content  # phrases folded too: leave out
    only_a, only_b = wa - wb, wb - wa
    for w in only_a:
        for v in only_b:
            if _prefixed(w, v):
                return f"opposite:{w}/{v}"
    for x, y, sx, sy in _OPPOSITE_STEMS:
        if (sx in only_a and sy in only_b) or (sy in only_a and sx in only_b):
            return f"opposite:{x}/{y}"
    # The same words in other roles: "Celsius to Fahrenheit" / "Fahrenheit to Celsius".
    for d, x in fa.directed - fb.directed:
        for e, y in fb.directed - fa.directed:
            if d == e and x != y and x in fb.content and y in fa.content:
                return f"order:{x}/{y}"
    if max_changed <= 0:
        return None
    ca, cb = fa.content - fb.content, fb.content - fa.content
    pairs = [(w, v) for w in ca for v in cb if _inflected(w, v)]
    ca2 = sorted(ca - {w for w, _ in pairs})
    cb2 = sorted(cb - {v for _, v in pairs})
    if len(pairs) >= 2 and not ca2 and not cb2:  # tighten a loose bolt / loosen a tight bolt
        return f"changed:{','.join(w for w, _ in pairs)}/{','.join(v for _, v in pairs)}"
    if ca2 and cb2 and len(ca2) <= max_changed and len(cb2) <= max_changed:
        return f"changed:{','.join(ca2)}/{','.join(cb2)}"
    return None
