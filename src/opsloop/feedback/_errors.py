"""The feedback room's errors, each with its own stable code (listed in ``opsloop.errors``)."""

from __future__ import annotations

from opsloop.errors import Conflict, InvalidArgument

__all__ = [
    "AnnotationKeyConflict",
    "NothingToExport",
    "ScoreDefinitionConflict",
    "ScoreValueInvalid",
    "UnknownScore",
]


class UnknownScore(InvalidArgument):
    """An annotation or query names a score that was never defined (``define_score``)."""

    code = "UNKNOWN_SCORE"
    http_status = 400


class ScoreValueInvalid(InvalidArgument):
    """A value does not fit its score: wrong type, out of bounds, not one of the categories."""

    code = "SCORE_VALUE_INVALID"
    http_status = 400


class ScoreDefinitionConflict(Conflict):
    """A score is redefined with another kind, categories or bounds while annotations use it."""

    code = "SCORE_DEFINITION_CONFLICT"
    http_status = 409


class AnnotationKeyConflict(Conflict):
    """An upsert key already names an annotation of another target, score or author."""

    code = "ANNOTATION_KEY_CONFLICT"
    http_status = 409


class NothingToExport(InvalidArgument):
    """An export found no feedback that makes a training example."""

    code = "NOTHING_TO_EXPORT"
    http_status = 400
