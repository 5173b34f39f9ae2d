"""The ``agent`` tool loop and the ``cite`` step that turns ``[n]`` markers into citations."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.llm import Provider
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
    """A bounded tool loop: at most ``max_iterations`` tool calls, then an answer.

    With a model that takes tools (an opsloop ``Provider`` whose ``supports_tools``: a
    local model, whose calls are generated under a grammar so their arguments always
    validate, or an OpenAI-compatible endpoint such as ``opsloop serve``), the tools go
    to the model as OpenAI function tools, its ``tool_calls`` run, and their results
    come back as ``tool`` turns (``protocol: "tools"``). ``tool_choice``: ``"auto"``
    (the model decides) or ``"required"`` (the first reply must be a call). With any
    other model the step falls back to a JSON protocol in the prompt: the model replies
    ``{"tool", "args"}`` to call a tool (its result comes back as the next user turn) or
    ``{"answer"}`` to finish; a reply that is not that JSON is taken as the answer."""

    type = "agent"
    span_kind = "agent"
    fields = (
        "model", "input", "tools", "max_iterations", "system", "tool_choice", *MODEL_PARAMS
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        model: Any = None,
        *,
        input: str | None = None,
        tools: Sequence[str] | None = None,
        max_iterations: int = 3,
        system: str | None = None,
        tool_choice: str = "auto",
        output_key: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(name, output_key=output_key)
        if tool_choice not in ("auto", "required"):
            raise _invalid(
                name, "tool_choice", f"must be 'auto' or 'required', got {tool_choice!r}"
            )
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
        self.tool_choice = tool_choice
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
            "tool_choice": self.tool_choice,
            **self.params,
        }

    def run(self, run: Run) -> Any:
        names = self.tools if self.tools is not None else sorted(run.ctx.tools)
        tools = {n: run.ctx.tool(n) for n in names}
        if self.input is not None:
            question = T.render(self.input, run.state)
        elif run.first_input is not None:
            question = str(T.get_path(run.state, run.first_input))
        else:
            raise InvalidArgument(f"step {self.name!r} needs an 'input'")
        model = run.ctx.model(self.model if self.model is not None else run.pipeline_model)
        if tools and isinstance(model, Provider) and model.supports_tools:
            out = self._run_tools(run, model, tools, question)
        else:
            out = self._run_json(run, model, tools, question)
        if run.span is not None:
            run.span.set_attributes(
                {
                    "opsloop.agent.tool_calls": len(out["tool_calls"]),
                    "opsloop.agent.protocol": out["protocol"],
                }
            )
        return out

    def _call_tool(self, tools: Mapping[str, Any], name: str, args: dict[str, Any]) -> Any:
        """Run one call as a ``tool`` span; a bad name or arguments come back as an error."""
        with span(name if name in tools else "unknown_tool", "tool", inputs=args) as ts:
            try:
                if name not in tools:
                    raise InvalidArgument(f"no tool named {name!r}; use one of {sorted(tools)}")
                result: Any = tools[name](**tools[name].check_args(args))
                ts.set_output(result)
            except InvalidArgument as exc:
                result = {"error": exc.message}
                ts.set_status("ERROR", exc.message)
        return result

    def _run_tools(
        self, run: Run, model: Provider, tools: Mapping[str, Any], question: str
    ) -> dict[str, Any]:
        specs = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in tools.values()
        ]
        messages: list[dict[str, Any]] = []
        if self.system is not None:
            messages.append({"role": "system", "content": T.render(self.system, run.state)})
        messages.append({"role": "user", "content": question})
        calls: list[dict[str, Any]] = []
        answer = ""
        for i in range(self.max_iterations + 1):
            choice = "none" if i == self.max_iterations else self.tool_choice if i == 0 else "auto"
            with span(f"{self.name} call {i + 1}", "llm", inputs=messages) as sp:
                resp = model.chat_tools(messages, specs, tool_choice=choice, **self.params)
                sp.set_output(resp.text if not resp.tool_calls else resp.tool_calls)
            if not resp.tool_calls:
                answer = resp.text.strip()
                break
            messages.append({"role": "assistant", "content": "", "tool_calls": resp.tool_calls})
            for call in resp.tool_calls:
                fn = call.get("function") or {}
                name = str(fn.get("name") or "")
                try:
                    raw = json.loads(fn.get("arguments") or "{}")
                except (TypeError, json.JSONDecodeError):
                    raw = None
                args: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
                result = self._call_tool(tools, name, args)
                calls.append({"tool": name, "args": args, "result": result, "id": call.get("id")})
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(call.get("id") or ""),
                        "content": json.dumps(result, ensure_ascii=False, default=str)[:4000],
                    }
                )
        return {"answer": answer, "tool_calls": calls, "iterations": len(calls) + 1,
                "protocol": "tools"}  # fmt: skip

    def _run_json(
        self, run: Run, model: Any, tools: Mapping[str, Any], question: str
    ) -> dict[str, Any]:
        lines = []
        for t in tools.values():
            props = (t.parameters or {}).get("properties") or {}
            sig = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
            lines.append(f"- {t.name}({sig}): {t.description}")
        system = AGENT_SYSTEM.format(tools="\n".join(lines) or "(none)")
        if self.system is not None:
            system = T.render(self.system, run.state) + "\n\n" + system
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
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
                result = self._call_tool(tools, name, args)
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
