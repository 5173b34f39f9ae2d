"""The tuning room's backend seam: the study registry, embedded or remote.

``TuningBackend`` is the Protocol of the study-registry operations;
``EmbeddedTuning`` serves them from the context's database
(``RemoteTuning`` in ``_remote.py`` over ``/api/v1/tuning``). Optuna's own
state goes to the study storage (``_storage``), which the client reaches directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opsloop.core import Context
from opsloop.tracking import tracking_service
from opsloop.tuning._service import TuningService
from opsloop.tuning.entities import StudyInfo, StudySummary

__all__ = ["EmbeddedTuning", "TuningBackend", "tuning_service"]


def tuning_service(ctx: Context) -> TuningService:
    """The tuning service on the context's database (one per context, see ``Context.room``)."""
    return TuningService(ctx.database, ctx.room(tracking_service))


class TuningBackend(Protocol):
    def register_study(
        self,
        name: str,
        *,
        experiment_id: str,
        directions: Sequence[str],
        objectives: Sequence[str],
        space: Mapping[str, Any],
        storage: str,
        user: str,
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[StudyInfo, bool]: ...

    def get_study(self, name: str) -> StudyInfo: ...

    def list_studies(self, experiment_id: str | None = None) -> list[StudyInfo]: ...

    def summary(self, name: str) -> StudySummary: ...

    def delete_study(self, name: str) -> None: ...


class EmbeddedTuning:
    def __init__(self, ctx: Context) -> None:
        self._svc = ctx.room(tuning_service)

    def register_study(
        self,
        name: str,
        *,
        experiment_id: str,
        directions: Sequence[str],
        objectives: Sequence[str],
        space: Mapping[str, Any],
        storage: str,
        user: str,
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[StudyInfo, bool]:
        return self._svc.register_study(
            name,
            experiment_id=experiment_id,
            directions=directions,
            objectives=objectives,
            space=dict(space),
            storage=storage,
            user=user,
            tags=tags,
        )

    def get_study(self, name: str) -> StudyInfo:
        return self._svc.get_study(name)

    def list_studies(self, experiment_id: str | None = None) -> list[StudyInfo]:
        return self._svc.list_studies(experiment_id)

    def summary(self, name: str) -> StudySummary:
        return self._svc.summary(name)

    def delete_study(self, name: str) -> None:
        self._svc.delete_study(name)
