"""Tool calls (OpenAI ``tools``/``tool_choice``) on a local model: the prompt, the grammar of a call.

A call is generated under a grammar, so its arguments always validate
against the tool's ``parameters`` schema: ``{"name": "<tool>", "arguments":
{...}}``. ``tool_choice``: ``"none"`` (no call), ``"auto"`` (a call or
text: the grammar allows either, and the model picks), ``"required"`` (one
of the tools) or ``{"type": "function", "function": {"name": ...}}``.

The tools reach the prompt through the model's chat template where it takes
``tools`` (the template writes them its way); otherwise as a system message
that lists them as JSON and shows the call format. Earlier calls (assistant
``tool_calls``) and their results (``tool`` messages) are written back into
the conversation the same way, so a conversation can go on after a result.
Used by ``LocalProvider.chat_tools`` and by ``opsloop serve``'s
``/v1/chat/completions``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.llm._structured import compile_response_format

__all__ = ["ToolPlan", "parse_tool_calls", "plan_tools", "render_tool_messages"]

_JSON_STYLE: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass
class ToolPlan:
    tools: list[dict[str, Any]]  # the OpenAI tool objects, checked
    mode: str  # "none" | "auto" | "required" | "named"
    grammar: str | None

    @property
    def calls(self) -> bool:
        return self.mode != "none"


def _bad(msg: str, param: str = "tools") -> InvalidArgument:
    return InvalidArgument(msg, details={"param": param})


def _check_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    seen: set[str] = set()
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(fn, dict):
            raise _bad(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        name = fn.get("name")
        if not isinstance(name, str) or not name or name in seen:
            raise _bad(f"tools[{i}].function.name must be a unique non-empty string")
        seen.add(name)
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise _bad(f"tools[{i}].function.parameters must be a JSON schema object")
        out.append({"type": "function", "function": {**fn, "parameters": params}})
    return out


def _call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"]["parameters"],
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    return {**schema, "x-guidance": _JSON_STYLE}


def plan_tools(tools: Any, tool_choice: Any, tokenizer: Any) -> ToolPlan | None:
    """What ``tools``/``tool_choice`` ask for; None without tools. ``InvalidArgument`` names
    the bad parameter (a tool whose schema cannot be enforced included)."""
    import llguidance

    if not tools:
        if tool_choice not in (None, "none"):
            raise _bad("tool_choice needs tools", "tool_choice")
        return None
    checked = _check_tools(tools)
    choice = "auto" if tool_choice is None else tool_choice
    if choice == "none":
        return ToolPlan(checked, "none", None)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        named = [t for t in checked if t["function"]["name"] == name]
        if choice.get("type") != "function" or not named:
            raise _bad("tool_choice must name one of the tools", "tool_choice")
        checked_for_call, mode = named, "named"
    elif choice in ("auto", "required"):
        checked_for_call, mode = checked, str(choice)
    else:
        raise _bad("tool_choice must be none, auto, required or a named function", "tool_choice")
    schema = _call_schema(checked_for_call)
    try:
        compile_response_format(
            {"type": "json_schema", "json_schema": {"name": "call", "schema": schema}}, tokenizer
        )
    except OpsloopError as exc:
        raise _bad(f"a tool's parameters cannot be enforced: {exc.message}") from exc
    if mode == "auto":
        # Either a call (a JSON object) or an answer in words (anything not starting with '{').
        lark = f"start: call | text\ncall: %json {json.dumps(schema)}\ntext: /[^{{](.|\\n)*/\n"
        grammar = str(llguidance.LLMatcher.grammar_from_lark(lark))
    else:
        grammar = str(
            llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), _JSON_STYLE)
        )
    return ToolPlan(checked, mode, grammar)


def _template_takes_tools(tokenizer: Any) -> bool:
    return "tools" in str(getattr(tokenizer, "chat_template", None) or "")


def _call_text(call: dict[str, Any]) -> str:
    fn = call.get("function") or {}
    args = fn.get("arguments") or "{}"
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except json.JSONDecodeError:
        parsed = args
    return json.dumps({"name": fn.get("name"), "arguments": parsed})


def render_tool_messages(messages: list[dict[str, Any]], plan: ToolPlan | None, lm: Any) -> str:
    """The prompt for a conversation that may offer tools and carry earlier calls and results."""
    msgs: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = "\n".join(_call_text(c) for c in m["tool_calls"])
            msgs.append({"role": "assistant", "content": calls})
        elif m["role"] == "tool":
            msgs.append({"role": "tool", "content": m["content"]})
        else:
            msgs.append({"role": m["role"], "content": m["content"]})
    if plan is None or not plan.calls:
        return str(lm.apply_chat_template(msgs))
    tok = lm.tokenizer
    if _template_takes_tools(tok):
        return str(
            tok.apply_chat_template(
                msgs, tools=plan.tools, tokenize=False, add_generation_prompt=True
            )
        )
    listing = json.dumps([t["function"] for t in plan.tools])
    how = (
        "You can call these functions:\n"
        f"{listing}\n"
        'To call one, answer only with JSON: {"name": <function name>, "arguments": {...}}.'
    )
    if plan.mode == "auto":
        how += " If no function is needed, answer in words."
    if msgs and msgs[0]["role"] == "system":
        msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + how}
    else:
        msgs.insert(0, {"role": "system", "content": how})
    return str(lm.apply_chat_template(msgs))


def parse_tool_calls(text: str, plan: ToolPlan | None) -> list[dict[str, Any]] | None:
    """The ``tool_calls`` of an answer generated under ``plan``; None when it is text."""
    if plan is None or not plan.calls or not text.lstrip().startswith("{"):
        return None
    try:
        call = json.loads(text)
    except json.JSONDecodeError:
        return None  # cut short by max_tokens: finish_reason says length
    if not isinstance(call, dict) or "name" not in call:
        return None
    return [
        {
            "id": "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": json.dumps(call.get("arguments", {})),
            },
        }
    ]
