"""``RemoteFinetune``: the fine-tuning backend over HTTP against ``opsloop server``.

The server validates the job and starts its worker on the server's machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.finetune.entities import FinetuneJob, JobSpec

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteFinetune"]


class RemoteFinetune:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def _path(self, job_id: str, tail: str = "") -> str:
        return f"/finetune/jobs/{quote(job_id, safe='')}{tail}"

    def submit(self, spec: JobSpec | dict[str, Any], *, start: bool = True) -> FinetuneJob:
        body = (
            spec.model_dump(mode="json", exclude_none=True)
            if isinstance(spec, JobSpec)
            else dict(spec)
        )
        data = self._t.post("/finetune/jobs", {"spec": body, "start": start})
        return FinetuneJob.model_validate(data)

    def get(self, job_id: str) -> FinetuneJob:
        return FinetuneJob.model_validate(self._t.get(self._path(job_id)))

    def list(
        self, *, state: str | None = None, output_model: str | None = None, limit: int = 200
    ) -> list[FinetuneJob]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        if output_model:
            params["output_model"] = output_model
        data = self._t.get("/finetune/jobs", params)
        return [FinetuneJob.model_validate(j) for j in data["jobs"]]

    def cancel(self, job_id: str) -> FinetuneJob:
        return FinetuneJob.model_validate(self._t.post(self._path(job_id, "/cancel"), {}))

    def resume(self, job_id: str, *, start: bool = True) -> FinetuneJob:
        data = self._t.post(self._path(job_id, "/resume"), {"start": start})
        return FinetuneJob.model_validate(data)
