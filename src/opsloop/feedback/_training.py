"""Feedback becomes training rows: supervised fine-tuning and preference pairs.

The prompt and the model's response come from the annotated trace's root
span (a span's own inputs and outputs when the annotation targets a span),
or from the annotation's ``metadata`` (``prompt``, ``response``) when given.

- ``sft``: ``(prompt, response)``: a correction's text where an annotator
  corrected the answer, else the model's response where the trace was
  accepted (every ``accept`` annotation true, or at least ``min_value``).
- ``preference``: ``(prompt, chosen, rejected)``: a preference annotation's
  chosen and other response (ties skipped), and every correction against the
  response it corrected.

Every text is PII-masked; rows equal after masking are kept once, with the
lineage (``trace_ids``, ``annotation_ids``) of all of them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from opsloop.core import mask_pii
from opsloop.errors import NotFound
from opsloop.feedback.entities import Annotation, TrainingData
from opsloop.store import Database
from opsloop.tracing import SpanNode, TraceService

_PROMPT_KEYS = ("prompt", "question", "query", "input", "text", "message")
_RESPONSE_KEYS = ("response", "answer", "output", "text", "content", "completion", "result")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def prompt_of(inputs: Any) -> str | None:
    """The prompt in a span's inputs: a string, a known key, the last user message, or JSON."""
    if isinstance(inputs, dict):
        msgs = inputs.get("messages")
        if isinstance(msgs, list):
            users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
            if users:
                return _as_text(users[-1].get("content"))
        for k in _PROMPT_KEYS:
            if isinstance(inputs.get(k), str):
                return _as_text(inputs[k])
        args = inputs.get("args")
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], str):
            return _as_text(args[0])
    return _as_text(inputs)


def response_of(outputs: Any) -> str | None:
    """The response in a span's outputs: a string, a known key, the first choice, or JSON."""
    if isinstance(outputs, dict):
        choices = outputs.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            c = choices[0]
            msg = c.get("message")
            return _as_text(msg.get("content") if isinstance(msg, dict) else c.get("text"))
        for k in _RESPONSE_KEYS:
            if isinstance(outputs.get(k), str):
                return _as_text(outputs[k])
    return _as_text(outputs)


def _find(spans: list[SpanNode], span_id: str) -> SpanNode | None:
    for s in spans:
        if s.span_id == span_id:
            return s
        found = _find(s.children, span_id)
        if found is not None:
            return found
    return None


class _Exchanges:
    """(prompt, response) per trace or span, read once."""

    def __init__(self, db: Database) -> None:
        self.svc = TraceService(db)
        self.cache: dict[tuple[str, str | None], tuple[str | None, str | None]] = {}

    def get(self, a: Annotation) -> tuple[str | None, str | None]:
        prompt, response = _as_text(a.metadata.get("prompt")), _as_text(a.metadata.get("response"))
        if a.trace_id is not None and (prompt is None or response is None):
            key = (a.trace_id, a.span_id)
            if key not in self.cache:
                self.cache[key] = self._read(a.trace_id, a.span_id)
            p, r = self.cache[key]
            prompt, response = prompt or p, response or r
        return prompt, response

    def _read(self, trace_id: str, span_id: str | None) -> tuple[str | None, str | None]:
        try:
            detail = self.svc.get_trace(trace_id)
        except NotFound:
            return None, None
        node = (
            _find(detail.spans, span_id) if span_id else (detail.spans[0] if detail.spans else None)
        )
        if node is None:
            return None, None
        return prompt_of(node.inputs), response_of(node.outputs)


def _accepted(anns: list[Annotation], min_value: float | None) -> bool:
    if not anns:
        return False
    if min_value is None:
        return all(a.value is True for a in anns)
    return all(isinstance(a.value, float) and a.value >= min_value for a in anns)


def build(
    db: Database,
    kind: str,
    anns: list[Annotation],
    *,
    accept: str,
    min_value: float | None,
) -> tuple[TrainingData, list[tuple[str, str | None]]]:
    ex = _Exchanges(db)
    by_target: dict[str, list[Annotation]] = defaultdict(list)
    for a in anns:
        by_target[f"{a.target_kind}:{a.target_id}"].append(a)
    candidates: list[tuple[tuple[str, ...], list[Annotation]]] = []
    skipped = 0
    for group in by_target.values():
        corrections = [a for a in group if a.correction]
        if kind == "sft":
            if corrections:
                for a in corrections:
                    prompt, _ = ex.get(a)
                    if prompt is None:
                        skipped += 1
                        continue
                    candidates.append(((prompt, a.correction or "", "corrected"), [a]))
                continue
            acc = [a for a in group if a.name == accept and not a.correction]
            if not acc:
                continue
            prompt, response = ex.get(acc[0])
            if not _accepted(acc, min_value):
                continue
            if prompt is None or response is None:
                skipped += 1
                continue
            candidates.append(((prompt, response, "accepted"), acc))
            continue
        for a in group:
            if a.name == "preference":
                if a.value == "tie":
                    continue
                prompt, _ = ex.get(a)
                if prompt is None:
                    skipped += 1
                    continue
                chosen, rejected = (
                    (a.response_a, a.response_b) if a.value == "a" else (a.response_b, a.response_a)
                )
                candidates.append(((prompt, chosen or "", rejected or "", "preference"), [a]))
            elif a.correction:
                prompt, response = ex.get(a)
                if prompt is None or response is None:
                    skipped += 1
                    continue
                if response.strip() == a.correction.strip():
                    continue
                candidates.append(((prompt, a.correction, response, "corrected"), [a]))
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    links: dict[str, str | None] = {}
    duplicates = 0
    cols = ("prompt", "response") if kind == "sft" else ("prompt", "chosen", "rejected")
    for texts, sources in candidates:
        masked = tuple(mask_pii(t) for t in texts[:-1])
        for a in sources:
            links[a.id] = a.trace_id
        row = rows.get(masked)
        if row is None:
            rows[masked] = {
                **dict(zip(cols, masked, strict=True)),
                "origin": texts[-1],
                "trace_ids": sorted({a.trace_id for a in sources if a.trace_id}),
                "annotation_ids": sorted(a.id for a in sources),
            }
        else:
            duplicates += 1
            row["trace_ids"] = sorted(
                set(row["trace_ids"]) | {a.trace_id for a in sources if a.trace_id}
            )
            row["annotation_ids"] = sorted(set(row["annotation_ids"]) | {a.id for a in sources})
    data = TrainingData(kind=kind, rows=list(rows.values()), duplicates=duplicates, skipped=skipped)  # type: ignore[arg-type]
    return data, list(links.items())
