"""Foundation-model selection: evaluate candidate models on one dataset and recommend one.

    from opsloop.selection import select_model
    s = select_model(["local:smollm2", "local:gemma3"], "qa@1",
                     metrics=["exact_match", "token_f1"],
                     constraints={"max_p95_latency_ms": 2000}, register_as="qa-model")
    s.leaderboard, s.pareto, s.recommendation

See ``docs/selection.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsloop._lazy import lazy_names

if TYPE_CHECKING:
    from opsloop.selection._endpoint import EndpointModel
    from opsloop.selection._rank import pareto_front, recommend, violations
    from opsloop.selection._select import select_model
    from opsloop.selection._types import (
        Constraints,
        Leaderboard,
        LeaderboardRow,
        Recommendation,
        Selection,
    )

_LAZY = {
    "EndpointModel": "opsloop.selection._endpoint",
    "pareto_front": "opsloop.selection._rank",
    "recommend": "opsloop.selection._rank",
    "violations": "opsloop.selection._rank",
    "select_model": "opsloop.selection._select",
    "Constraints": "opsloop.selection._types",
    "Leaderboard": "opsloop.selection._types",
    "LeaderboardRow": "opsloop.selection._types",
    "Recommendation": "opsloop.selection._types",
    "Selection": "opsloop.selection._types",
}

__all__ = [
    "Constraints",
    "EndpointModel",
    "Leaderboard",
    "LeaderboardRow",
    "Recommendation",
    "Selection",
    "pareto_front",
    "recommend",
    "select_model",
    "violations",
]


__getattr__, __dir__ = lazy_names(__name__, globals(), _LAZY, __all__)
