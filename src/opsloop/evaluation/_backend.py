"""The evaluation room's backend seam: promotion gates, embedded or remote.

``EvaluationBackend`` is the Protocol of the operations that differ between
embedded and remote use; ``EmbeddedEvaluation`` serves them from the context's
database (``RemoteEvaluation`` in ``_remote.py`` over its transport).
Evaluation runs themselves are logged through ``ctx.room(Tracking)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opsloop.core import Context
from opsloop.evaluation._entities import GatePolicy
from opsloop.evaluation._gates import GateService

__all__ = ["EmbeddedEvaluation", "EvaluationBackend", "gate_service"]


def gate_service(ctx: Context) -> GateService:
    """The gate service on the context's database (one per context, see ``Context.room``)."""
    return GateService(ctx.database)


class EvaluationBackend(Protocol):
    def set_gate(
        self, model: str, rules: Any, *, aliases: Sequence[str] | None = None
    ) -> GatePolicy: ...

    def get_gate(self, model: str) -> GatePolicy: ...

    def delete_gate(self, model: str) -> None: ...


class EmbeddedEvaluation:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _svc(self) -> GateService:
        return self._ctx.room(gate_service)

    def set_gate(
        self, model: str, rules: Any, *, aliases: Sequence[str] | None = None
    ) -> GatePolicy:
        return self._svc().set_gate(model, rules, aliases=aliases, actor=self._ctx.user)

    def get_gate(self, model: str) -> GatePolicy:
        return self._svc().get_gate(model)

    def delete_gate(self, model: str) -> None:
        self._svc().delete_gate(model)
