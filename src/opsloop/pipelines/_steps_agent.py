"""The ``agent`` tool loop and the ``cite`` step that turns ``[n]`` markers into citations."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.pipelines import _template as T
from opsloop.pipelines._context import Run
from opsloop.pipelines._model_call import MODEL_PARAMS, chat, check_params
from opsloop.pipelines._parsing import extract_json
from opsloop.pipelines._steps import Step, _check_path, _check_template, _invalid
from opsloop.tracing import span

__all__ = ["AgentStep", "CiteStep", "cite"]

# ------------------------------------------------------------------------------ agent

AGENT_SYSTEM = """You answer the user's question. You may use these tools:
{tools}
To use a tool, reply with only this JSON: {{"tool": "<tool name>", "args": {{...}}}}
When you can answer, reply with only this JSON: {{"answer": "<your answer>"}}"""


class AgentStep(Step):
    """A bounded tool loop for small models: the model replies ``{"tool", "args"}`` to call a tool
    (its result comes back as the next user turn) or ``{"answer"}`` to finish. A reply that is
    not that JSON is taken as the answer. At most ``max_iterations`` tool calls."""

    type = "agent"
    span_kind = "agent"
    fields = ("model", "input", "tools", "max_iterations", "system", *MODEL_PARAMS)

    def __init__(
        self,
        name: str,
        model: Any = None,
        *,
        input: str | None = None,
        tools: Sequence[str] | None = None,
        max_iterations: int = 3,
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
            not isinstance(max_iterations, int)
            or isinstance(max_iterations, bool)
            or not 1 <= max_iterations <= 10
        ):
            raise _invalid(
                name, "max_iterations", f"must be an integer in 1..10, got {max_iterations!r}"
            )
        if tools is not None and (
            isinstance(tools, str) or not all(isinstance(t, str) for t in tools)
        ):
            raise _invalid(name, "tools", "must be a list of tool names")
        if input is not None:
            _check_template(name, "input", input)
        if system is not None:
            _check_template(name, "system", system)
        self.model = model
        self.input = input
        self.tools = None if tools is None else list(tools)
        self.max_iterations = max_iterations
        self.system = system
        self.params = check_params(params, name)

    def reads(self) -> list[str]:
        return (T.template_roots(self.input) if self.input else []) + (
            T.template_roots(self.system) if self.system else []
        )

    def tools_used(self) -> list[str]:
        return list(self.tools or [])

    def _fields(self) -> dict[str, Any]:
        if self.model is not None and not isinstance(self.model, str):
            raise _invalid(
                self.name, "model", "is an object; saved pipelines name models by provider spec"
            )
        return {
            "model": self.model,
            "input": self.input,
            "tools": self.tools,
            "max_iterations": self.max_iterations,
            "system": self.system,
            **self.params,
        }

    def run(self, run: Run) -> Any:
        names = self.tools if self.tools is not None else sorted(run.ctx.tools)
        tools = {n: run.ctx.tool(n) for n in names}
        lines = []
        for t in tools.values():
            props = (t.parameters or {}).get("properties") or {}
            sig = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
            lines.append(f"- {t.name}({sig}): {t.description}")
        system = AGENT_SYSTEM.format(tools="\n".join(lines) or "(none)")
        if self.system is not None:
            system = T.render(self.system, run.state) + "\n\n" + system
        if self.input is not None:
            question = T.render(self.input, run.state)
        elif run.first_input is not None:
            question = str(T.get_path(run.state, run.first_input))
        else:
            raise InvalidArgument(f"step {self.name!r} needs an 'input'")
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        model = run.ctx.model(self.model if self.model is not None else run.pipeline_model)
        calls: list[dict[str, Any]] = []
        answer: str | None = None
        protocol = "json"
        for i in range(self.max_iterations + 1):
            final = i == self.max_iterations
            if final:
                messages.append(
                    {"role": "user", "content": 'Now reply with only {"answer": "<your answer>"}.'}
                )
            text = chat(model, messages, self.params, span_name=f"{self.name} call {i + 1}")
            try:
                reply = extract_json(text)
            except InvalidArgument:
                reply = None
            if isinstance(reply, Mapping) and isinstance(reply.get("tool"), str) and not final:
                name = str(reply["tool"])
                raw_args = reply.get("args")
                args: dict[str, Any] = dict(raw_args) if isinstance(raw_args, Mapping) else {}
                with span(name if name in tools else "unknown_tool", "tool", inputs=args) as ts:
                    try:
                        if name not in tools:
                            raise InvalidArgument(
                                f"no tool named {name!r}; use one of {sorted(tools)}"
                            )
                        result: Any = tools[name](**tools[name].check_args(args))
                        ts.set_output(result)
                    except InvalidArgument as exc:
                        result = {"error": exc.message}
                        ts.set_status("ERROR", exc.message)
                calls.append({"tool": name, "args": dict(args), "result": result})
                messages += [
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": "Tool result: "
                        + json.dumps(result, ensure_ascii=False, default=str)[:4000],
                    },
                ]
                continue
            if isinstance(reply, Mapping) and "answer" in reply:
                answer = str(reply["answer"])
            else:
                answer, protocol = text.strip(), "free_text"
            break
        if run.span is not None:
            run.span.set_attributes(
                {"opsloop.agent.tool_calls": len(calls), "opsloop.agent.protocol": protocol}
            )
        return {
            "answer": answer or "",
            "tool_calls": calls,
            "iterations": len(calls) + 1,
            "protocol": protocol,
        }


# ------------------------------------------------------------------------------ cite

_CITE = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


class CiteStep(Step):
    """Citations for a RAG answer: the ``[n]`` markers in ``answer`` that name retrieved chunks of
    ``hits`` (1-based); when the model cited none, every retrieved chunk, with
    ``citation_source="retrieved"`` saying so."""

    type = "cite"
    span_kind = "other"
    fields = ("answer", "hits", "snippet_chars")

    def __init__(
        self,
        name: str,
        *,
        answer: str | None = None,
        hits: str = "retrieve",
        snippet_chars: int = 240,
        output_key: str | None = None,
    ) -> None:
        super().__init__(name, output_key=output_key)
        if answer is not None:
            _check_path(name, "answer", answer)
        _check_path(name, "hits", hits)
        self.answer = answer
        self.hits = hits
        self.snippet_chars = snippet_chars

    def reads(self) -> list[str]:
        return ([self.answer.split(".")[0]] if self.answer else []) + [self.hits.split(".")[0]]

    def uses_default_input(self) -> bool:
        return self.answer is None

    def _fields(self) -> dict[str, Any]:
        return {"answer": self.answer, "hits": self.hits, "snippet_chars": self.snippet_chars}

    def run(self, run: Run) -> Any:
        answer = str(self._input(run, self.answer) or "").strip()
        hits = T.get_path(run.state, self.hits)
        if not isinstance(hits, list):
            raise InvalidArgument(
                f"step {self.name!r}: {self.hits!r} is not a list of retrieved chunks"
            )
        return cite(answer, hits, snippet_chars=self.snippet_chars)


def cite(
    answer: str, hits: Sequence[Mapping[str, Any]], *, snippet_chars: int = 240
) -> dict[str, Any]:
    """``{answer, citations, citation_source}`` from an answer with ``[n]`` markers and its hits."""
    numbers: list[int] = []
    for m in _CITE.finditer(answer):
        for part in m.group(1).split(","):
            n = int(part)
            if 1 <= n <= len(hits) and n not in numbers:
                numbers.append(n)
    source = "model" if numbers else "retrieved"
    chosen = numbers or list(range(1, len(hits) + 1))

    def one(n: int) -> dict[str, Any]:
        h = hits[n - 1]
        meta = h.get("metadata") or {}
        text = " ".join(str(h.get("text") or "").split())
        return {
            "n": n,
            "chunk_id": h.get("id"),
            "path": h.get("source") or meta.get("source") or meta.get("path"),
            "title": h.get("title") or meta.get("title"),
            "text": text[:snippet_chars],
            "score": h.get("score"),
        }

    return {"answer": answer, "citations": [one(n) for n in chosen], "citation_source": source}
