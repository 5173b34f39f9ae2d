"""``RemoteTuning``: the tuning backend over ``/api/v1/tuning`` (see ``tuning.api``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.tuning.entities import StudyInfo, StudySummary

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteTuning"]


def _q(name: str) -> str:
    return quote(name, safe="")


class RemoteTuning:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

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
        body = {
            "name": name,
            "experiment_id": experiment_id,
            "directions": list(directions),
            "objectives": list(objectives),
            "space": dict(space),
            "storage": storage,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "user": user,
        }
        data = self._t.post("/tuning/studies", body)
        return StudyInfo.model_validate(data["study"]), bool(data["created"])

    def get_study(self, name: str) -> StudyInfo:
        return StudyInfo.model_validate(self._t.get(f"/tuning/studies/{_q(name)}"))

    def list_studies(self, experiment_id: str | None = None) -> list[StudyInfo]:
        params = {"experiment_id": experiment_id} if experiment_id else None
        data = self._t.get("/tuning/studies", params=params)
        return [StudyInfo.model_validate(s) for s in data["studies"]]

    def summary(self, name: str) -> StudySummary:
        return StudySummary.model_validate(self._t.get(f"/tuning/studies/{_q(name)}/summary"))

    def delete_study(self, name: str) -> None:
        self._t.delete(f"/tuning/studies/{_q(name)}")
