"""Judge-score and feedback trends of an LLM app, per time bucket, prompt version and model.

The scores are the feedback room's annotations on traces (a human's thumbs,
an LLM judge's numeric grade, a code check); the trace says which prompt
version and which model answered: the ``opsloop.prompt.uri`` attribute a
pipeline's prompt step puts on its span (``prompts:/NAME/VERSION``; any span
may carry it, e.g. ``span.set_attribute(PROMPT_ATTRIBUTE, pv.uri)``) and the
models of its LLM spans. Each annotation of a boolean (1/0) or numeric score
counts once in every (bucket, prompt version, model) group its trace
belongs to; the bucket is the trace's start. Categorical and text scores have
no mean and are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument, NotFound
from opsloop.feedback import Feedback
from opsloop.tracing import Tracing

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["GROUPS", "PROMPT_ATTRIBUTE", "score_trends"]

PROMPT_ATTRIBUTE = "opsloop.prompt.uri"
GROUPS = ("prompt", "model")


def _prompt_of(uri: str) -> str:
    """``prompts:/qa/2`` -> ``qa@2`` (any other text as it is)."""
    if uri.startswith("prompts:/"):
        parts = uri[len("prompts:/") :].split("/")
        if len(parts) == 2 and parts[0] and parts[1]:
            return f"{parts[0]}@{parts[1]}"
    return uri


def _trace_facts(tracing: Tracing, trace_id: str) -> tuple[int, list[str], list[str]] | None:
    """``(start_ms, prompt versions, models)`` of a trace, or None when it is gone."""
    try:
        t = tracing.get_trace(trace_id, flat=True)
    except NotFound:
        return None
    prompts = sorted(
        {
            _prompt_of(str(s.attributes[PROMPT_ATTRIBUTE]))
            for s in t.spans
            if s.attributes.get(PROMPT_ATTRIBUTE)
        }
    )
    models = sorted(set(t.models) | {s.model for s in t.spans if s.model})
    return t.start_us // 1000, prompts or [""], models or [""]


def score_trends(
    ctx: Context,
    name: str,
    *,
    since: int,
    until: int,
    bucket_s: int = 3600,
    by: Sequence[str] = GROUPS,
    source: str | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Per bucket of trace start and per prompt version and/or model: how many annotations
    of score ``name`` (from ``source``, when given) and their mean."""
    if bucket_s < 60 or bucket_s > 30 * 86_400:
        raise InvalidArgument("bucket_s must be between 60 and 2592000")
    groups = list(dict.fromkeys(by))
    if not set(groups) <= set(GROUPS):
        raise InvalidArgument(f"by must name some of {', '.join(GROUPS)}")
    if not 1 <= limit <= 100_000:
        raise InvalidArgument("limit must be between 1 and 100000")
    annotations = Feedback(ctx).list(name=name, source=source, limit=limit)
    tracing = Tracing(ctx)
    facts: dict[str, tuple[int, list[str], list[str]] | None] = {}
    acc: dict[tuple[int, str, str], list[float]] = {}
    for a in annotations:
        v = a.value
        if a.trace_id is None or isinstance(v, str) or v is None:
            continue
        if a.trace_id not in facts:
            facts[a.trace_id] = _trace_facts(tracing, a.trace_id)
        fact = facts[a.trace_id]
        if fact is None or not since <= fact[0] < until:
            continue
        start, prompts, models = fact
        bucket = start - start % (bucket_s * 1000)
        for p in prompts if "prompt" in groups else [""]:
            for m in models if "model" in groups else [""]:
                cell = acc.setdefault((bucket, p, m), [0.0, 0.0])
                cell[0] += 1
                cell[1] += float(v)
    out = []
    for (t, p, m), (n, total) in sorted(acc.items()):
        point: dict[str, Any] = {"t": t, "count": int(n), "mean": total / n}
        if "prompt" in groups:
            point["prompt"] = p or None
        if "model" in groups:
            point["model"] = m or None
        out.append(point)
    return out
