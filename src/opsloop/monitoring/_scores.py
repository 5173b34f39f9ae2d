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


def _prompts_of(tracing: Tracing, trace_id: str) -> list[str]:
    """The prompt versions a trace's spans name (``[""]`` when none does, or it is gone)."""
    try:
        t = tracing.get_trace(trace_id, flat=True)
    except NotFound:
        return [""]
    found = {
        _prompt_of(str(s.attributes[PROMPT_ATTRIBUTE]))
        for s in t.spans
        if s.attributes.get(PROMPT_ATTRIBUTE)
    }
    return sorted(found) or [""]


def _scored_traces(
    feedback: Feedback, name: str, source: str | None, since: int, until: int, limit: int
) -> dict[str, tuple[int, list[str]]]:
    """``{trace id: (start ms, models)}`` of the traces started in the window that hold an
    annotation of ``name`` (one filtered listing, page by page)."""
    out: dict[str, tuple[int, list[str]]] = {}
    token: str | None = None
    window = f"start_time >= {int(since)} and start_time < {int(until)}"
    while len(out) < limit:
        page = feedback.search_traces(
            name, source=source, filter=window, limit=min(1000, limit), page_token=token
        )
        for t in page.traces:
            out[t.id] = (t.start_us // 1000, sorted(t.models) or [""])
        token = page.next_page_token
        if not token or not page.traces:
            break
    return out


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
    of score ``name`` (from ``source``, when given) and their mean, over at most ``limit``
    traces started in the window (listed by the trace filter ``score.NAME``), each with its
    annotations (and, when grouping by prompt, its spans) read once."""
    if bucket_s < 60 or bucket_s > 30 * 86_400:
        raise InvalidArgument("bucket_s must be between 60 and 2592000")
    groups = list(dict.fromkeys(by))
    if not set(groups) <= set(GROUPS):
        raise InvalidArgument(f"by must name some of {', '.join(GROUPS)}")
    if not 1 <= limit <= 100_000:
        raise InvalidArgument("limit must be between 1 and 100000")
    feedback = Feedback(ctx)
    traces = _scored_traces(feedback, name, source, since, until, limit)
    if not traces:
        return []
    tracing = Tracing(ctx)
    acc: dict[tuple[int, str, str], list[float]] = {}
    for trace_id, (start, models) in traces.items():
        values = [
            float(a.value)
            for a in feedback.list(trace_id=trace_id, name=name, source=source, limit=10_000)
            if a.value is not None and not isinstance(a.value, str)
        ]
        if not values:
            continue
        bucket = start - start % (bucket_s * 1000)
        for p in _prompts_of(tracing, trace_id) if "prompt" in groups else [""]:
            for m in models if "model" in groups else [""]:
                cell = acc.setdefault((bucket, p, m), [0.0, 0.0])
                cell[0] += len(values)
                cell[1] += sum(values)
    out = []
    for (t, p, m), (n, total) in sorted(acc.items()):
        point: dict[str, Any] = {"t": t, "count": int(n), "mean": total / n}
        if "prompt" in groups:
            point["prompt"] = p or None
        if "model" in groups:
            point["model"] = m or None
        out.append(point)
    return out
