"""The step types of a pipeline: prompt, llm, parse, retrieve, tool, agent, python, cite.

Each step reads the state (inputs and earlier outputs) and writes one output
under its ``output_key`` (default: its name). Every step has a Python
constructor and a YAML form (``to_dict``/``from_dict``), so a pipeline built
in code can be saved, registered and served. Strings in steps are templates
(``{{ question }}``, ``{{ retrieve | numbered }}``), never code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from opsloop.errors import InvalidArgument, OutputInvalid, PipelineInvalid
from opsloop.llm import Provider
from opsloop.pipelines import _template as T
from opsloop.pipelines._context import ModelCall, Run
from opsloop.pipelines._model_call import MODEL_PARAMS, chat, check_params
from opsloop.pipelines._parsing import check_schema, extract_json, validate

__all__ = ["LLMStep", "ParseStep", "PromptStep", "Step"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _invalid(step: str, field: str, msg: str) -> PipelineInvalid:
    return PipelineInvalid(
        f"step {step!r}: field {field!r} {msg}", details={"step": step, "field": field}
    )


class Step:
    """Base class: a named step writing its output under ``output_key``."""

    type: ClassVar[str] = ""
    span_kind: ClassVar[str] = "chain"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, *, output_key: str | None = None) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise PipelineInvalid(
                f"step name {name!r} must be 1-64 letters, digits or '_', not starting with a digit",
                details={"step": str(name), "field": "name"},
            )
        if output_key is not None and (
            not isinstance(output_key, str) or not _NAME.match(output_key)
        ):
            raise _invalid(
                name, "output_key", f"must be a name like a step name, got {output_key!r}"
            )
        self.name = name
        self.output_key = output_key or name

    # -- declaration ----------------------------------------------------------------

    def reads(self) -> list[str]:
        """State roots this step reads (checked against inputs and earlier outputs)."""
        return []

    def uses_default_input(self) -> bool:
        """Whether the step reads the previous step's output (no explicit input)."""
        return False

    def tools_used(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.output_key != self.name:
            d["output_key"] = self.output_key
        d.update({k: v for k, v in self._fields().items() if v is not None})
        return d

    def _fields(self) -> dict[str, Any]:
        return {}

    # -- running --------------------------------------------------------------------

    def run(self, run: Run) -> Any:
        raise NotImplementedError

    def _input(self, run: Run, path: str | None) -> Any:
        key = path or run.last_key
        if key is None:
            raise InvalidArgument(f"step {self.name!r} is first and needs an explicit 'input'")
        return T.get_path(run.state, key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _messages(value: Any, step: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(
        isinstance(m, Mapping)
        and isinstance(m.get("role"), str)
        and isinstance(m.get("content"), str)
        for m in value
    ):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise InvalidArgument(
        f"step {step!r}: the model input must be a string or a list of {{role, content}} messages, "
        f"got {type(value).__name__}"
    )


# ------------------------------------------------------------------------------ prompt


class PromptStep(Step):
    """Render a prompt: an inline ``template`` (text), inline chat ``messages``, or a registry
    ``prompt`` (``prompts:/NAME@label``) whose variables come from ``variables`` or the state."""

    type = "prompt"
    fields = ("template", "messages", "prompt", "variables")

    def __init__(
        self,
        name: str,
        template: str | None = None,
        *,
        messages: Sequence[Mapping[str, str]] | None = None,
        prompt: str | None = None,
        variables: Mapping[str, Any] | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)
        given = [
            k
            for k, v in (("template", template), ("messages", messages), ("prompt", prompt))
            if v is not None
        ]
        if len(given) != 1:
            raise _invalid(
                name, "template", "is needed: give exactly one of template, messages or prompt"
            )
        self.template = template
        self.messages = None if messages is None else [dict(m) for m in messages]
        self.prompt = prompt
        self.variables = dict(variables or {})
        try:
            if template is not None:
                T.check_template(template)
            for i, m in enumerate(self.messages or []):
                if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                    raise _invalid(name, "messages", f"item {i} must be {{role, content}} strings")
                T.check_template(m["content"])
        except PipelineInvalid:
            raise
        except InvalidArgument as exc:
            raise _invalid(
                name, "template" if template is not None else "messages", str(exc)
            ) from None
        if prompt is not None and not (isinstance(prompt, str) and prompt.startswith("prompts:/")):
            raise _invalid(
                name,
                "prompt",
                f"must be a prompts:/NAME@LABEL or prompts:/NAME/VERSION URI, got {prompt!r}",
            )
        if not isinstance(self.variables, dict):
            raise _invalid(
                name, "variables", "must map prompt variables to state paths or templates"
            )

    def reads(self) -> list[str]:
        if self.template is not None:
            return T.template_roots(self.template)
        if self.messages is not None:
            return T.value_roots([m["content"] for m in self.messages])
        return T.value_roots(self.variables)

    def _fields(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "messages": self.messages,
            "prompt": self.prompt,
            "variables": self.variables or None,
        }

    def run(self, run: Run) -> Any:
        if self.template is not None:
            return T.render(self.template, run.state)
        if self.messages is not None:
            return [
                {"role": m["role"], "content": T.render(m["content"], run.state)}
                for m in self.messages
            ]
        assert self.prompt is not None
        pv = run.ctx.prompt(self.prompt)
        if run.span is not None:
            run.span.set_attribute("opsloop.prompt.uri", str(getattr(pv, "uri", self.prompt)))
        names = list(getattr(pv, "variables", None) or [])
        values: dict[str, Any] = {}
        for var in names:
            if var in self.variables:
                v = T.resolve_value(self.variables[var], run.state)
            else:
                v = T.get_path(run.state, var)
            values[var] = (
                v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            )
        return pv.render(**values)


# ------------------------------------------------------------------------------ llm


class LLMStep(Step):
    """Call a chat model on ``input`` (a prompt text or messages; default: the previous output)."""

    type = "llm"
    span_kind = "llm"
    fields = ("model", "input", "system", *MODEL_PARAMS)

    def __init__(
        self,
        name: str,
        model: Any = None,
        *,
        input: str | None = None,
        system: str | None = None,
        output_key: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(name, output_key=output_key)
        unknown = sorted(set(params) - set(MODEL_PARAMS))
        if unknown:
            raise _invalid(
                name, unknown[0], f"is not a model parameter (known: {', '.join(MODEL_PARAMS)})"
            )
        if (
            model is not None
            and not isinstance(model, str)
            and not callable(getattr(model, "chat", None))
        ):
            raise _invalid(
                name, "model", "must be a provider spec ('local:smollm2') or a chat model"
            )
        if input is not None:
            _check_path(name, "input", input)
        if system is not None:
            _check_template(name, "system", system)
        self.model = model
        self.input = input
        self.system = system
        self.params = check_params(params, name)

    def reads(self) -> list[str]:
        out = [self.input.split(".")[0]] if self.input else []
        return out + (T.template_roots(self.system) if self.system else [])

    def uses_default_input(self) -> bool:
        return self.input is None

    def _fields(self) -> dict[str, Any]:
        if self.model is not None and not isinstance(self.model, str):
            raise _invalid(
                self.name, "model", "is an object; saved pipelines name models by provider spec"
            )
        return {"model": self.model, "input": self.input, "system": self.system, **self.params}

    def run(self, run: Run) -> Any:
        messages = _messages(self._input(run, self.input), self.name)
        if self.system is not None:
            messages = [{"role": "system", "content": T.render(self.system, run.state)}, *messages]
        model = run.ctx.model(self.model if self.model is not None else run.pipeline_model)
        text = chat(model, messages, self.params, open_span=run.span)
        run.calls[self.output_key] = ModelCall(model, messages, dict(self.params))
        return text


def _check_path(step: str, field: str, path: Any) -> None:
    try:
        T.check_path(path)
    except InvalidArgument as exc:
        raise _invalid(step, field, str(exc)) from None


def _check_template(step: str, field: str, template: Any) -> None:
    try:
        T.check_template(template)
    except InvalidArgument as exc:
        raise _invalid(step, field, str(exc)) from None


# ------------------------------------------------------------------------------ parse

REPAIR_PROMPT = (
    "Your reply could not be used: {error}\n"
    "Reply again with only the JSON value, no other text. {schema_hint}"
)


class ParseStep(Step):
    """Parse model text: ``format="text"`` (trimmed) or ``"json"`` (extracted, validated against
    ``schema``); a failed parse re-asks the model that wrote the text, with the error, up to
    ``retries`` times, then raises ``OutputInvalid``."""

    type = "parse"
    span_kind = "other"  # the tracing kinds have no "parser"; the step type is an attribute
    fields = ("input", "format", "schema", "retries", "model", "max_tokens")

    def __init__(
        self,
        name: str,
        *,
        input: str | None = None,
        format: str = "json",
        schema: Mapping[str, Any] | None = None,
        retries: int = 2,
        model: Any = None,
        max_tokens: int | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)
        if format not in ("json", "text"):
            raise _invalid(name, "format", f"must be 'json' or 'text', got {format!r}")
        if schema is not None:
            if format != "json":
                raise _invalid(name, "schema", "applies to format 'json' only")

            try:
                schema = check_schema(schema)
            except InvalidArgument as exc:
                raise _invalid(name, "schema", str(exc)) from None
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 5:
            raise _invalid(name, "retries", f"must be an integer in 0..5, got {retries!r}")
        if input is not None:
            _check_path(name, "input", input)
        self.input = input
        self.format = format
        self.schema = None if schema is None else dict(schema)
        self.retries = retries
        self.model = model
        self.max_tokens = max_tokens
        check_params({"max_tokens": max_tokens}, name)

    def reads(self) -> list[str]:
        return [self.input.split(".")[0]] if self.input else []

    def uses_default_input(self) -> bool:
        return self.input is None

    def _fields(self) -> dict[str, Any]:
        if self.model is not None and not isinstance(self.model, str):
            raise _invalid(
                self.name, "model", "is an object; saved pipelines name models by provider spec"
            )
        return {
            "input": self.input,
            "format": self.format,
            "schema": self.schema,
            "retries": self.retries,
            "model": self.model,
            "max_tokens": self.max_tokens,
        }

    def _parse(self, text: Any) -> tuple[Any, str | None]:
        if self.format == "text":
            return (text if isinstance(text, str) else json.dumps(text)).strip(), None
        try:
            value = extract_json(text) if isinstance(text, str) else text
        except InvalidArgument as exc:
            return None, exc.message
        if self.schema is not None:
            problems = validate(value, self.schema)
            if problems:
                return value, "the JSON does not match the schema: " + "; ".join(problems)
        return value, None

    def _response_format(self) -> dict[str, Any]:
        if self.schema is None:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": True},
        }

    def run(self, run: Run) -> Any:
        text = self._input(run, self.input)
        source = (self.input or run.last_key or "").split(".")[0]
        value, error = self._parse(text)
        attempts = [{"text": text if isinstance(text, str) else None, "error": error}]
        call = run.calls.get(source)
        n = 0
        while (
            error is not None and n < self.retries and (call is not None or self.model is not None)
        ):
            n += 1
            model = run.ctx.model(self.model) if self.model is not None else call.model  # type: ignore[union-attr]
            base = list(call.messages) if call is not None else []
            params = dict(call.params) if call is not None else {}
            if self.max_tokens is not None:
                params["max_tokens"] = self.max_tokens
            if self.format == "json" and isinstance(model, Provider):
                # The repair is generated under the schema (constrained decoding): it parses.
                params.setdefault("response_format", self._response_format())
            hint = (
                f"The JSON schema is: {json.dumps(self.schema, separators=(',', ':'))}"
                if self.schema is not None
                else ""
            )
            messages = [
                *base,
                {
                    "role": "assistant",
                    "content": text if isinstance(text, str) else json.dumps(text),
                },
                {
                    "role": "user",
                    "content": REPAIR_PROMPT.format(error=error, schema_hint=hint).strip(),
                },
            ]
            text = chat(model, messages, params, span_name=f"{self.name} repair {n}")
            value, error = self._parse(text)
            attempts.append({"text": text, "error": error})
        if run.span is not None:
            run.span.set_attributes(
                {
                    "opsloop.parse.attempts": len(attempts),
                    "opsloop.parse.repaired": n > 0 and error is None,
                }
            )
        if error is not None:
            raise OutputInvalid(
                f"step {self.name!r}: no valid {self.format} after {len(attempts)} attempt(s): {error}",
                details={"step": self.name, "error": error, "attempts": attempts[-3:]},
            )
        return value
