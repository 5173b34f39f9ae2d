"""The fine-tuning room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from opsloop.finetune._service import FinetuneService

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.finetune.entities import FinetuneJob, JobSpec

__all__ = ["EmbeddedFinetune", "FinetuneBackend", "finetune_service"]


class FinetuneBackend(Protocol):
    """What the ``Finetune`` client needs, embedded or over HTTP."""

    def submit(self, spec: JobSpec | dict[str, Any], *, start: bool = True) -> FinetuneJob: ...

    def get(self, job_id: str) -> FinetuneJob: ...

    def list(
        self, *, state: str | None = None, output_model: str | None = None, limit: int = 200
    ) -> list[FinetuneJob]: ...

    def cancel(self, job_id: str) -> FinetuneJob: ...

    def resume(self, job_id: str, *, start: bool = True) -> FinetuneJob: ...


def finetune_service(ctx: Context) -> FinetuneService:
    """The context's ``FinetuneService`` (embedded; one per context, so it keeps its workers)."""
    return FinetuneService(ctx)


def EmbeddedFinetune(ctx: Context) -> FinetuneBackend:
    """The fine-tuning backend over the context's database: its one service."""
    return ctx.room(finetune_service)
