"""Diffs between two prompt versions: unified text diffs, chat messages paired up, variables, metadata."""

from __future__ import annotations

import difflib
import json
from typing import Any

from opsloop.prompts.entities import MessageDiff, PromptDiff, PromptVersion


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _unified(a: str, b: str, fa: str, fb: str) -> list[str]:
    return list(difflib.unified_diff(_lines(a), _lines(b), fa, fb, lineterm="", n=3))


def _as_text(v: PromptVersion) -> str:
    if isinstance(v.template, str):
        return v.template
    return "\n".join(f"[{m['role']}]\n{m['content']}" for m in v.template)


def _messages(a: list[dict[str, str]], b: list[dict[str, str]]) -> list[MessageDiff]:
    """Pair messages: equal runs by content, then replaced blocks index by index."""
    out: list[MessageDiff] = []
    sm = difflib.SequenceMatcher(
        a=[(m["role"], m["content"]) for m in a],
        b=[(m["role"], m["content"]) for m in b],
        autojunk=False,
    )
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            out.extend(
                MessageDiff(
                    status="same",
                    index_a=i1 + k,
                    index_b=j1 + k,
                    role_a=a[i1 + k]["role"],
                    role_b=b[j1 + k]["role"],
                )
                for k in range(i2 - i1)
            )
            continue
        pairs = min(i2 - i1, j2 - j1)
        for k in range(pairs):
            ma, mb = a[i1 + k], b[j1 + k]
            out.append(
                MessageDiff(
                    status="changed",
                    index_a=i1 + k,
                    index_b=j1 + k,
                    role_a=ma["role"],
                    role_b=mb["role"],
                    diff=_unified(
                        ma["content"],
                        mb["content"],
                        f"message {i1 + k} [{ma['role']}]",
                        f"message {j1 + k} [{mb['role']}]",
                    ),
                )
            )
        for i in range(i1 + pairs, i2):
            out.append(
                MessageDiff(
                    status="removed",
                    index_a=i,
                    role_a=a[i]["role"],
                    diff=[f"-{line}" for line in _lines(a[i]["content"])],
                )
            )
        for j in range(j1 + pairs, j2):
            out.append(
                MessageDiff(
                    status="added",
                    index_b=j,
                    role_b=b[j]["role"],
                    diff=[f"+{line}" for line in _lines(b[j]["content"])],
                )
            )
    return out


def _show(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, default=str, sort_keys=True)


def diff_versions(va: PromptVersion, vb: PromptVersion) -> PromptDiff:
    """The structured diff from ``va`` to ``vb`` (and the same as text in ``.text``)."""
    name = va.name
    fa, fb = f"{name} v{va.version}", f"{name} v{vb.version}"
    template_diff = _unified(_as_text(va), _as_text(vb), fa, fb)
    messages: list[MessageDiff] = []
    if isinstance(va.template, list) and isinstance(vb.template, list):
        messages = _messages(va.template, vb.template)
    added = [v for v in vb.variables if v not in va.variables]
    removed = [v for v in va.variables if v not in vb.variables]
    meta: dict[str, dict[str, Any]] = {}
    for k in sorted(set(va.metadata) | set(vb.metadata)):
        x, y = va.metadata.get(k), vb.metadata.get(k)
        if k not in va.metadata or k not in vb.metadata or _show(x) != _show(y):
            meta[k] = {"a": x, "b": y}
    identical = not template_diff and not added and not removed and not meta and va.kind == vb.kind
    text: list[str] = []
    if va.kind != vb.kind:
        text.append(f"kind: {va.kind} -> {vb.kind}")
    if added:
        text.append(f"variables added: {', '.join(added)}")
    if removed:
        text.append(f"variables removed: {', '.join(removed)}")
    for k, ab in meta.items():
        text.append(f"metadata {k}: {_show(ab['a'])} -> {_show(ab['b'])}")
    text.extend(template_diff)
    return PromptDiff(
        name=name,
        a=va.version,
        b=vb.version,
        identical=identical,
        kind_a=va.kind,
        kind_b=vb.kind,
        template_diff=template_diff,
        messages=messages,
        variables_added=added,
        variables_removed=removed,
        metadata_changed=meta,
        message_a=va.message,
        message_b=vb.message,
        text="\n".join(text) if text else f"{fa} and {fb} are identical",
    )
