"""Prompt types that cross the SDK and the REST API."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsloop.prompts._template import Template, compile_template

__all__ = ["MessageDiff", "Prompt", "PromptDiff", "PromptLabel", "PromptVersion"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@functools.lru_cache(maxsize=512)
def _compiled(key: str | tuple[tuple[str, str], ...]) -> Template:
    if isinstance(key, str):
        return compile_template(key)
    return compile_template([{"role": r, "content": c} for r, c in key])


class PromptVersion(_Model):
    """One immutable version of a prompt: its template, variables, commit message and labels.

    ``labels`` are the labels pointing at it when it was read; the newest
    version also carries ``latest``.
    """

    name: str
    version: int
    kind: str  # "text" | "chat"
    template: str | list[dict[str, str]]
    variables: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    message: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: int
    created_by: str = ""

    @property
    def uri(self) -> str:
        """``prompts:/NAME/VERSION``: this exact version."""
        return f"prompts:/{self.name}/{self.version}"

    def _template(self) -> Template:
        t = self.template
        return _compiled(t if isinstance(t, str) else tuple((m["role"], m["content"]) for m in t))

    def render(self, **variables: Any) -> str | list[dict[str, str]]:
        """The filled template: a string (text) or a list of messages (chat).

        Every declared variable must be given and no other (``PromptVariablesError``,
        code ``PROMPT_VARIABLES``, naming them). Non-string values are written
        with ``str()``; dicts and lists as JSON.
        """
        return self.render_from(variables)

    def render_from(
        self, variables: Mapping[str, Any], *, ignore_unknown: bool = False
    ) -> str | list[dict[str, str]]:
        """``render`` from a mapping; ``ignore_unknown=True`` skips extra keys (a dataset row)."""
        return self._template().render(
            variables,
            declared=self.variables,
            label=f"prompt {self.name!r} v{self.version}",
            ignore_unknown=ignore_unknown,
        )


class Prompt(_Model):
    """A prompt name with its newest version and its labels (``label -> version``)."""

    name: str
    description: str = ""
    latest_version: int | None = None
    version_count: int = 0
    labels: dict[str, int] = Field(default_factory=dict)
    created_at: int
    updated_at: int
    created_by: str = ""


class PromptLabel(_Model):
    name: str
    label: str
    version: int
    previous_version: int | None = None
    updated_at: int
    updated_by: str = ""


class MessageDiff(_Model):
    """One chat message between two versions: ``added``, ``removed``, ``changed`` or ``same``."""

    status: str
    index_a: int | None = None
    index_b: int | None = None
    role_a: str | None = None
    role_b: str | None = None
    diff: list[str] = Field(default_factory=list)  # unified diff lines of the content


class PromptDiff(_Model):
    """What changed from version ``a`` to version ``b`` of a prompt.

    ``template_diff`` holds unified-diff lines of the whole template (chat
    templates are written one ``[role]`` header plus content per message);
    ``messages`` compares chat templates message by message.
    """

    name: str
    a: int
    b: int
    identical: bool
    kind_a: str
    kind_b: str
    template_diff: list[str] = Field(default_factory=list)
    messages: list[MessageDiff] = Field(default_factory=list)
    variables_added: list[str] = Field(default_factory=list)
    variables_removed: list[str] = Field(default_factory=list)
    metadata_changed: dict[str, dict[str, Any]] = Field(default_factory=dict)  # key -> {a, b}
    message_a: str = ""
    message_b: str = ""
    text: str = ""  # the whole diff as readable text
