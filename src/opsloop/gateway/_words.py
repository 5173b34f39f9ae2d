"""Words for the gateway's lexical checks: one stemmer and one stop-word list, shared by
groundedness (``_answer_checks``) and the semantic cache's meaning check (``_semantic``).

The stemmer is crude on purpose (no dictionary, microseconds a word): it strips
one inflection (-ies, -ied, -able, -ible, -ing, -ed, -es, -s, -ly), then a doubled final
consonant and a final e, so that "raise", "raised", "raises" and "raising" all
give ``rais``, "stop" and "stopped" give ``stop``, and "pass" stays ``pass``.
It leaves -er and -est alone: comparatives are words of their own here.
"""

from __future__ import annotations

import re

__all__ = ["STOP_WORDS", "stem"]

_STOP = (
    "the a an and or but if then else of to in on at by for with from as is are was were be "
    "been being it its this that these those there here what which who whom whose when where "
    "why how do does did doing have has had having can could will would shall should may might "
    "must not no yes you your yours we our ours they their them he she his her him i me my "
    "about into over under than so such very just also only more most some any all each other "
    "out up down off again further once both few own same too s t don now"
)
STOP_WORDS = frozenset(_STOP.split())
_SUFFIXES = (
    ("ies", "y"), ("ied", "y"), ("able", ""), ("ible", ""), ("ing", ""), ("ed", ""), ("es", ""),
    ("s", ""), ("ly", ""),
)  # fmt: skip
_KEEP_DOUBLE = frozenset("lsz")
_VOWEL = re.compile("[aeiouy]")


def stem(word: str) -> str:
    """The crude stem of a lower-cased word (see the module's docstring)."""
    w = word.strip("'-")
    for suffix, repl in _SUFFIXES:
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            base = w[: -len(suffix)]
            if suffix in ("ing", "ed") and (base.endswith("e") or not _VOWEL.search(base)):
                break  # speed, need, string, bring: not an inflection
            if suffix in ("able", "ible") and len(base) < 4:
                break  # table, cable, bible
            w = base + repl
            if (
                len(w) > 3
                and w[-1] == w[-2]
                and w[-1] not in _KEEP_DOUBLE
                and suffix in ("ing", "ed")
            ):
                w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w
