"""PII masking: for training data made from feedback, logged predictions and traces.

``mask_pii(text)`` replaces e-mail addresses, payment card numbers (Luhn
checked, so order numbers and timestamps stay), IBANs, US social security
numbers, phone numbers and IPv4 addresses with a typed placeholder
(``[EMAIL]``, ``[CARD]``, ...). Idempotent: a placeholder never matches again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["mask_pii", "mask_pii_value"]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group()


_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4}")


def _phone(m: re.Match[str]) -> str:
    if _DATE.fullmatch(m.group()):
        return m.group()
    digits = re.sub(r"\D", "", m.group())
    return "[PHONE]" if 7 <= len(digits) <= 15 else m.group()


_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
        "[EMAIL]",
    ),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), "[IBAN]"),
    (re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _card),
    (re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), "[SSN]"),
    (
        re.compile(
            r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
        ),
        "[IP]",
    ),
    (
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w])"
        ),
        _phone,
    ),
]


def mask_pii(text: str) -> str:
    """``text`` with personal data replaced by placeholders."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def mask_pii_value(v: Any) -> Any:
    """``v`` with PII masked in every string inside it (values, not keys)."""
    if isinstance(v, str):
        return mask_pii(v)
    if isinstance(v, dict):
        return {k: mask_pii_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [mask_pii_value(x) for x in v]
    return v
