"""``Feedback(context)``: the feedback SDK, the same embedded or against a server."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets import Datasets
from opsloop.errors import InvalidArgument
from opsloop.feedback._backend import EmbeddedFeedback, FeedbackBackend
from opsloop.feedback._errors import NothingToExport
from opsloop.feedback._names import check_score_name
from opsloop.feedback._remote import RemoteFeedback
from opsloop.feedback.entities import (
    SOURCES,
    Agreement,
    Annotation,
    AnnotationQueue,
    ExportLink,
    ExportResult,
    QueueItem,
    QueueProgress,
    ScoreDefinition,
    TrainingData,
)
from opsloop.tracing import TracePage, Tracing

__all__ = ["Feedback", "score_filter"]


def _embedded(ctx: Context) -> FeedbackBackend:
    return EmbeddedFeedback(ctx)


def _remote(ctx: Context) -> FeedbackBackend:
    return RemoteFeedback(ctx)


def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return '"true"' if v else '"false"'
    if isinstance(v, int | float):
        return repr(float(v))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise InvalidArgument(f"cannot compare a score with {type(v).__name__}")


def score_filter(
    name: str,
    *,
    equals: Any = None,
    min: float | None = None,
    max: float | None = None,
    source: str | None = None,
    author: str | None = None,
    missing: bool = False,
) -> str:
    """The trace filter string for these score conditions (see ``opsloop.feedback`` docs)."""
    check_score_name(name)
    if source is not None and source not in SOURCES:
        raise InvalidArgument(f"source {source!r} is not one of {', '.join(SOURCES)}")
    field = f"score.{name}" + (f".{source}" if source else "")
    if missing:
        if any(v is not None for v in (equals, min, max, author)):
            raise InvalidArgument("missing=True takes no value, bound or author")
        return f"{field} is null"
    parts = []
    if equals is not None:
        parts.append(f"{field} = {_literal(equals)}")
    if min is not None:
        parts.append(f"{field} >= {_literal(min)}")
    if max is not None:
        parts.append(f"{field} <= {_literal(max)}")
    if author is not None:
        parts.append(f"score.{name}.author = {_literal(author)}")
    return " and ".join(parts) or f"{field} is not null"


class Feedback:
    """Score definitions, annotations (feedback) on traces, spans, sessions and served
    predictions, agreement between annotators, and training data made from feedback."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: FeedbackBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    # ------------------------------------------------------------------ scores

    def define_score(
        self,
        name: str,
        kind: str,
        *,
        categories: Iterable[str] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        description: str = "",
    ) -> ScoreDefinition:
        """Declare a score once: ``boolean``, ``categorical`` (``categories``), ``numeric``
        (optional ``min_value``/``max_value``) or ``text``. Defining it again with the same
        shape updates the description; another shape is refused once annotations use it."""
        return self._backend.define_score(
            name,
            kind,
            categories=categories,
            min_value=min_value,
            max_value=max_value,
            description=description,
            author=self._context.user,
        )

    def get_score(self, name: str) -> ScoreDefinition:
        return self._backend.get_score(name)

    def list_scores(self) -> builtins.list[ScoreDefinition]:
        """Defined scores, then the built-in ``thumbs``, ``comment``, ``correction``, ``preference``."""
        return self._backend.list_scores()

    def delete_score(self, name: str) -> None:
        self._backend.delete_score(name)

    # ------------------------------------------------------------------ annotations

    def annotate(
        self,
        name: str,
        value: Any,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        session_id: str | None = None,
        prediction_id: str | None = None,
        comment: str | None = None,
        correction: str | None = None,
        response_a: str | None = None,
        response_b: str | None = None,
        source: str = "human",
        author: str | None = None,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Annotation:
        """Record ``value`` of score ``name`` on one target (a trace; a span with
        ``trace_id`` and ``span_id``; a session; a served prediction's response id).

        One annotation per (target, score, author): annotating again replaces
        that author's value; other authors' stay. ``key`` is an upsert key:
        a retry with the same key updates the same annotation. ``author``
        defaults to the acting user; ``source`` is ``human``, ``llm_judge``
        or ``code``.
        """
        return self._backend.annotate(
            name,
            value,
            trace_id=trace_id,
            span_id=span_id,
            session_id=session_id,
            prediction_id=prediction_id,
            comment=comment,
            correction=correction,
            response_a=response_a,
            response_b=response_b,
            source=source,
            author=author or self._context.user,
            key=key,
            metadata=metadata,
        )

    def thumbs(self, up: bool, **target: Any) -> Annotation:
        """Thumbs up (``True``) or down on a target (``trace_id=...`` etc., as ``annotate``)."""
        return self.annotate("thumbs", bool(up), **target)

    def comment(self, text: str, **target: Any) -> Annotation:
        return self.annotate("comment", text, **target)

    def correct(self, text: str, **target: Any) -> Annotation:
        """A corrected answer for the target's response (training data for SFT)."""
        return self.annotate("correction", text, **target)

    def prefer(self, choice: str, response_a: str, response_b: str, **target: Any) -> Annotation:
        """Which of two responses is better: ``a``, ``b`` or ``tie``."""
        return self.annotate(
            "preference", choice, response_a=response_a, response_b=response_b, **target
        )

    def get_annotation(self, annotation_id: str) -> Annotation:
        return self._backend.get_annotation(annotation_id)

    def list(
        self,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        session_id: str | None = None,
        prediction_id: str | None = None,
        name: str | None = None,
        author: str | None = None,
        source: str | None = None,
        limit: int = 1000,
    ) -> builtins.list[Annotation]:
        """Annotations, oldest first (``trace_id``: with those on the trace's spans)."""
        return self._backend.list_annotations(
            trace_id=trace_id,
            span_id=span_id,
            session_id=session_id,
            prediction_id=prediction_id,
            name=name,
            author=author,
            source=source,
            limit=limit,
        )

    def delete_annotation(self, annotation_id: str) -> None:
        self._backend.delete_annotation(annotation_id)

    # ------------------------------------------------------------------ search

    def search_traces(
        self,
        name: str,
        *,
        equals: Any = None,
        min: float | None = None,
        max: float | None = None,
        source: str | None = None,
        author: str | None = None,
        missing: bool = False,
        filter: str | None = None,
        limit: int = 50,
        page_token: str | None = None,
    ) -> TracePage:
        """Traces by score: ``equals``, ``min``/``max``, from one ``source`` or ``author``, or
        ``missing`` the score; ``filter`` adds any trace filter. The same as
        ``client.tracing.list_traces(filter=score_filter(...))``."""
        text = score_filter(
            name, equals=equals, min=min, max=max, source=source, author=author, missing=missing
        )
        if filter:
            text = f"({text}) and ({filter})"
        return self._context.room(Tracing).list_traces(
            filter=text, limit=limit, page_token=page_token
        )

    # ------------------------------------------------------------------ agreement

    def agreement(self, name: str, *, source: str = "human") -> Agreement:
        """Krippendorff's alpha and pairwise Cohen's kappa between the annotators of
        ``source`` on score ``name``, and the LLM judge's agreement with them."""
        return self._backend.agreement(name, source=source)

    # ------------------------------------------------------------------ feedback becomes data

    def training_data(
        self, kind: str = "sft", *, accept: str = "thumbs", min_value: float | None = None
    ) -> TrainingData:
        """The rows ``export`` would write (PII-masked, deduplicated), without writing them."""
        return self._backend.training_data(kind, accept=accept, min_value=min_value)[0]

    def export(
        self,
        dataset: str,
        kind: str = "sft",
        *,
        accept: str = "thumbs",
        min_value: float | None = None,
        message: str = "",
    ) -> ExportResult:
        """Write feedback as a version of dataset ``dataset``: ``sft`` rows (prompt, response)
        or ``preference`` rows (prompt, chosen, rejected), each with the ``trace_ids`` and
        ``annotation_ids`` it came from; the links are also recorded (``exports``)."""
        data, links = self._backend.training_data(kind, accept=accept, min_value=min_value)
        if not data.rows:
            raise NothingToExport(
                f"no feedback makes a {kind} example (skipped {data.skipped} without a prompt "
                "or response)",
                details={"skipped": data.skipped},
            )
        version = self._context.room(Datasets).create(
            dataset,
            data.rows,
            message=message
            or f"feedback export ({kind}): {len(data.rows)} rows from {len(links)} annotations",
        )
        self._backend.record_export(version.id, kind, links)
        return ExportResult(
            kind=kind,  # type: ignore[arg-type]
            dataset_version_id=version.id,
            ref=version.ref,
            rows=len(data.rows),
            duplicates=data.duplicates,
            skipped=data.skipped,
            annotations=len(links),
            traces=len({t for _, t in links if t}),
        )

    def exports(
        self,
        *,
        dataset_version_id: str | None = None,
        annotation_id: str | None = None,
        trace_id: str | None = None,
    ) -> builtins.list[ExportLink]:
        """Lineage: the annotations and traces behind a dataset version, or the versions an
        annotation or trace went into."""
        return self._backend.exports(
            dataset_version_id=dataset_version_id, annotation_id=annotation_id, trace_id=trace_id
        )

    # ------------------------------------------------------------------ annotation queues

    def create_queue(
        self,
        name: str,
        *,
        filter: str,
        scores: Iterable[str],
        sample_ratio: float = 1.0,
        lock_ttl_s: int = 600,
        description: str = "",
    ) -> AnnotationQueue:
        """A queue whose rule is a trace ``filter`` (e.g. ``score.thumbs = "false"``) sampled at
        ``sample_ratio``; annotators give it ``scores``; a claimed item stays locked to its
        annotator for ``lock_ttl_s`` seconds. ``fill_queue`` applies the rule."""
        return self._backend.create_queue(
            name,
            filter=filter,
            scores=scores,
            sample_ratio=sample_ratio,
            lock_ttl_s=lock_ttl_s,
            description=description,
            author=self._context.user,
        )

    def get_queue(self, name: str) -> AnnotationQueue:
        return self._backend.get_queue(name)

    def list_queues(self) -> builtins.list[AnnotationQueue]:
        return self._backend.list_queues()

    def delete_queue(self, name: str) -> None:
        self._backend.delete_queue(name)

    def fill_queue(self, name: str, *, limit: int = 10_000) -> int:
        """Add the traces the rule picks (at most ``limit`` looked at); returns how many."""
        return self._backend.fill_queue(name, limit=limit)

    def assign(self, name: str, trace_ids: Iterable[str], assignee: str | None) -> int:
        """Give items to one annotator (None: to anyone)."""
        return self._backend.assign(name, trace_ids, assignee)

    def claim(self, name: str, annotator: str | None = None) -> QueueItem | None:
        """The annotator's next item, locked to them (the one they hold, if any); None: done."""
        return self._backend.claim(name, annotator or self._context.user)

    def complete_item(self, name: str, trace_id: str, annotator: str | None = None) -> QueueItem:
        return self._backend.complete_item(name, trace_id, annotator or self._context.user)

    def skip_item(self, name: str, trace_id: str, annotator: str | None = None) -> QueueItem:
        return self._backend.skip_item(name, trace_id, annotator or self._context.user)

    def queue_items(
        self, name: str, *, status: str | None = None, limit: int = 1000
    ) -> builtins.list[QueueItem]:
        return self._backend.queue_items(name, status=status, limit=limit)

    def queue_progress(self, name: str) -> QueueProgress:
        """Items pending, locked, done and skipped, and per annotator."""
        return self._backend.queue_progress(name)
