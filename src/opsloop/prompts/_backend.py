"""The prompts room's seam: one typed Protocol, embedded or over HTTP.

``EmbeddedPrompts`` is the ``PromptService`` on the context's database, acting
as its user; ``RemotePrompts`` (``_remote.py``) calls ``/api/v1/prompts``
through the context's ``Transport``. The ``Prompts`` client picks one, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.prompts._service import PromptService
from opsloop.prompts.entities import Prompt, PromptDiff, PromptLabel, PromptVersion

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["EmbeddedPrompts", "PromptsBackend", "prompt_service"]


class PromptsBackend(Protocol):
    """What the ``Prompts`` client needs from storage, embedded or remote."""

    @property
    def source(self) -> str:
        """Where prompts come from (a database URL or a server URL): keys the disk cache."""
        ...

    def create(
        self,
        name: str,
        template: str | Sequence[Mapping[str, str]],
        *,
        message: str | None = None,
        variables: Sequence[str] | None = None,
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> PromptVersion: ...

    def set_label(self, name: str, label: str, version: int | str) -> PromptLabel: ...
    def delete_label(self, name: str, label: str) -> None: ...
    def get(
        self, name: str, *, version: int | None = None, label: str | None = None
    ) -> PromptVersion: ...
    def versions(self, name: str) -> list[PromptVersion]: ...
    def labels(self, name: str) -> list[PromptLabel]: ...
    def get_prompt(self, name: str) -> Prompt: ...
    def diff(self, name: str, a: int | str, b: int | str) -> PromptDiff: ...
    def list_prompts(
        self, *, name_contains: str | None = None, max_results: int = 1000
    ) -> list[Prompt]: ...


def prompt_service(ctx: Context) -> PromptService:
    """The context's ``PromptService`` over its database, acting as its user (embedded)."""
    return PromptService(ctx.database, default_actor=ctx.user)


class EmbeddedPrompts(PromptService):
    """``PromptService`` on the context's database, acting as the context's user."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx.database, default_actor=ctx.user)
        self._source = ctx.settings.resolved_database_url

    @property
    def source(self) -> str:
        return self._source
