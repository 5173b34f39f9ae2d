"""opsloop: one local-first platform for the ML and LLM operations loop.

``import opsloop`` is cheap: the SDK, the store and everything heavy load on
first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from opsloop._version import __version__

if TYPE_CHECKING:
    from opsloop.sdk import (
        ActiveRun,
        Client,
        active_run,
        end_run,
        flush,
        get_client,
        log_artifact,
        log_artifacts,
        log_dict,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from opsloop.settings import Settings

__all__ = [
    "ActiveRun",
    "Client",
    "Settings",
    "__version__",
    "active_run",
    "end_run",
    "flush",
    "get_client",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_LAZY = {name: "opsloop.sdk" for name in __all__ if name not in ("Settings", "__version__")}
_LAZY["Settings"] = "opsloop.settings"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
