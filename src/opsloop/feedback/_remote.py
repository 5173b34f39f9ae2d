"""``RemoteFeedback``: the feedback backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteFeedback"]


def _q(s: str) -> str:
    return quote(s, safe="")


class RemoteFeedback:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

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
    ) -> ScoreDefinition:
        body = {
            "name": name,
            "kind": kind,
            "categories": None if categories is None else list(categories),
            "min_value": min_value,
            "max_value": max_value,
            "description": description,
            "author": author,
        }
        # Defining again with the same shape is a no-op: safe to retry.
        return ScoreDefinition.model_validate(self._t.put(f"/feedback/scores/{_q(name)}", body))

    def get_score(self, name: str) -> ScoreDefinition:
        return ScoreDefinition.model_validate(self._t.get(f"/feedback/scores/{_q(name)}"))

    def list_scores(self) -> list[ScoreDefinition]:
        data = self._t.get("/feedback/scores")
        return [ScoreDefinition.model_validate(d) for d in data["scores"]]

    def delete_score(self, name: str) -> None:
        self._t.delete(f"/feedback/scores/{_q(name)}")

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
    ) -> Annotation:
        body = {
            "name": name,
            "value": value,
            "trace_id": trace_id,
            "span_id": span_id,
            "session_id": session_id,
            "prediction_id": prediction_id,
            "comment": comment,
            "correction": correction,
            "response_a": response_a,
            "response_b": response_b,
            "source": source,
            "author": author,
            "key": key,
            "metadata": None if metadata is None else dict(metadata),
        }
        # One row per (target, score, author) and the upsert key: a retry updates, never duplicates.
        data = self._t.post("/feedback/annotations", body, idempotent=True)
        return Annotation.model_validate(data)

    def get_annotation(self, annotation_id: str) -> Annotation:
        return Annotation.model_validate(self._t.get(f"/feedback/annotations/{_q(annotation_id)}"))

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
    ) -> list[Annotation]:
        params: dict[str, Any] = {"limit": limit}
        for k, v in (
            ("trace_id", trace_id),
            ("span_id", span_id),
            ("session_id", session_id),
            ("prediction_id", prediction_id),
            ("name", name),
            ("author", author),
            ("source", source),
        ):
            if v is not None:
                params[k] = v
        data = self._t.get("/feedback/annotations", params)
        return [Annotation.model_validate(a) for a in data["annotations"]]

    def delete_annotation(self, annotation_id: str) -> None:
        self._t.delete(f"/feedback/annotations/{_q(annotation_id)}")

    def agreement(self, name: str, *, source: str = "human") -> Agreement:
        data = self._t.get(f"/feedback/scores/{_q(name)}/agreement", {"source": source})
        return Agreement.model_validate(data)

    def training_data(
        self,
        kind: str,
        *,
        accept: str = "thumbs",
        min_value: float | None = None,
        limit: int = 100_000,
    ) -> tuple[TrainingData, list[tuple[str, str | None]]]:
        body = {"kind": kind, "accept": accept, "min_value": min_value, "limit": limit}
        data = self._t.post("/feedback/training-data", body, idempotent=True)
        links = [(str(a), None if t is None else str(t)) for a, t in data["links"]]
        return TrainingData.model_validate(data["data"]), links

    def record_export(
        self, dataset_version_id: str, kind: str, links: Iterable[tuple[str, str | None]]
    ) -> list[ExportLink]:
        body = {
            "dataset_version_id": dataset_version_id,
            "kind": kind,
            "links": [[a, t] for a, t in links],
        }
        data = self._t.post("/feedback/exports", body, idempotent=True)
        return [ExportLink.model_validate(x) for x in data["exports"]]

    def exports(
        self,
        *,
        dataset_version_id: str | None = None,
        annotation_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[ExportLink]:
        params = {
            k: v
            for k, v in (
                ("dataset_version_id", dataset_version_id),
                ("annotation_id", annotation_id),
                ("trace_id", trace_id),
            )
            if v is not None
        }
        data = self._t.get("/feedback/exports", params)
        return [ExportLink.model_validate(x) for x in data["exports"]]

    # ------------------------------------------------------------------ queues

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
    ) -> AnnotationQueue:
        body = {
            "name": name,
            "filter": filter,
            "scores": list(scores),
            "sample_ratio": sample_ratio,
            "lock_ttl_s": lock_ttl_s,
            "description": description,
            "author": author,
        }
        return AnnotationQueue.model_validate(self._t.post("/feedback/queues", body))

    def get_queue(self, name: str) -> AnnotationQueue:
        return AnnotationQueue.model_validate(self._t.get(f"/feedback/queues/{_q(name)}"))

    def list_queues(self) -> list[AnnotationQueue]:
        return [
            AnnotationQueue.model_validate(q) for q in self._t.get("/feedback/queues")["queues"]
        ]

    def delete_queue(self, name: str) -> None:
        self._t.delete(f"/feedback/queues/{_q(name)}")

    def fill_queue(self, name: str, *, limit: int = 10_000) -> int:
        # Filling twice adds nothing the first did not: safe to retry.
        data = self._t.post(f"/feedback/queues/{_q(name)}/fill", {"limit": limit}, idempotent=True)
        return int(data["added"])

    def assign(self, name: str, trace_ids: Iterable[str], assignee: str | None) -> int:
        body = {"trace_ids": list(trace_ids), "assignee": assignee}
        data = self._t.post(f"/feedback/queues/{_q(name)}/assign", body, idempotent=True)
        return int(data["assigned"])

    def claim(self, name: str, annotator: str) -> QueueItem | None:
        # A retried claim returns the item the annotator already holds.
        data = self._t.post(
            f"/feedback/queues/{_q(name)}/claim", {"annotator": annotator}, idempotent=True
        )
        return None if data["item"] is None else QueueItem.model_validate(data["item"])

    def complete_item(self, name: str, trace_id: str, annotator: str) -> QueueItem:
        path = f"/feedback/queues/{_q(name)}/items/{_q(trace_id)}/complete"
        return QueueItem.model_validate(self._t.post(path, {"annotator": annotator}))

    def skip_item(self, name: str, trace_id: str, annotator: str) -> QueueItem:
        path = f"/feedback/queues/{_q(name)}/items/{_q(trace_id)}/skip"
        return QueueItem.model_validate(self._t.post(path, {"annotator": annotator}))

    def queue_items(
        self, name: str, *, status: str | None = None, limit: int = 1000
    ) -> list[QueueItem]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        data = self._t.get(f"/feedback/queues/{_q(name)}/items", params)
        return [QueueItem.model_validate(i) for i in data["items"]]

    def queue_progress(self, name: str) -> QueueProgress:
        return QueueProgress.model_validate(self._t.get(f"/feedback/queues/{_q(name)}/progress"))
