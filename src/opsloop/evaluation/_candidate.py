"""What a candidate is once ready to run, shared by every kind (models, LLMs, pipelines)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTPUT_KEYS", "Candidate", "Outcome", "version_of"]

# Keys a pipeline's output dict is read from, in order, when it has several.
OUTPUT_KEYS = ("output", "answer", "text", "prediction", "result")


@dataclass
class Outcome:
    output: Any
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    extra: dict[str, Any] | None = None  # a pipeline's whole output, for metric inputs


@dataclass
class Candidate:
    """A candidate ready to run: ``spec`` names it in the run's params."""

    spec: str
    kind: str  # model | llm | provider | pipeline | callable
    run: Callable[[dict[str, Any]], Outcome]
    model_name: str | None = None
    model_version: int | None = None
    proba: Callable[[dict[str, Any]], Any] | None = None
    close: Callable[[], None] | None = None
    # The input names it accepts (a pipeline's declared inputs); None: any.
    inputs: list[str] | None = None
    # What the run records about it beyond ``spec``: params and tags.
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def version_of(model: Any) -> tuple[str, int | None, str | None]:
    mv = getattr(model, "version", None)
    if mv is not None:
        return f"models:/{mv.name}/{mv.version}", int(mv.version), str(mv.name)
    return str(getattr(model, "uri", "") or type(model).__name__), None, None
