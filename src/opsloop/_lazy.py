"""Packages whose public names load their modules on first use (``import opsloop.X`` stays light).

A package lists ``name -> module`` and ends with::

    __getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)

``renamed`` maps a public name to the attribute it is in its module, when they differ.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str,
    namespace: dict[str, Any],
    lazy: Mapping[str, str],
    public: Sequence[str],
    renamed: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: a name in ``lazy``
    imports its module once and is then kept in ``namespace`` (the package's globals)."""
    renames = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), renames.get(name, name))
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
