"""``RemoteEvaluation``: the evaluation backend over ``/api/v1/evaluations/gates/{model}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opsloop.core import quote_segment
from opsloop.evaluation._entities import GatePolicy
from opsloop.evaluation._gates import parse_rules

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteEvaluation"]


def _path(model: str) -> str:
    return f"/evaluations/gates/{quote_segment(model)}"


class RemoteEvaluation:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def set_gate(
        self, model: str, rules: Any, *, aliases: Sequence[str] | None = None
    ) -> GatePolicy:
        body: dict[str, Any] = {
            "rules": [r.model_dump(exclude_none=True) for r in parse_rules(rules)],
            "aliases": list(aliases) if aliases is not None else None,
        }
        return GatePolicy.model_validate(self._t.put(_path(model), body))

    def get_gate(self, model: str) -> GatePolicy:
        return GatePolicy.model_validate(self._t.get(_path(model)))

    def delete_gate(self, model: str) -> None:
        self._t.delete(_path(model))
