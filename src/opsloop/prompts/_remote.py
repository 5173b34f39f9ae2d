"""``RemotePrompts``: the prompts backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.prompts import _ref as R
from opsloop.prompts._service import check_metadata
from opsloop.prompts._template import check_declared, compile_template
from opsloop.prompts.entities import Prompt, PromptDiff, PromptLabel, PromptVersion

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemotePrompts"]


def _p(name: str) -> str:
    return "/prompts/" + quote(R.check_name(name), safe="")


def _label(label: str) -> str:
    return quote(R.check_label(label), safe="")


class RemotePrompts:
    """The prompt registry of a server (``/api/v1/prompts``), acting as the context's user."""

    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport
        self._source = str(ctx.settings.tracking_uri).rstrip("/")

    @property
    def source(self) -> str:
        return self._source

    def create(
        self,
        name: str,
        template: str | Sequence[Mapping[str, str]],
        *,
        message: str | None = None,
        variables: Sequence[str] | None = None,
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        # Checked here too, so errors read the same as embedded and JSON never
        # quietly turns a NaN into null on the way.
        tpl = compile_template(template)
        body = {
            "template": tpl.source,
            "message": message or "",
            "variables": check_declared(tpl, variables) if variables is not None else None,
            "labels": [R.check_label(x) for x in labels],
            "metadata": check_metadata(metadata) or None,
        }
        return PromptVersion.model_validate(
            self._t.post(f"{_p(name)}/versions", body, idempotent=False)
        )

    def set_label(self, name: str, label: str, version: int | str) -> PromptLabel:
        n = R.version_number(version)
        if n is None:
            n = self.get(name).version
        return PromptLabel.model_validate(
            self._t.put(f"{_p(name)}/labels/{_label(label)}", {"version": n})
        )

    def delete_label(self, name: str, label: str) -> None:
        self._t.delete(f"{_p(name)}/labels/{_label(label)}")

    def get(
        self, name: str, *, version: int | None = None, label: str | None = None
    ) -> PromptVersion:
        if version is not None:
            path = f"{_p(name)}/versions/{version}"
        else:
            path = f"{_p(name)}/labels/{quote(label or R.LATEST, safe='')}"
        return PromptVersion.model_validate(self._t.get(path))

    def versions(self, name: str) -> list[PromptVersion]:
        data = self._t.get(f"{_p(name)}/versions")
        return [PromptVersion.model_validate(v) for v in data["versions"]]

    def labels(self, name: str) -> list[PromptLabel]:
        data = self._t.get(f"{_p(name)}/labels")
        return [PromptLabel.model_validate(v) for v in data["labels"]]

    def get_prompt(self, name: str) -> Prompt:
        return Prompt.model_validate(self._t.get(_p(name)))

    def diff(self, name: str, a: int | str, b: int | str) -> PromptDiff:
        return PromptDiff.model_validate(
            self._t.get(f"{_p(name)}/diff", params={"a": str(a), "b": str(b)})
        )

    def list_prompts(
        self, *, name_contains: str | None = None, max_results: int = 1000
    ) -> list[Prompt]:
        params: dict[str, Any] = {"max_results": max_results}
        if name_contains:
            params["name_contains"] = name_contains
        data = self._t.get("/prompts", params=params)
        return [Prompt.model_validate(p) for p in data["prompts"]]
