"""What can be evaluated, turned into one shape: ``run(inputs) -> Outcome`` per example.

A candidate is a ``models:/`` URI, a saved-model folder or a ``LoadedModel``
(classical ``predict``, generation for a causal LM, or a registered
pipeline), an ``opsloop.llm`` provider or its spec (``"local:smollm2"``,
``"openai:gpt-4o-mini"``) with an optional prompt (a template, chat messages,
a ``PromptVersion`` or a ``prompts:/`` URI), an ``opsloop.pipelines.Pipeline``
(see ``_pipelines.py``), any other object with ``.invoke(dict) -> dict``, or
a plain callable taking the example's inputs as a dict.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opsloop.core import Context
from opsloop.errors import InvalidArgument
from opsloop.evaluation._candidate import OUTPUT_KEYS, Candidate, Outcome, version_of
from opsloop.evaluation._pipelines import pipeline_candidate
from opsloop.evaluation._rooms import prompts_of
from opsloop.llm import get_provider
from opsloop.pipelines import LoadedPipeline, Pipeline
from opsloop.registry import LoadedCausalLM, LoadedModel, load_model
from opsloop.tracking import Tracking

_PROVIDER_SPEC = re.compile(r"^(local|openai|models):[^\s]+$")
_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# What options= may hold: model call parameters (and via_provider for models:/ URIs).
LLM_OPTIONS = (
    "max_tokens", "temperature", "top_p", "stop", "seed", "timeout_s", "response_format",
    "schema_column",
)  # fmt: skip
#: Options that need a provider (constrained decoding): a models:/ URI is run through one.
_STRUCTURED = ("response_format", "schema_column")


def render_template(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill ``{{ var }}`` placeholders of a text or chat template from ``values``."""
    if hasattr(template, "render") and hasattr(template, "variables"):
        names = list(template.variables)
        missing = [n for n in names if n not in values]
        if missing:
            raise InvalidArgument(f"the prompt needs {missing}, which the example does not have")
        return template.render(**{n: values[n] for n in names})

    def fill(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m[1] not in values:
                raise InvalidArgument(
                    f"the prompt needs {m[1]!r}, which the example does not have "
                    f"(it has {sorted(values)})"
                )
            return str(values[m[1]])

        return _VAR.sub(one, text)

    if isinstance(template, str):
        return fill(template)
    if isinstance(template, list):
        return [{**msg, "content": fill(str(msg.get("content", "")))} for msg in template]
    raise InvalidArgument("prompt must be a string, a list of chat messages or a PromptVersion")


def _as_messages(rendered: Any) -> list[dict[str, str]]:
    if isinstance(rendered, str):
        return [{"role": "user", "content": rendered}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in rendered]


def _default_prompt(inputs: Mapping[str, Any]) -> str:
    for key in ("prompt", "question", "input", "query", "text"):
        if key in inputs:
            return str(inputs[key])
    if len(inputs) == 1:
        return str(next(iter(inputs.values())))
    raise InvalidArgument(
        "an LLM candidate needs a prompt= template, or an input column named "
        f"prompt/question/input/query/text (the example has {sorted(inputs)})"
    )


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t) * 1000.0


def pick_output(out: Any, key: str | None = None) -> Any:
    """The prediction inside a pipeline's output dict (``key`` when given)."""
    if isinstance(out, Mapping) and key is not None:
        if key not in out:
            raise InvalidArgument(f"the output has no key {key!r} (it has {sorted(out)})")
        return out[key]
    if isinstance(out, Mapping):
        if len(out) == 1:
            return next(iter(out.values()))
        for key in OUTPUT_KEYS:
            if key in out:
                return out[key]
    return out


def resolve_prompt(prompt: Any, client: Tracking | Context | None) -> Any:
    """A ``prompts:/`` URI becomes its PromptVersion; anything else passes through."""
    if isinstance(prompt, str) and prompt.startswith("prompts:/"):
        if client is None:
            raise InvalidArgument("a prompts:/ URI needs a client")
        return prompts_of(client).get(prompt)
    return prompt


def make_candidate(
    candidate: Any,
    *,
    prompt: Any = None,
    client: Tracking | None = None,
    options: Mapping[str, Any] | None = None,
    cache_dir: Any = None,
    output_key: str | None = None,
    trusted_types: Sequence[str] | None = None,
) -> Candidate:
    """Turn any supported candidate into a :class:`Candidate`.

    What this function loads or opens itself (a ``models:/`` URI, a folder, a
    provider spec) is released by ``Candidate.close``; objects the caller
    passed stay open.
    """
    opts = dict(options or {})
    via_provider = opts.pop("via_provider", False) is True or any(k in opts for k in _STRUCTURED)
    unknown = sorted(set(opts) - set(LLM_OPTIONS))
    if unknown:
        raise InvalidArgument(
            f"unknown options {unknown}; an LLM candidate takes {list(LLM_OPTIONS)}",
            details={"unknown": unknown},
        )
    owned = False
    if isinstance(candidate, str):
        if candidate.startswith("models:/") and not via_provider:
            candidate, owned = _load(candidate, client, cache_dir, trusted_types), True
        elif _PROVIDER_SPEC.match(candidate):
            provider = get_provider(candidate, client=client, cache_dir=cache_dir)
            cand = _provider_candidate(provider, prompt, opts, spec=candidate)
            cand.close = provider.close
            return cand
        else:
            if not Path(candidate).is_dir():
                raise InvalidArgument(
                    f"candidate {candidate!r} is not a models:/ URI, a provider spec "
                    "(local:NAME, openai:MODEL) or a saved-model folder"
                )
            candidate, owned = _load(candidate, client, cache_dir, trusted_types), True
    if isinstance(candidate, LoadedCausalLM):
        if any(k in opts for k in _STRUCTURED):
            raise InvalidArgument(
                "response_format and schema_column need a provider (local:NAME, models:/NAME/V "
                "as a URI, or get_provider(...)): a loaded model object generates without them",
                details={"options": sorted(k for k in opts if k in _STRUCTURED)},
            )
        return _llm_candidate(candidate, prompt, opts)
    if (prompt is not None or opts) and not (
        hasattr(candidate, "chat") and hasattr(candidate, "spec")
    ):
        _close_owned(candidate, owned)
        what = "classical model" if isinstance(candidate, LoadedModel) else type(candidate).__name__
        raise InvalidArgument(
            f"{'prompt=' if prompt is not None else 'options='} applies to LLM candidates "
            f"(a provider or a causal LM), not a {what}"
        )
    if _is_pipeline(candidate):
        if client is None:
            raise InvalidArgument("evaluating a pipeline needs a client")
        try:
            return pipeline_candidate(
                candidate, client=client, cache_dir=cache_dir, output_key=output_key, owned=owned
            )
        except BaseException:
            _close_owned(candidate, owned)
            raise
    if isinstance(candidate, LoadedModel):
        cand = _model_candidate(candidate)
        if owned:
            cand.close = getattr(candidate, "close", None)
        return cand
    if hasattr(candidate, "chat") and hasattr(candidate, "spec"):
        return _provider_candidate(candidate, prompt, opts, spec=str(candidate.spec))
    if hasattr(candidate, "invoke") and callable(candidate.invoke):
        return _invoke_candidate(candidate, output_key)
    if callable(candidate):
        name = getattr(candidate, "__qualname__", None) or type(candidate).__name__
        mod = getattr(candidate, "__module__", "") or ""

        def call(inputs: dict[str, Any]) -> Outcome:
            out, ms = _timed(lambda: candidate(inputs))
            return _from_response(pick_output(out, output_key) if output_key else out, ms)

        return Candidate(f"callable:{mod}.{name}" if mod else f"callable:{name}", "callable", call)
    raise InvalidArgument(
        f"cannot evaluate a {type(candidate).__name__}: pass a models:/ URI, a LoadedModel, "
        "a provider (or its spec), a pipeline with .invoke(dict), or a callable(dict)"
    )


def _is_pipeline(obj: Any) -> bool:
    return isinstance(obj, Pipeline | LoadedPipeline)


def _close_owned(obj: Any, owned: bool) -> None:
    close = getattr(obj, "close", None) if owned else None
    if close is not None:
        close()


def _load(
    uri: str, client: Tracking | None, cache_dir: Any, trusted_types: Sequence[str] | None
) -> Any:
    trusted = list(trusted_types) if trusted_types is not None else None
    return load_model(uri, client=client, cache_dir=cache_dir, trusted_types=trusted)


def _model_candidate(model: Any) -> Candidate:
    spec, version, name = version_of(model)

    def run(inputs: dict[str, Any]) -> Outcome:
        out, ms = _timed(lambda: model.predict([inputs]))
        return Outcome(out[0], ms)

    proba = None
    if getattr(model, "supports_proba", False):

        def proba(inputs: dict[str, Any]) -> Any:
            return model.predict_proba([inputs])[0]

    return Candidate(spec, "model", run, name, version, proba)


def _gen_kwargs(opts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"max_new_tokens": int(opts.get("max_tokens", 64))}
    for key in ("temperature", "top_p", "stop", "seed"):
        if key in opts:
            out[key] = opts[key]
    return out


def _llm_candidate(lm: Any, prompt: Any, opts: Mapping[str, Any]) -> Candidate:
    spec, version, name = version_of(lm)
    kw = _gen_kwargs(opts)

    def run(inputs: dict[str, Any]) -> Outcome:
        rendered = (
            render_template(prompt, inputs) if prompt is not None else _default_prompt(inputs)
        )
        text = (
            lm.apply_chat_template(_as_messages(rendered))
            if lm.has_chat_template
            else (rendered if isinstance(rendered, str) else lm.apply_chat_template(rendered))
        )
        res, ms = _timed(lambda: lm.generate([text], **kw)[0])
        return Outcome(res.text, ms, res.prompt_tokens, res.completion_tokens)

    return Candidate(spec, "llm", run, name, version)


def _provider_candidate(
    provider: Any, prompt: Any, opts: Mapping[str, Any], *, spec: str
) -> Candidate:
    kw = {k: v for k, v in opts.items() if k in LLM_OPTIONS and k != "schema_column"}
    column = opts.get("schema_column")
    if column is not None and (not isinstance(column, str) or "response_format" in kw):
        raise InvalidArgument(
            "schema_column is the name of the column holding each row's JSON schema, "
            "and replaces response_format",
            details={"schema_column": str(column)},
        )

    def run(inputs: dict[str, Any]) -> Outcome:
        rendered = (
            render_template(prompt, inputs) if prompt is not None else _default_prompt(inputs)
        )
        call = dict(kw)
        if column is not None:
            call["response_format"] = _row_format(inputs, column)
        resp, ms = _timed(lambda: provider.chat(_as_messages(rendered), **call))
        return _from_response(resp, ms)

    params = {
        k: str(v)
        for k, v in (("llm_model", getattr(provider, "model", None)),
                     ("llm_provider", getattr(provider, "provider", None)))
        if v
    }  # fmt: skip
    return Candidate(spec, "provider", run, params=params)


def _row_format(inputs: Mapping[str, Any], column: str) -> dict[str, Any]:
    """The strict ``json_schema`` response format of a row's schema (an object or JSON text)."""
    if column not in inputs:
        raise InvalidArgument(
            f"schema_column {column!r} is not a column of the data ({', '.join(sorted(inputs))})",
            details={"schema_column": column},
        )
    raw = inputs[column]
    try:
        schema = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        schema = None
    if not isinstance(schema, Mapping):
        raise InvalidArgument(
            f"column {column!r} holds {str(raw)[:80]!r}, not a JSON schema object",
            details={"schema_column": column},
        )
    return {"type": "json_schema",
            "json_schema": {"name": "row", "schema": dict(schema), "strict": True}}  # fmt: skip


def _invoke_candidate(pipe: Any, output_key: str | None) -> Candidate:
    """Any object with ``.invoke(dict)``; opsloop pipelines have their own path (_pipelines.py)."""
    name = getattr(pipe, "name", None) or type(pipe).__name__
    spec = str(getattr(pipe, "uri", "") or f"pipeline:{name}")

    def run(inputs: dict[str, Any]) -> Outcome:
        out, ms = _timed(lambda: pipe.invoke(dict(inputs)))
        o = _from_response(pick_output(out, output_key), ms)
        o.extra = dict(out) if isinstance(out, Mapping) else None
        usage = out.get("usage") if isinstance(out, Mapping) else None
        if isinstance(usage, Mapping):
            o.input_tokens = _int(usage.get("input_tokens"))
            o.output_tokens = _int(usage.get("output_tokens"))
        return o

    return Candidate(spec, "pipeline", run)


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _from_response(out: Any, ms: float) -> Outcome:
    """A ChatResponse-like answer (``.text`` and ``.usage``) reports its tokens and cost."""
    text = getattr(out, "text", None)
    usage = getattr(out, "usage", None)
    if isinstance(text, str) and usage is not None:
        cost = getattr(out, "cost_usd", None)
        return Outcome(
            text,
            ms,
            _int(getattr(usage, "input_tokens", None)),
            _int(getattr(usage, "output_tokens", None)),
            float(cost) if isinstance(cost, int | float) else None,
        )
    return Outcome(out, ms)
