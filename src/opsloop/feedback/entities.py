"""Feedback types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SOURCES",
    "Agreement",
    "Annotation",
    "AnnotationQueue",
    "AnnotatorProgress",
    "ExportLink",
    "ExportResult",
    "JudgeAgreement",
    "PairAgreement",
    "QueueItem",
    "QueueProgress",
    "ScoreDefinition",
    "ScoreKind",
    "Source",
    "TargetKind",
    "TrainingData",
]

ScoreKind = Literal["boolean", "categorical", "numeric", "text", "preference"]
Source = Literal["human", "llm_judge", "code"]
TargetKind = Literal["trace", "span", "session", "prediction"]
SOURCES: tuple[str, ...] = ("human", "llm_judge", "code")

Value = bool | float | str | None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreDefinition(_Model):
    """A score declared once: its kind and what values it takes.

    ``boolean``: true/false; ``categorical``: one of ``categories``;
    ``numeric``: a number within ``[min_value, max_value]`` (either bound may
    be open); ``text``: free text. The built-in scores (``thumbs``,
    ``comment``, ``correction``, ``preference``) need no definition.
    """

    name: str
    kind: ScoreKind
    categories: list[str] | None = None
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""
    builtin: bool = False
    created_at: int = 0
    created_by: str = ""
    updated_at: int = 0


class Annotation(_Model):
    """One author's feedback of one score on one target.

    The target is a trace (``trace_id``), a span (``trace_id`` and
    ``span_id``), a session (``session_id``) or a served prediction
    (``prediction_id``: the id a model server answered with). ``value`` is a
    bool, a number or a string by the score's kind; ``comment`` is an
    optional rationale, ``correction`` a corrected answer; a ``preference``
    has ``value`` ``a``, ``b`` or ``tie`` between ``response_a`` and
    ``response_b``.
    """

    id: str
    key: str | None = None
    target_kind: TargetKind
    target_id: str
    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    prediction_id: str | None = None
    name: str
    kind: ScoreKind
    value: Value = None
    comment: str | None = None
    correction: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    source: Source
    author: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: int
    updated_at: int


class PairAgreement(_Model):
    """Cohen's kappa between two annotators over the items both scored."""

    a: str
    b: str
    items: int
    kappa: float | None = Field(description="None when undefined (one label only, or no items).")
    agreement: float | None = Field(description="Share of common items with the same value.")


class JudgeAgreement(_Model):
    """An LLM judge against the humans, over the items both scored.

    The human value of an item is the humans' majority (boolean, categorical)
    or mean (numeric).
    """

    items: int
    kappa: float | None = Field(description="Cohen's kappa (boolean and categorical scores).")
    alpha: float | None = Field(description="Krippendorff's alpha between judge and humans.")
    agreement: float | None = Field(description="Share of items with the same value.")
    mean_abs_error: float | None = Field(None, description="Numeric scores only.")


class Agreement(_Model):
    """Inter-annotator agreement on one score, and the judge's agreement with humans."""

    score: str
    kind: ScoreKind
    level: Literal["nominal", "interval"]
    source: Source
    annotators: list[str]
    items: int = Field(description="Items scored by at least two annotators of ``source``.")
    alpha: float | None = Field(description="Krippendorff's alpha (None when undefined).")
    pairwise: list[PairAgreement]
    mean_kappa: float | None
    per_annotator: dict[str, int] = Field(description="Annotations of this score per annotator.")
    judge: JudgeAgreement | None = None


class ExportLink(_Model):
    """One annotation (and its trace) that went into a dataset version."""

    dataset_version_id: str
    annotation_id: str
    trace_id: str | None = None
    export_kind: Literal["sft", "preference"]
    created_at: int


class TrainingData(_Model):
    """Training rows made from feedback, before they become a dataset version."""

    kind: Literal["sft", "preference"]
    rows: list[dict[str, Any]]
    duplicates: int = Field(description="Rows dropped as duplicates of another (after masking).")
    skipped: int = Field(description="Feedback that made no row (no prompt or response found).")


class ExportResult(_Model):
    """A dataset version made from feedback."""

    kind: Literal["sft", "preference"]
    dataset_version_id: str
    ref: str
    rows: int
    duplicates: int
    skipped: int
    annotations: int
    traces: int


class AnnotationQueue(_Model):
    """A queue of traces to annotate, filled by a rule: a trace filter and a sampling ratio.

    ``scores`` are the scores an annotator gives each item; an item an annotator
    claims is locked to them for ``lock_ttl_s`` seconds (then anyone may claim it).
    """

    name: str
    filter: str
    sample_ratio: float
    scores: list[str]
    lock_ttl_s: int
    description: str = ""
    created_at: int
    created_by: str


class QueueItem(_Model):
    """One trace in a queue: ``pending`` (maybe locked by someone), ``done`` or ``skipped``."""

    queue: str
    trace_id: str
    status: Literal["pending", "done", "skipped"]
    assignee: str | None = None
    locked_by: str | None = None
    lock_expires_at: int | None = None
    completed_by: str | None = None
    completed_at: int | None = None
    added_at: int


class AnnotatorProgress(_Model):
    annotator: str
    done: int
    skipped: int
    locked: int


class QueueProgress(_Model):
    """How far a queue is: items by state, and per annotator."""

    queue: str
    total: int
    pending: int
    locked: int = Field(description="Pending items someone holds an unexpired lock on.")
    done: int
    skipped: int
    annotators: list[AnnotatorProgress]
