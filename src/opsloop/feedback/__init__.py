"""Feedback: scores declared once, annotations on traces, spans, sessions and served
predictions, traces searched by score, agreement between annotators, and feedback
exported as training data (see docs/feedback.md).

``import opsloop.feedback`` is cheap: the store loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.core import mask_pii
    from opsloop.feedback._agreement import cohen_kappa, krippendorff_alpha
    from opsloop.feedback._client import Feedback, score_filter
    from opsloop.feedback._errors import (
        AnnotationKeyConflict,
        NothingToExport,
        ScoreDefinitionConflict,
        ScoreValueInvalid,
        UnknownScore,
    )
    from opsloop.feedback._service import FeedbackService
    from opsloop.feedback.entities import (
        Agreement,
        Annotation,
        AnnotationQueue,
        AnnotatorProgress,
        ExportLink,
        ExportResult,
        JudgeAgreement,
        PairAgreement,
        QueueItem,
        QueueProgress,
        ScoreDefinition,
        TrainingData,
    )

__all__ = [
    "Agreement",
    "Annotation",
    "AnnotationKeyConflict",
    "AnnotationQueue",
    "AnnotatorProgress",
    "ExportLink",
    "ExportResult",
    "Feedback",
    "FeedbackService",
    "JudgeAgreement",
    "NothingToExport",
    "PairAgreement",
    "QueueItem",
    "QueueProgress",
    "ScoreDefinition",
    "ScoreDefinitionConflict",
    "ScoreValueInvalid",
    "TrainingData",
    "UnknownScore",
    "cohen_kappa",
    "krippendorff_alpha",
    "mask_pii",
    "score_filter",
]

_LAZY: dict[str, str] = {
    "cohen_kappa": "opsloop.feedback._agreement",
    "krippendorff_alpha": "opsloop.feedback._agreement",
    "Feedback": "opsloop.feedback._client",
    "score_filter": "opsloop.feedback._client",
    "FeedbackService": "opsloop.feedback._service",
    "mask_pii": "opsloop.core",
}
_LAZY.update(
    {
        n: "opsloop.feedback._errors"
        for n in (
            "AnnotationKeyConflict",
            "NothingToExport",
            "ScoreDefinitionConflict",
            "ScoreValueInvalid",
            "UnknownScore",
        )
    }
)
_LAZY.update(
    {
        n: "opsloop.feedback.entities"
        for n in (
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
            "TrainingData",
        )
    }
)


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
