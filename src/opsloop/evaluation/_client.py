"""``client.evaluation``: evaluation runs, comparisons and promotion gates, embedded or remote.

Evaluations run where the client is (the candidate model is loaded here) and
are stored through the client's run API, so they work the same against a
server. Gates live in the server's database: embedded they are written
directly, remote through ``/api/v1/evaluations/gates/{model}``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.evaluation._backend import EmbeddedEvaluation, EvaluationBackend
from opsloop.evaluation._compare import Comparison, compare
from opsloop.evaluation._entities import EvaluationResult, GatePolicy
from opsloop.evaluation._evaluate import evaluate, load_result
from opsloop.evaluation._remote import RemoteEvaluation
from opsloop.tracking import Tracking
from opsloop.tracking.entities import Run

__all__ = ["EVAL_FILTER", "Evaluation"]

EVAL_FILTER = 'tags.opsloop.eval = "1"'


def _embedded(ctx: Context) -> EvaluationBackend:
    return EmbeddedEvaluation(ctx)


def _remote(ctx: Context) -> EvaluationBackend:
    return RemoteEvaluation(ctx)


class Evaluation:
    """Evaluate candidates, compare evaluations, and manage promotion gates."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._client: Tracking = ctx.room(Tracking)
        self._backend: EvaluationBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        """The context this client works in (settings, identity, storage)."""
        return self._context

    # ------------------------------------------------------------------ runs

    def evaluate(self, candidate: Any, data: Any, *, metrics: Any, **kw: Any) -> EvaluationResult:
        """``opsloop.evaluation.evaluate`` with this client (same keyword arguments)."""
        return evaluate(candidate, data, metrics=metrics, client=self._client, **kw)

    def get(self, run_id: str, *, examples: bool = True) -> EvaluationResult:
        """An evaluation read back from its run."""
        return load_result(self._client, run_id, examples=examples)

    def list(self, *, experiment: str | None = None, max_results: int = 100) -> builtins.list[Run]:
        """Evaluation runs, newest first (of one experiment, by name, if given)."""
        ids = None
        if experiment is not None:
            ids = [self._client.get_experiment_by_name(experiment).id]
        return self._client.search_runs(
            ids, filter=EVAL_FILTER, order_by=["start_time DESC"], max_results=max_results
        ).runs

    def compare(self, runs: Sequence[Any], *, metric: str, **kw: Any) -> Comparison:
        """``opsloop.evaluation.compare`` with this client (same keyword arguments)."""
        return compare(runs, metric=metric, client=self._client, **kw)

    # ------------------------------------------------------------------ gates

    def set_gate(
        self, model: str, rules: Any, *, aliases: Sequence[str] | None = None
    ) -> GatePolicy:
        """Store the promotion gate of registered model ``model`` (replacing any before).

        ``rules``: e.g. ``[{"metric": "f1", "min_delta_vs": "champion", "tolerance": 0.005},
        {"metric": "latency_p99_ms", "max": 200}]``. ``aliases``: the aliases it
        guards (default: every alias of the model).
        """
        return self._backend.set_gate(model, rules, aliases=aliases)

    def get_gate(self, model: str) -> GatePolicy:
        """The model's gate (``NotFound`` when it has none)."""
        return self._backend.get_gate(model)

    def delete_gate(self, model: str) -> None:
        self._backend.delete_gate(model)
