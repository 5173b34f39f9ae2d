"""Masking: redact secrets and personal data from spans before they are stored or sent.

Two sources, applied in this order to every string inside a span's inputs,
outputs, attribute values, event attributes and error message:

- patterns from ``Settings.trace_mask_patterns`` (``OPSLOOP_TRACE_MASK_PATTERNS``):
  each entry is a built-in name (``email``, ``api_key``, ``bearer``,
  ``credit_card``, ``all``; ``pii``: e-mails, cards, IBANs, SSNs, phones and IP
  addresses as typed placeholders, ``opsloop.core.mask_pii``) or a regular
  expression whose matches become ``[REDACTED]``;
- a function set with ``set_masking(fn)`` (``fn(text) -> text``), for
  anything a regex cannot express.

The SDK masks a span when it ends, before it is queued for export, so a secret
never leaves the process; the server masks again on ingest with its own
settings, which covers OTLP data from applications that do not mask.
Masking is idempotent: a redaction marker never matches a pattern again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from opsloop.core import mask_pii
from opsloop.errors import InvalidArgument

MaskFn = Callable[[str], str]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group())
    # Long digit runs are everywhere (ids, timestamps); only Luhn-valid ones are cards.
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return "[REDACTED:credit_card]"
    return m.group()


BUILTIN: dict[str, tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = {
    "email": (
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        "[REDACTED:email]",
    ),
    "api_key": (
        re.compile(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic
            r"|AKIA[0-9A-Z]{16}"  # AWS access key id
            r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
            r"|xox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack
            r"|AIza[0-9A-Za-z_\-]{35}"  # Google API key
            r"|hf_[A-Za-z0-9]{30,})"  # Hugging Face
        ),
        "[REDACTED:api_key]",
    ),
    "bearer": (
        re.compile(r"(?i)\bbearer\s+(?!\[REDACTED)[A-Za-z0-9._~+/\-]{8,}=*"),
        "Bearer [REDACTED:token]",
    ),
    "credit_card": (re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
}


_WHOLE = re.compile(r"(?s).+")


def compile_patterns(
    patterns: Iterable[str],
) -> list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]]:
    """Built-in names and regexes turned into ``(pattern, replacement)`` pairs.

    Raises ``InvalidArgument`` naming the entry that is not a valid regex.
    """
    out: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = []
    for entry in patterns:
        if not isinstance(entry, str) or not entry:
            raise InvalidArgument(f"masking pattern must be a non-empty string, not {entry!r}")
        if entry == "all":
            out.extend(BUILTIN.values())
        elif entry == "pii":  # the whole string, through the shared PII masker
            out.append((_WHOLE, lambda m: mask_pii(m.group())))
        elif entry in BUILTIN:
            out.append(BUILTIN[entry])
        else:
            try:
                out.append((re.compile(entry), "[REDACTED]"))
            except re.error as exc:
                raise InvalidArgument(
                    f"masking pattern {entry!r} is not a valid regular expression: {exc}"
                ) from exc
    return out


class Masker:
    """Applies the configured patterns, then the hook, to every string in a value."""

    def __init__(self, patterns: Iterable[str] = (), fn: MaskFn | None = None) -> None:
        self._rules = compile_patterns(patterns)
        self._fn = fn

    def __bool__(self) -> bool:
        return bool(self._rules) or self._fn is not None

    def text(self, s: str) -> str:
        for pattern, repl in self._rules:
            s = pattern.sub(repl, s)
        if self._fn is not None:
            out = self._fn(s)
            if not isinstance(out, str):
                raise InvalidArgument(
                    f"the masking function must return a str, it returned {type(out).__name__}"
                )
            s = out
        return s

    def value(self, v: Any) -> Any:
        """``v`` with every string (values, not keys) masked; containers are copied."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [self.value(x) for x in v]
        return v


NO_MASK = Masker()
