"""Prompt registry: versioned text and chat templates with labels, diffs and rendering.

From the SDK::

    import opsloop
    client = opsloop.Client()
    client.prompts.create("greet", "Hello {{ name }}!", message="first", labels=["production"])
    p = client.prompts.get("prompts:/greet@production")   # cached with a TTL
    p.render(name="Ada")                                  # 'Hello Ada!'

Prompts live in the model registry as kind ``prompt``: labels are registry
aliases (``latest`` is always the newest version) and every change is in the
registry's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.prompts._client import Prompts
    from opsloop.prompts._ref import PromptRef, make_ref, parse_uri
    from opsloop.prompts._service import PromptService
    from opsloop.prompts.entities import (
        MessageDiff,
        Prompt,
        PromptDiff,
        PromptLabel,
        PromptVersion,
    )

_LAZY = {
    "Prompts": "opsloop.prompts._client",
    "PromptRef": "opsloop.prompts._ref",
    "make_ref": "opsloop.prompts._ref",
    "parse_uri": "opsloop.prompts._ref",
    "PromptService": "opsloop.prompts._service",
    "MessageDiff": "opsloop.prompts.entities",
    "Prompt": "opsloop.prompts.entities",
    "PromptDiff": "opsloop.prompts.entities",
    "PromptLabel": "opsloop.prompts.entities",
    "PromptVersion": "opsloop.prompts.entities",
}

__all__ = [
    "MessageDiff",
    "Prompt",
    "PromptDiff",
    "PromptLabel",
    "PromptRef",
    "PromptService",
    "PromptVersion",
    "Prompts",
    "make_ref",
    "parse_uri",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
