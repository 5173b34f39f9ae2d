"""Guardrails: prompt injection, PII and secrets (checksums validated), a canary against
system-prompt leakage, banned patterns; on whole texts and on streams.

A stream is never held back whole: ``StreamGuard`` emits everything but a
short tail (64 characters, or the canary's length), and holds back further
only while a finding may still be growing at the cut. Any item of at most
that length is seen whole before any of it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsloop.gateway._answer_checks import check_schema, grounded_score
from opsloop.gateway._errors import GuardrailBlocked
from opsloop.gateway.entities import GuardSpec

__all__ = [
    "Finding",
    "StreamGuard",
    "check_whole_answer",
    "detect_injection",
    "find_pii",
    "find_secrets",
    "guard_input",
    "guard_output",
    "iban_valid",
    "luhn_valid",
    "redact",
]

HOLD = 64


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


# -- checksums -------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    ds = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(ds) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    s = re.sub(r"\s", "", text).upper()
    if not 15 <= len(s) <= 34 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s):
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


# -- detectors -------------------------------------------------------------------------

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_PHONE = re.compile(r"(?<![\w+])\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}\b")

_SECRETS: list[tuple[str, re.Pattern[str]]] = [
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ogw-)?[A-Za-z0-9_-]{20,}")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("stripe_key", re.compile(r"\b[rs]k_live_[0-9A-Za-z]{16,}")),
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("password_assignment", re.compile(r"(?i)\b(?:password|passwd|pwd)\s*[:=]\s*\S{6,}")),
]

_INJECTION: list[tuple[str, re.Pattern[str]]] = [
    (
        "ignore_instructions",
        re.compile(
            r"(?i)\b(?:ignore|disregard|forget|override|skip|bypass)\b[\w\s,'-]{0,40}?"
            r"\b(?:previous|prior|above|earlier|preceding|initial|original|system|all|your)\b"
            r"[\w\s'-]{0,30}?\b(?:instructions?|directions?|prompts?|rules?|directives?|"
            r"guidelines?|constraints?|context)\b"
        ),
    ),
    (
        "reveal_system_prompt",
        re.compile(
            r"(?i)\b(?:reveal|print|show|repeat|output|display|leak|tell me|give me|what (?:is|are))"
            r"\b[\w\s'-]{0,30}?\b(?:system|hidden|initial|secret|original)\s+"
            r"(?:prompt|instructions?|message|rules)"
        ),
    ),
    (
        "role_override",
        re.compile(
            r"(?i)\b(?:you are now|from now on,? you are|act as|pretend (?:to be|you are)|"
            r"roleplay as)\b[\w\s,'-]{0,40}?\b(?:DAN|unrestricted|unfiltered|jailbroken|"
            r"without (?:any )?(?:rules|restrictions|limits|filters|guidelines)|evil|developer mode)"
        ),
    ),
    ("dan", re.compile(r"(?i)\b(?:do anything now|DAN mode|developer mode enabled|jailbreak)\b")),
    (
        "no_restrictions",
        re.compile(
            r"(?i)\b(?:no|without|free of|ignore (?:your|all))\s+(?:any )?(?:ethical |safety |content )?"
            r"(?:restrictions|filters|guidelines|limitations|safeguards|policies)\b"
        ),
    ),
    (
        "fake_system_turn",
        re.compile(
            r"(?im)^\s*(?:#{1,3}\s*)?(?:system|assistant)\s*(?:message|prompt)?\s*:\s*\S"
            r"|<\|?(?:im_start|system|endoftext)\|?>|\[/?(?:INST|SYS)\]"
        ),
    ),
    (
        "new_instructions",
        re.compile(r"(?i)\b(?:new|updated|real|actual) (?:instructions|rules|task)\s*:"),
    ),
]


# How card numbers are written: one run of digits, or the issuers' groupings.
_CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2)}


def _card_like(text: str) -> bool:
    groups = tuple(len(g) for g in re.split(r"[ -]", text))
    return (len(groups) == 1 or groups in _CARD_GROUPS) and luhn_valid(text)


def find_pii(text: str) -> list[Finding]:
    out = [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    out += [
        Finding("card", m.start(), m.end()) for m in _CARD.finditer(text) if _card_like(m.group())
    ]
    out += [
        Finding("iban", m.start(), m.end()) for m in _IBAN.finditer(text) if iban_valid(m.group())
    ]
    out += [Finding("ssn", m.start(), m.end()) for m in _SSN.finditer(text)]
    out += [
        Finding("phone", m.start(), m.end())
        for m in _PHONE.finditer(text)
        if sum(c.isdigit() for c in m.group()) >= 8
    ]
    return out


def find_secrets(text: str) -> list[Finding]:
    return [Finding(k, m.start(), m.end()) for k, p in _SECRETS for m in p.finditer(text)]


def detect_injection(text: str) -> list[str]:
    """The names of the injection patterns ``text`` matches (empty: none)."""
    return [name for name, p in _INJECTION if p.search(text)]


def _banned(text: str, patterns: list[str]) -> list[Finding]:
    return [
        Finding("banned", m.start(), m.end())
        for p in patterns
        for m in re.finditer(p, text)
        if m.end() > m.start()
    ]


def redact(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding replaced by ``[REDACTED:<kind>]`` (overlaps merged)."""
    if not findings:
        return text
    spans = sorted(findings, key=lambda f: (f.start, -f.end))
    out, pos = [], 0
    for f in spans:
        if f.end <= pos:
            continue
        start = max(f.start, pos)
        out.append(text[pos:start])
        out.append(f"[REDACTED:{f.kind}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


@dataclass
class Verdict:
    """What the guards did to one text: its (maybe redacted) form and what they noted."""

    text: str
    flags: list[str] = field(default_factory=list)


def _apply(text: str, groups: Sequence[tuple[str, str, list[Finding]]], side: str) -> Verdict:
    flags: list[str] = []
    to_redact: list[Finding] = []
    for guard, action, findings in groups:
        if not findings or action == "off":
            continue
        kinds = sorted({f.kind for f in findings})
        if action == "block":
            raise GuardrailBlocked(
                f"the {side} was blocked by the {guard} guard ({', '.join(kinds)})",
                details={"guard": guard, "side": side, "found": kinds},
            )
        flags.append(f"{side}.{guard}:{action}:{','.join(kinds)}")
        if action == "redact":
            to_redact += findings
    return Verdict(redact(text, to_redact), flags)


def guard_input(text: str, spec: GuardSpec) -> Verdict:
    """Check one input text against the route's input guards (raises ``GuardrailBlocked``)."""
    flags: list[str] = []
    if spec.injection != "off":
        hits = detect_injection(text)
        if hits and spec.injection == "block":
            raise GuardrailBlocked(
                f"the input was blocked by the injection guard ({', '.join(hits)})",
                details={"guard": "injection", "side": "input", "found": hits},
            )
        if hits:
            flags.append(f"input.injection:flag:{','.join(hits)}")
    groups = [
        ("pii", spec.pii, find_pii(text) if spec.pii != "off" else []),
        ("secrets", spec.secrets, find_secrets(text) if spec.secrets != "off" else []),
        ("banned", spec.banned_action, _banned(text, spec.banned) if spec.banned else []),
    ]
    v = _apply(text, groups, "input")
    v.flags = flags + v.flags
    return v


def _output_groups(text: str, spec: GuardSpec) -> list[tuple[str, str, list[Finding]]]:
    canary = []
    if spec.canary:
        i = text.find(spec.canary)
        if i >= 0:
            canary = [Finding("canary", i, i + len(spec.canary))]
    return [
        ("canary", "block", canary),
        ("pii", spec.output_pii, find_pii(text) if spec.output_pii != "off" else []),
        (
            "secrets",
            spec.output_secrets,
            find_secrets(text) if spec.output_secrets != "off" else [],
        ),
        ("banned", spec.banned_action, _banned(text, spec.banned) if spec.banned else []),
    ]


def output_guarded(spec: GuardSpec) -> bool:
    return bool(
        spec.canary
        or spec.output_pii != "off"
        or spec.output_secrets != "off"
        or spec.banned
        or spec.output_schema is not None
        or spec.grounded != "off"
    )


def check_whole_answer(text: str, spec: GuardSpec, context: str) -> list[str]:
    """The route's whole-answer checks (JSON schema, groundedness): flags, or raises
    ``GuardrailBlocked`` for a check whose action is block."""
    flags: list[str] = []
    if spec.output_schema is not None:
        problem = check_schema(text, spec.output_schema)
        if problem is not None:
            if spec.schema_action == "block":
                raise GuardrailBlocked(
                    f"the answer was blocked by the schema guard: {problem}",
                    details={"guard": "schema", "side": "output", "problem": problem},
                )
            flags.append("output.schema:flag")
    if spec.grounded != "off":
        score, unsupported = grounded_score(text, context)
        if score < spec.min_grounded:
            if spec.grounded == "block":
                raise GuardrailBlocked(
                    f"the answer was blocked by the groundedness guard: {score:.2f} of its "
                    f"sentences are supported by the request's context (route minimum "
                    f"{spec.min_grounded:.2f})",
                    details={
                        "guard": "grounded",
                        "side": "output",
                        "score": round(score, 3),
                        "unsupported": unsupported[:5],
                    },
                )
            flags.append(f"output.grounded:flag:{score:.2f}")
    return flags


def input_guarded(spec: GuardSpec) -> bool:
    return bool(
        spec.injection != "off" or spec.pii != "off" or spec.secrets != "off" or spec.banned
    )


def guard_output(text: str, spec: GuardSpec, context: str = "") -> Verdict:
    v = _apply(text, _output_groups(text, spec), "output")
    v.flags += check_whole_answer(v.text, spec, context)
    return v


class StreamGuard:
    """Output guards over a stream of text pieces; emits all but a short tail as it goes."""

    def __init__(self, spec: GuardSpec, context: str = "") -> None:
        self.spec = spec
        self.context = context
        self.hold = max(HOLD, len(spec.canary or ""))
        self.buf = ""
        self.sent = ""  # the whole answer so far, for the whole-answer checks
        self.whole = spec.output_schema is not None or spec.grounded != "off"
        self.flags: list[str] = []

    def _drain(self, final: bool) -> str:
        text = self.buf
        groups = _output_groups(text, self.spec)
        # A blocking finding stops the stream as soon as it is seen, wherever it is.
        blocking = [(g, a, fs) for g, a, fs in groups if a == "block" and fs]
        if blocking:
            _apply(text, blocking, "output")
        cut = len(text) if final else max(0, len(text) - self.hold)
        if not final:
            for _, action, findings in groups:
                if action == "off":
                    continue
                for f in findings:
                    if f.start < cut < f.end + 1:  # may still grow: hold it back whole
                        cut = min(cut, f.start)
        head = text[:cut]
        inside = [(g, a, [f for f in fs if f.end <= cut]) for g, a, fs in groups]
        v = _apply(head, inside, "output")
        self.flags += [f for f in v.flags if f not in self.flags]
        self.buf = text[cut:]
        if self.whole:
            self.sent += v.text
            if final:
                found = check_whole_answer(self.sent, self.spec, self.context)
                self.flags += [f for f in found if f not in self.flags]
        return v.text

    def feed(self, piece: str) -> str:
        """Add ``piece``; the text safe to send now (raises ``GuardrailBlocked``)."""
        self.buf += piece
        return self._drain(False)

    def finish(self) -> str:
        return self._drain(True)
