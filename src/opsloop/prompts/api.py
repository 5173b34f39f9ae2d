"""REST routes for prompts, under ``/api/v1/prompts``. Thin: parse, call the service, answer.

Who acts is taken from the ``X-Opsloop-User`` header (the SDK sends the
settings user or the OS user), else the server's own user.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from opsloop.core.web import Actor, ok, service
from opsloop.core.web import StrictBody as _Body
from opsloop.errors import InvalidArgument
from opsloop.prompts._backend import prompt_service
from opsloop.prompts._service import PromptService
from opsloop.prompts.entities import Prompt, PromptDiff, PromptLabel, PromptVersion

router = APIRouter(prefix="/prompts", tags=["prompts"])

Name = Annotated[str, Field(min_length=1, max_length=256)]
Ref = Annotated[str, Field(min_length=1, max_length=128)]


Svc = Annotated[PromptService, Depends(service(prompt_service))]


class CreateVersion(_Body):
    """A text template (a string) or a chat template (a list of ``{role, content}``)."""

    template: str | list[dict[str, str]]
    message: str = Field(default="", max_length=100_000)
    variables: list[str] | None = Field(default=None, max_length=1000)
    labels: list[str] = Field(default_factory=list, max_length=100)
    metadata: dict[str, Any] | None = None


class SetLabel(_Body):
    version: int = Field(ge=1, le=2**31 - 1)


class RenderBody(_Body):
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    label: str | None = Field(default=None, max_length=128)
    variables: dict[str, Any] = Field(default_factory=dict, max_length=1000)


@router.get("", summary="List prompts with their newest version and labels")
def list_prompts(
    svc: Svc,
    name_contains: Annotated[str | None, Query(max_length=256)] = None,
    max_results: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    return ok({"prompts": svc.list_prompts(name_contains=name_contains, max_results=max_results)})


@router.get("/{name}", response_model=Prompt, summary="A prompt: newest version and labels")
def get_prompt(name: Name, svc: Svc) -> Response:
    return ok(svc.get_prompt(name))


@router.get("/{name}/versions", summary="Every version of a prompt, newest first")
def list_versions(name: Name, svc: Svc) -> Response:
    return ok({"versions": svc.versions(name)})


@router.post(
    "/{name}/versions",
    response_model=PromptVersion,
    status_code=201,
    summary="Create a version (the prompt is created with its first version)",
)
def create_version(name: Name, body: CreateVersion, svc: Svc, actor: Actor) -> Response:
    pv = svc.create(
        name,
        body.template,
        message=body.message,
        variables=body.variables,
        labels=body.labels,
        metadata=body.metadata,
        actor=actor,
    )
    return ok(pv, 201)


@router.get(
    "/{name}/versions/{version}",
    response_model=PromptVersion,
    summary="A version by number, or 'latest'",
)
def get_version(name: Name, version: Ref, svc: Svc) -> Response:
    return ok(svc.get(name, version=version))


@router.get("/{name}/labels", summary="A prompt's labels")
def list_labels(name: Name, svc: Svc) -> Response:
    return ok({"labels": svc.labels(name)})


@router.get(
    "/{name}/labels/{label}",
    response_model=PromptVersion,
    summary="The version a label points at ('latest': the newest)",
)
def get_by_label(name: Name, label: Ref, svc: Svc) -> Response:
    return ok(svc.get(name, label=label))


@router.put(
    "/{name}/labels/{label}",
    response_model=PromptLabel,
    summary="Move a label to a version (atomically)",
)
def set_label(name: Name, label: Ref, body: SetLabel, svc: Svc, actor: Actor) -> Response:
    return ok(svc.set_label(name, label, body.version, actor=actor))


@router.delete("/{name}/labels/{label}", status_code=204, summary="Delete a label")
def delete_label(name: Name, label: Ref, svc: Svc, actor: Actor) -> Response:
    svc.delete_label(name, label, actor=actor)
    return Response(status_code=204)


@router.get(
    "/{name}/diff",
    response_model=PromptDiff,
    summary="What changed between two versions (numbers, labels or 'latest')",
)
def diff(
    name: Name,
    svc: Svc,
    a: Annotated[str, Query(min_length=1, max_length=128)],
    b: Annotated[str, Query(min_length=1, max_length=128)],
) -> Response:
    return ok(svc.diff(name, a, b))


@router.post(
    "/{name}/render",
    summary="Render a version (by number or label, default latest) with variables",
)
def render(name: Name, body: RenderBody, svc: Svc) -> Response:
    if body.version is not None and body.label is not None:
        raise InvalidArgument("give a version or a label, not both")
    pv, rendered = svc.render(name, body.variables, version=body.version, label=body.label)
    return ok({"name": pv.name, "version": pv.version, "kind": pv.kind, "rendered": rendered})
