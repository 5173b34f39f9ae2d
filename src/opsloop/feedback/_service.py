"""Feedback over the database: score definitions, annotations, agreement, training data.

One transaction per public call. Every input is checked before anything is
written, so bad input raises a stable error code and leaves the store as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgument, NotFound, PayloadTooLarge
from opsloop.feedback import _training
from opsloop.feedback._agreement import summarise
from opsloop.feedback._errors import (
    AnnotationKeyConflict,
    ScoreDefinitionConflict,
    ScoreValueInvalid,
    UnknownScore,
)
from opsloop.feedback._names import check_score_name
from opsloop.feedback._queues import QueueOps
from opsloop.feedback._tables import annotations_t, feedback_exports, score_definitions
from opsloop.feedback._values import (
    BUILTIN_SCORES,
    DEFINABLE_KINDS,
    MAX_CATEGORIES,
    MAX_META_BYTES,
    annotation_of,
    bound_field,
    check_value,
    definition_of,
    opt_text_field,
    target_of,
    text_field,
)
from opsloop.feedback.entities import (
    SOURCES,
    Agreement,
    Annotation,
    ExportLink,
    ScoreDefinition,
    TrainingData,
)
from opsloop.store import Database, now_ms, upsert

__all__ = ["BUILTIN_SCORES", "DEFINABLE_KINDS", "FeedbackService", "check_score_name"]


class FeedbackService(QueueOps):
    """Scores, annotations, agreement, training data and annotation queues over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        author: str,
    ) -> ScoreDefinition:
        """Declare a score (again with the same shape: its description is updated)."""
        check_score_name(name)
        if name in BUILTIN_SCORES:
            raise InvalidArgument(f"{name!r} is a built-in score; pick another name")
        if kind not in DEFINABLE_KINDS:
            raise InvalidArgument(
                f"score kind {kind!r} is not one of {', '.join(DEFINABLE_KINDS)}",
                details={"field": "kind"},
            )
        cats: list[str] | None = None
        if kind == "categorical":
            cats = list(categories or [])
            if not cats or len(cats) > MAX_CATEGORIES:
                raise InvalidArgument(
                    f"a categorical score needs 1 to {MAX_CATEGORIES} categories",
                    details={"field": "categories"},
                )
            for c in cats:
                text_field(c, "category", 128)
            if len(set(cats)) != len(cats):
                raise InvalidArgument(
                    "categories must be distinct", details={"field": "categories"}
                )
        elif categories:
            raise InvalidArgument(
                "only a categorical score has categories", details={"field": "categories"}
            )
        lo, hi = bound_field(min_value, "min_value"), bound_field(max_value, "max_value")
        if kind != "numeric" and (lo is not None or hi is not None):
            raise InvalidArgument("only a numeric score has bounds", details={"field": "min_value"})
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgument(
                f"min_value {lo:g} is above max_value {hi:g}", details={"field": "min_value"}
            )
        if not isinstance(description, str) or len(description) > 10_000:
            raise InvalidArgument("description must be a string of at most 10000 characters")
        shape = {
            "kind": kind,
            "categories": orjson.dumps(cats).decode() if cats else None,
            "min_value": lo,
            "max_value": hi,
        }
        now = now_ms()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(score_definitions).where(score_definitions.c.name == name)
            ).first()
            if row is None:
                conn.execute(
                    score_definitions.insert().values(
                        name=name,
                        description=description,
                        created_at=now,
                        created_by=author,
                        updated_at=now,
                        **shape,
                    )
                )
            else:
                changed = any(getattr(row, k) != v for k, v in shape.items())
                if changed and self._used(conn, name):
                    raise ScoreDefinitionConflict(
                        f"score {name!r} is already defined with another shape and has annotations; "
                        "define a new score instead",
                        details={"score": name},
                    )
                conn.execute(
                    score_definitions.update()
                    .where(score_definitions.c.name == name)
                    .values(description=description, updated_at=now, **shape)
                )
            row = conn.execute(
                sa.select(score_definitions).where(score_definitions.c.name == name)
            ).one()
        return definition_of(row)

    @staticmethod
    def _used(conn: Connection, name: str) -> bool:
        return (
            conn.execute(
                sa.select(annotations_t.c.id).where(annotations_t.c.name == name).limit(1)
            ).first()
            is not None
        )

    def _definition(self, conn: Connection, name: str) -> ScoreDefinition:
        if name in BUILTIN_SCORES:
            return BUILTIN_SCORES[name]
        row = conn.execute(
            sa.select(score_definitions).where(score_definitions.c.name == name)
        ).first()
        if row is None:
            raise UnknownScore(
                f"score {name!r} is not defined; define it first (define_score / "
                "`opsloop feedback define`)",
                details={"score": name},
            )
        return definition_of(row)

    def get_score(self, name: str) -> ScoreDefinition:
        check_score_name(name)
        with self.db.read() as conn:
            try:
                return self._definition(conn, name)
            except UnknownScore:
                raise NotFound(f"score {name!r} is not defined") from None

    def list_scores(self) -> list[ScoreDefinition]:
        """Defined scores by name, then the built-in ones."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(score_definitions).order_by(score_definitions.c.name)
            ).all()
        return [definition_of(r) for r in rows] + list(BUILTIN_SCORES.values())

    def delete_score(self, name: str) -> None:
        """Remove a score definition that no annotation uses."""
        check_score_name(name)
        with self.db.write() as conn:
            if name in BUILTIN_SCORES:
                raise InvalidArgument(f"{name!r} is a built-in score")
            if self._used(conn, name):
                raise ScoreDefinitionConflict(
                    f"score {name!r} has annotations; delete them first", details={"score": name}
                )
            n = conn.execute(
                score_definitions.delete().where(score_definitions.c.name == name)
            ).rowcount
        if not n:
            raise NotFound(f"score {name!r} is not defined")

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
        author: str,
        key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Annotation:
        """Record one author's annotation (replacing that author's earlier one of this score
        on this target); a retry with the same ``key`` updates the same annotation."""
        check_score_name(name)
        target = target_of(trace_id, span_id, session_id, prediction_id)
        if source not in SOURCES:
            raise InvalidArgument(
                f"source {source!r} is not one of {', '.join(SOURCES)}", details={"field": "source"}
            )
        author = text_field(author, "author", 256)
        key = opt_text_field(key, "key", 256)
        comment = opt_text_field(comment, "comment")
        correction = opt_text_field(correction, "correction")
        response_a = opt_text_field(response_a, "response_a")
        response_b = opt_text_field(response_b, "response_b")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidArgument("metadata must be an object", details={"field": "metadata"})
        try:
            meta = orjson.dumps(dict(metadata)).decode() if metadata else None
        except TypeError as exc:
            raise InvalidArgument(
                f"metadata must be JSON: {exc}", details={"field": "metadata"}
            ) from None
        if meta is not None and "\\u0000" in meta:
            raise InvalidArgument("metadata holds a NUL character", details={"field": "metadata"})
        if meta is not None and len(meta) > MAX_META_BYTES:
            raise PayloadTooLarge(f"metadata is larger than {MAX_META_BYTES} bytes")
        with self.db.write() as conn:
            d = self._definition(conn, name)
            value_num, value_text = check_value(d, value)
            if d.kind == "preference" and (response_a is None or response_b is None):
                raise ScoreValueInvalid(
                    "a preference needs both responses (response_a and response_b)",
                    details={"score": name},
                )
            if name == "correction":
                correction = value_text
            natural = (target["target_kind"], target["target_id"], name, author)
            if key is not None:
                held = conn.execute(
                    sa.select(
                        annotations_t.c.target_kind,
                        annotations_t.c.target_id,
                        annotations_t.c.name,
                        annotations_t.c.author,
                    ).where(annotations_t.c.key == key)
                ).first()
                if held is not None and tuple(held) != natural:
                    raise AnnotationKeyConflict(
                        f"key {key!r} already names another annotation", details={"key": key}
                    )
            now = now_ms()
            values = {
                **target,
                "id": uuid.uuid4().hex,
                "key": key,
                "name": name,
                "kind": d.kind,
                "value_num": value_num,
                "value_text": value_text,
                "comment": comment,
                "correction": correction,
                "response_a": response_a,
                "response_b": response_b,
                "source": source,
                "author": author,
                "meta": meta,
                "created_at": now,
                "updated_at": now,
            }
            update = [
                "kind",
                "value_num",
                "value_text",
                "comment",
                "correction",
                "response_a",
                "response_b",
                "source",
                "meta",
                "updated_at",
            ] + (["key"] if key is not None else [])
            try:
                upsert(
                    conn,
                    annotations_t,
                    [values],
                    keys=["target_kind", "target_id", "name", "author"],
                    update=update,
                )
            except sa.exc.IntegrityError:
                # Only the key can clash here: another annotation took it concurrently.
                raise AnnotationKeyConflict(
                    f"key {key!r} already names another annotation", details={"key": key}
                ) from None
            row = conn.execute(
                sa.select(annotations_t).where(
                    annotations_t.c.target_kind == natural[0],
                    annotations_t.c.target_id == natural[1],
                    annotations_t.c.name == name,
                    annotations_t.c.author == author,
                )
            ).one()
        return annotation_of(row)

    def get_annotation(self, annotation_id: str) -> Annotation:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(annotations_t).where(annotations_t.c.id == annotation_id)
            ).first()
        if row is None:
            raise NotFound(f"annotation {annotation_id!r} not found")
        return annotation_of(row)

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
        """Annotations, oldest first; ``trace_id`` includes those on the trace's spans."""
        a = annotations_t.c
        q = sa.select(annotations_t)
        for col, v in (
            (a.trace_id, trace_id.lower() if trace_id else None),
            (a.span_id, span_id.lower() if span_id else None),
            (a.session_id, session_id),
            (a.prediction_id, prediction_id),
            (a.name, name),
            (a.author, author),
            (a.source, source),
        ):
            if v is not None:
                q = q.where(col == v)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidArgument("limit must be from 1 to 100000")
        with self.db.read() as conn:
            rows = conn.execute(q.order_by(a.created_at, a.id).limit(limit)).all()
        return [annotation_of(r) for r in rows]

    def delete_annotation(self, annotation_id: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(
                annotations_t.delete().where(annotations_t.c.id == annotation_id)
            ).rowcount
        if not n:
            raise NotFound(f"annotation {annotation_id!r} not found")

    # ------------------------------------------------------------------ agreement

    def agreement(self, name: str, *, source: str = "human") -> Agreement:
        """Agreement on score ``name`` between annotators of ``source`` (Krippendorff's alpha,
        pairwise Cohen's kappa) and, where an LLM judge scored the same items, between the
        judge and those annotators."""
        check_score_name(name)
        if source not in SOURCES:
            raise InvalidArgument(f"source {source!r} is not one of {', '.join(SOURCES)}")
        with self.db.read() as conn:
            d = self._definition(conn, name)
            rows = conn.execute(
                sa.select(
                    annotations_t.c.target_id,
                    annotations_t.c.author,
                    annotations_t.c.source,
                    annotations_t.c.kind,
                    annotations_t.c.value_num,
                    annotations_t.c.value_text,
                ).where(annotations_t.c.name == name)
            ).all()
        return summarise(name, d, rows, source)

    # ------------------------------------------------------------------ training data

    def training_data(
        self,
        kind: str,
        *,
        accept: str = "thumbs",
        min_value: float | None = None,
        limit: int = 100_000,
    ) -> tuple[TrainingData, list[tuple[str, str | None]]]:
        """Rows for fine-tuning made from feedback, PII-masked and deduplicated, and the
        ``(annotation_id, trace_id)`` of every annotation behind them; see ``_training``."""
        if kind not in ("sft", "preference"):
            raise InvalidArgument(f"export kind is sft or preference, not {kind!r}")
        check_score_name(accept)
        with self.db.read() as conn:
            accept_def = self._definition(conn, accept)
            if accept_def.kind not in ("boolean", "numeric"):
                raise InvalidArgument(f"accept score {accept!r} must be boolean or numeric")
            if accept_def.kind == "numeric" and min_value is None:
                raise InvalidArgument(f"accept score {accept!r} is numeric: give min_value")
            names = ["correction", "preference", accept]
            rows = conn.execute(
                sa.select(annotations_t)
                .where(
                    sa.or_(annotations_t.c.name.in_(names), annotations_t.c.correction.is_not(None))
                )
                .order_by(annotations_t.c.created_at, annotations_t.c.id)
                .limit(limit)
            ).all()
        anns = [annotation_of(r) for r in rows]
        return _training.build(self.db, kind, anns, accept=accept, min_value=min_value)

    def record_export(
        self, dataset_version_id: str, kind: str, links: Iterable[tuple[str, str | None]]
    ) -> list[ExportLink]:
        """Link a dataset version to the annotations (and traces) it was made from."""
        text_field(dataset_version_id, "dataset_version_id", 32)
        if kind not in ("sft", "preference"):
            raise InvalidArgument(f"export kind is sft or preference, not {kind!r}")
        now = now_ms()
        values = {
            aid: {
                "dataset_version_id": dataset_version_id,
                "annotation_id": text_field(aid, "annotation_id", 32),
                "trace_id": None if tid is None else target_of(tid, None, None, None)["trace_id"],
                "export_kind": kind,
                "created_at": now,
            }
            for aid, tid in links
        }
        with self.db.write() as conn:
            upsert(
                conn,
                feedback_exports,
                list(values.values()),
                keys=["dataset_version_id", "annotation_id"],
                update=["trace_id", "export_kind"],
            )
        return self.exports(dataset_version_id=dataset_version_id)

    def exports(
        self,
        *,
        dataset_version_id: str | None = None,
        annotation_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[ExportLink]:
        """Lineage: which annotations and traces went into which dataset versions."""
        e = feedback_exports.c
        q = sa.select(feedback_exports)
        for col, v in (
            (e.dataset_version_id, dataset_version_id),
            (e.annotation_id, annotation_id),
            (e.trace_id, trace_id),
        ):
            if v is not None:
                q = q.where(col == v)
        with self.db.read() as conn:
            rows = conn.execute(q.order_by(e.created_at, e.annotation_id)).all()
        return [ExportLink.model_validate(r._asdict()) for r in rows]
