"""The feedback room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.feedback._service import FeedbackService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.feedback.entities import (
        Agreement,
        Annotation,
        AnnotationQueue,
        ExportLink,
        QueueItem,
        QueueProgress,
        ScoreDefinition,
        TrainingData,
    )

__all__ = ["EmbeddedFeedback", "FeedbackBackend", "feedback_service"]


class FeedbackBackend(Protocol):
    """What the ``Feedback`` client needs, embedded or over HTTP."""

    def define_score(
        self,
        name: str,
        kind: str,
        *,
        categories: Iterable[str] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        description: str = "",
        author: str,
    ) -> ScoreDefinition: ...

    def get_score(self, name: str) -> ScoreDefinition: ...

    def list_scores(self) -> list[ScoreDefinition]: ...

    def delete_score(self, name: str) -> None: ...

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
        author: str,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Annotation: ...

    def get_annotation(self, annotation_id: str) -> Annotation: ...

    def list_annotations(
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
    ) -> list[Annotation]: ...

    def delete_annotation(self, annotation_id: str) -> None: ...

    def agreement(self, name: str, *, source: str = "human") -> Agreement: ...

    def training_data(
        self,
        kind: str,
        *,
        accept: str = "thumbs",
        min_value: float | None = None,
        limit: int = 100_000,
    ) -> tuple[TrainingData, list[tuple[str, str | None]]]: ...

    def record_export(
        self, dataset_version_id: str, kind: str, links: Iterable[tuple[str, str | None]]
    ) -> list[ExportLink]: ...

    def exports(
        self,
        *,
        dataset_version_id: str | None = None,
        annotation_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[ExportLink]: ...

    def create_queue(
        self,
        name: str,
        *,
        filter: str,
        scores: Iterable[str],
        sample_ratio: float = 1.0,
        lock_ttl_s: int = 600,
        description: str = "",
        author: str,
    ) -> AnnotationQueue: ...

    def get_queue(self, name: str) -> AnnotationQueue: ...

    def list_queues(self) -> list[AnnotationQueue]: ...

    def delete_queue(self, name: str) -> None: ...

    def fill_queue(self, name: str, *, limit: int = 10_000) -> int: ...

    def assign(self, name: str, trace_ids: Iterable[str], assignee: str | None) -> int: ...

    def claim(self, name: str, annotator: str) -> QueueItem | None: ...

    def complete_item(self, name: str, trace_id: str, annotator: str) -> QueueItem: ...

    def skip_item(self, name: str, trace_id: str, annotator: str) -> QueueItem: ...

    def queue_items(
        self, name: str, *, status: str | None = None, limit: int = 1000
    ) -> list[QueueItem]: ...

    def queue_progress(self, name: str) -> QueueProgress: ...


def feedback_service(ctx: Context) -> FeedbackService:
    """The context's ``FeedbackService`` over its database (embedded)."""
    return FeedbackService(ctx.database)


class EmbeddedFeedback(FeedbackService):
    """The feedback backend over the context's database."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database)
