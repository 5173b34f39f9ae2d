"""Steps from their YAML form: every step type by its ``type`` name, and ``step_from_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.pipelines._steps import LLMStep, ParseStep, PromptStep, Step, _invalid
from opsloop.pipelines._steps_agent import AgentStep, CiteStep
from opsloop.pipelines._steps_io import PythonStep, RetrieveStep, ToolStep

__all__ = ["step_from_dict", "step_types"]


def step_types() -> dict[str, type[Step]]:
    """Every step type by its YAML ``type`` name."""
    classes: list[type[Step]] = [
        PromptStep,
        LLMStep,
        ParseStep,
        RetrieveStep,
        ToolStep,
        AgentStep,
        PythonStep,
        CiteStep,
    ]
    return {c.type: c for c in classes}


def step_from_dict(d: Any, index: int) -> Step:
    """A step from its YAML form; ``PipelineInvalid`` naming the step and field."""
    if not isinstance(d, Mapping):
        raise PipelineInvalid(
            f"steps[{index}] must be an object with name and type", details={"step": index}
        )
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise PipelineInvalid(
            f"steps[{index}] needs a 'name'", details={"step": index, "field": "name"}
        )
    typ = d.get("type")
    cls = step_types().get(typ) if isinstance(typ, str) else None
    if cls is None:
        raise _invalid(
            name, "type", f"must be one of {', '.join(sorted(step_types()))}, got {typ!r}"
        )
    allowed = {"name", "type", "output_key", *cls.fields}
    extra = sorted(set(d) - allowed)
    if extra:
        raise _invalid(
            name, extra[0], f"is not a field of a {typ} step (fields: {', '.join(sorted(allowed))})"
        )
    kw = {k: v for k, v in d.items() if k not in ("name", "type")}
    if typ == "retrieve" and "index" not in kw:
        raise _invalid(name, "index", "is required for a retrieve step")
    if typ == "tool" and "tool" not in kw:
        raise _invalid(name, "tool", "is required for a tool step")
    if typ == "python" and "function" not in kw:
        raise _invalid(name, "function", "is required for a python step")
    try:
        return cls(name, **kw)
    except PipelineInvalid:
        raise
    except TypeError as exc:
        raise _invalid(name, "type", f"bad fields: {exc}") from None
    except InvalidArgument as exc:
        raise PipelineInvalid(f"step {name!r}: {exc.message}", details={"step": name}) from None
