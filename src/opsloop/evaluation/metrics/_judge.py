"""LLM-as-judge: rubric prompts to any chat model, structured verdicts, retries on bad output.

A *judge model* is anything that answers chat messages with text: a callable
``(messages: list[dict]) -> str`` or an object with ``.chat(messages) -> str``
(the provider clients of ``opsloop.llm`` fit either shape). The judge's reply
must hold one JSON object; when it does not parse or does not validate, the
judge is asked again with the error spelled out, up to ``max_retries``
times, and then :class:`JudgeError` says what went wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opsloop.errors import InvalidArgument
from opsloop.errors import JudgeError as JudgeError  # moved to opsloop.errors; kept importable here
from opsloop.evaluation.metrics._registry import Metric, register_metric
from opsloop.llm import Provider

Message = dict[str, str]
T = TypeVar("T", bound=BaseModel)


@runtime_checkable
class ChatModel(Protocol):
    """An object that answers chat messages with text."""

    def chat(self, messages: list[Message], /) -> str: ...


JudgeModel = Callable[[list[Message]], str] | ChatModel


def call_model(
    model: Any, messages: list[Message], *, json_schema: dict[str, Any] | None = None
) -> str:
    """Send ``messages`` to a judge model and return its text.

    With ``json_schema``, an opsloop ``Provider`` answers under it
    (``response_format`` json_schema, strict): a local model by constrained
    decoding, so its reply always parses and validates; a provider or server that
    refuses the schema is asked again without it.
    """
    if json_schema is not None and isinstance(model, Provider):
        rf = {"type": "json_schema",
              "json_schema": {"name": "verdict", "schema": json_schema, "strict": True}}  # fmt: skip
        try:
            return str(model.chat(messages, response_format=rf).text)
        except InvalidArgument as exc:
            if (exc.details or {}).get("param") != "response_format":
                raise
    if isinstance(model, ChatModel):
        out = model.chat(messages)
    elif callable(model):
        out = model(messages)
    else:
        raise InvalidArgument("a judge model must be callable or have a .chat(messages) method")
    if not isinstance(out, str) and isinstance(getattr(out, "text", None), str):
        out = out.text  # an opsloop.llm Provider answers with a ChatResponse
    if not isinstance(out, str):
        raise InvalidArgument(f"the judge model returned {type(out).__name__}, expected str")
    return out


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON object in ``text`` (inside a code fence or bare); ``ValueError`` if none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("the reply holds no JSON object")


def _short(text: str, limit: int = 2000) -> str:
    return (
        text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"
    )


def ask_structured(
    model: Any,
    messages: list[Message],
    schema: type[T],
    *,
    max_retries: int = 2,
    example: str,
    context: dict[str, Any] | None = None,
    json_schema: dict[str, Any] | None = None,
) -> tuple[T, int]:
    """Ask until the reply parses into ``schema``; returns ``(value, attempts)``.

    ``json_schema``: the reply's JSON schema, enforced by an opsloop provider's
    constrained decoding (``call_model``); the validation and re-asking below
    stay for every other model.

    After a reply that is not a valid JSON object of ``schema``, the reply
    and the exact error go back to the model with a request for the JSON
    only (``example`` shows the expected shape). ``context`` reaches the
    schema's validators (``info.context``).
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidArgument(f"max_retries must be an integer >= 0, got {max_retries!r}")
    convo = list(messages)
    errors: list[str] = []
    reply = ""
    for attempt in range(1, max_retries + 2):
        reply = call_model(model, convo, json_schema=json_schema)
        try:
            return schema.model_validate(extract_json(reply), context=context), attempt
        except ValidationError as exc:
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()
            )
        except ValueError as exc:
            problem = str(exc)
        errors.append(problem)
        convo = [
            *convo,
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": (
                    f"Your reply could not be used: {problem}. Reply again with only one JSON "
                    f"object and no other text, shaped like this: {example}"
                ),
            },
        ]
    raise JudgeError(
        f"the judge gave no valid verdict in {max_retries + 1} attempts; last problem: {errors[-1]}",
        details={"attempts": max_retries + 1, "errors": errors, "last_reply": _short(reply)},
    )


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")

DEFAULT_SYSTEM = (
    "You are a strict, fair evaluator. You grade a response against the given criteria "
    "and answer with one JSON object only."
)
DEFAULT_TEMPLATE = """Grade the response below.

Criteria:
{{criteria}}

Score it from {{scale_min}} (worst) to {{scale_max}} (best).

Question or input:
{{input}}

Reference answer (may be empty):
{{reference}}

Context (may be empty):
{{context}}

Response to grade:
{{output}}

Answer with only this JSON object: {"score": <number from {{scale_min}} to {{scale_max}}>, "passed": <true or false>, "reasons": ["<short reason>", ...]}"""


class Rubric(BaseModel):
    """What the judge grades and how: criteria, a score scale and a prompt template.

    The template fills ``{{input}}``, ``{{output}}``, ``{{reference}}``,
    ``{{context}}``, ``{{criteria}}``, ``{{scale_min}}`` and ``{{scale_max}}``.
    ``pass_threshold``, when set, decides ``passed`` from the score; otherwise
    the judge's own ``passed`` counts (and the scale's midpoint if it gave none).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"input", "output", "reference", "context", "criteria", "scale_min", "scale_max"}
    )

    name: str = Field(min_length=1, max_length=100)
    criteria: list[str] = Field(min_length=1)
    scale_min: int = 1
    scale_max: int = 5
    pass_threshold: float | None = None
    template: str = DEFAULT_TEMPLATE
    system: str = DEFAULT_SYSTEM

    @field_validator("criteria", mode="before")
    @classmethod
    def _one_criterion(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        if self.scale_max <= self.scale_min:
            raise ValueError("scale_max must be greater than scale_min")
        if self.pass_threshold is not None and not (
            self.scale_min <= self.pass_threshold <= self.scale_max
        ):
            raise ValueError("pass_threshold must lie on the scale")
        unknown = set(_PLACEHOLDER.findall(self.template)) - self.FIELDS
        if unknown:
            raise ValueError(f"template uses unknown placeholders {sorted(unknown)}")
        if "{{output}}" not in self.template.replace(" ", ""):
            raise ValueError("template must include {{output}}, the response to grade")
        return self

    def messages(
        self,
        *,
        output: str,
        input: str = "",
        reference: str = "",
        context: str | Sequence[str] = "",
    ) -> list[Message]:
        """The chat messages asking for a verdict on ``output``."""
        ctx = context if isinstance(context, str) else "\n\n".join(context)
        values = {
            "input": input,
            "output": output,
            "reference": reference,
            "context": ctx,
            "criteria": "\n".join(f"- {c}" for c in self.criteria),
            "scale_min": str(self.scale_min),
            "scale_max": str(self.scale_max),
        }
        # one pass over the template, so text inside the values is never re-expanded
        body = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": body}]


class _RawVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    score: float = Field(allow_inf_nan=False)
    passed: bool | None = None
    reasons: list[str] = Field(validation_alias=AliasChoices("reasons", "reason"), min_length=1)

    @field_validator("reasons", mode="before")
    @classmethod
    def _one_reason(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _on_scale(self, info: ValidationInfo) -> _RawVerdict:
        ctx = info.context or {}
        lo, hi = ctx.get("scale_min"), ctx.get("scale_max")
        if lo is not None and hi is not None and not lo <= self.score <= hi:
            raise ValueError(f"score {self.score:g} is outside the scale {lo}..{hi}")
        return self


class Verdict(BaseModel):
    """A judge's validated verdict: ``score`` on the rubric's scale, ``normalized`` in [0, 1]."""

    rubric: str
    score: float
    normalized: float
    passed: bool
    reasons: list[str]
    attempts: int


def judge(
    model: Any,
    rubric: Rubric,
    *,
    output: str,
    input: str = "",
    reference: str = "",
    context: str | Sequence[str] = "",
    max_retries: int = 2,
) -> Verdict:
    """Ask ``model`` to grade ``output`` by ``rubric``; raises :class:`JudgeError` on no valid verdict."""
    if not isinstance(rubric, Rubric):
        raise InvalidArgument("rubric must be a Rubric")
    for key, value in (("output", output), ("input", input), ("reference", reference)):
        if not isinstance(value, str):
            raise InvalidArgument(f"{key} must be a string")
    if not output.strip():
        raise InvalidArgument("output is empty: there is nothing to grade")
    example = (
        f'{{"score": {rubric.scale_max}, "passed": true, "reasons": ["why the score was given"]}}'
    )
    raw, attempts = ask_structured(
        model,
        rubric.messages(output=output, input=input, reference=reference, context=context),
        _RawVerdict,
        max_retries=max_retries,
        example=example,
        context={"scale_min": rubric.scale_min, "scale_max": rubric.scale_max},
        json_schema={
            "type": "object",
            "properties": {
                "score": {
                    "type": "number",
                    "minimum": rubric.scale_min,
                    "maximum": rubric.scale_max,
                },
                "passed": {"type": "boolean"},
                "reasons": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 300},
                    "minItems": 1,
                    "maxItems": 3,
                },
            },
            "required": ["score", "passed", "reasons"],
            "additionalProperties": False,
        },
    )
    span = rubric.scale_max - rubric.scale_min
    if rubric.pass_threshold is not None:
        passed = raw.score >= rubric.pass_threshold
    elif raw.passed is not None:
        passed = raw.passed
    else:
        passed = raw.score >= rubric.scale_min + span / 2
    return Verdict(
        rubric=rubric.name,
        score=raw.score,
        normalized=(raw.score - rubric.scale_min) / span,
        passed=passed,
        reasons=raw.reasons,
        attempts=attempts,
    )


def judge_metric(
    model: Any,
    rubric: Rubric,
    *,
    name: str | None = None,
    max_retries: int = 2,
    register: bool = False,
) -> Any:
    """A per-example :class:`~opsloop.evaluation.metrics.Metric` scoring outputs with ``model``.

    Each example's value is the verdict's ``normalized`` score (0-1);
    optional per-example inputs ``input`` and ``context`` reach the prompt,
    and ``references`` (if given) fill ``{{reference}}``.
    """
    if not isinstance(rubric, Rubric):
        raise InvalidArgument("rubric must be a Rubric")

    def score(prediction: str, reference: Any, *, input: str = "", context: Any = "") -> float:
        return judge(
            model,
            rubric,
            output=prediction,
            input=input,
            reference=reference or "",
            context=context,
            max_retries=max_retries,
        ).normalized

    m = Metric(
        name=name or f"judge_{rubric.name}",
        fn=score,
        greater_is_better=True,
        aggregate="mean",
        kind="judge",
        range=(0.0, 1.0),
        inputs=("predictions",),
        description=f"LLM judge by rubric {rubric.name!r}: " + "; ".join(rubric.criteria),
    )
    return register_metric(m) if register else m
