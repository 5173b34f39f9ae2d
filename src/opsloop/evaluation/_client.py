"""``client.evaluation``: evaluation runs, comparisons and promotion gates, embedded or remote.

Evaluations run where the client is (the candidate model is loaded here) and
are stored through the client's run API, so they work the same against a
server. Gates live in the server's database: embedded they are written
directly, remote through ``/api/v1/evaluations/gates/{model}``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.evaluation._entities import EvaluationResult, GatePolicy

if TYPE_CHECKING:
    from opsloop.evaluation._compare import Comparison
    from opsloop.evaluation._gates import GateService
    from opsloop.sdk import Client
    from opsloop.tracking.entities import Run

EVAL_FILTER = 'tags.opsloop.eval = "1"'


class Evaluation:
    """Evaluate candidates, compare evaluations, and manage promotion gates."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._gates: GateService | None = None
        self._rest: Any = client.backend if client.is_remote else None

    def _svc(self) -> GateService:
        if self._gates is None:
            from opsloop.evaluation._gates import GateService

            self._gates = GateService(self._client.backend.db)  # type: ignore[attr-defined]
        return self._gates

    # ------------------------------------------------------------------ runs

    def evaluate(self, candidate: Any, data: Any, *, metrics: Any, **kw: Any) -> EvaluationResult:
        """``opsloop.evaluation.evaluate`` with this client (same keyword arguments)."""
        from opsloop.evaluation._evaluate import evaluate

        return evaluate(candidate, data, metrics=metrics, client=self._client, **kw)

    def get(self, run_id: str, *, examples: bool = True) -> EvaluationResult:
        """An evaluation read back from its run."""
        from opsloop.evaluation._evaluate import load_result

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
        from opsloop.evaluation._compare import compare

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
        from opsloop.core import context_of

        def _user() -> str:
            return context_of(self._client).user

        if self._rest is None:
            return self._svc().set_gate(model, rules, aliases=aliases, actor=_user())
        from opsloop.evaluation._gates import parse_rules

        body: dict[str, Any] = {
            "rules": [r.model_dump(exclude_none=True) for r in parse_rules(rules)],
            "aliases": list(aliases) if aliases is not None else None,
        }
        data = self._rest._json("PUT", f"/evaluations/gates/{quote(model, safe='')}", json=body)
        return GatePolicy.model_validate(data)

    def get_gate(self, model: str) -> GatePolicy:
        """The model's gate (``NotFound`` when it has none)."""
        if self._rest is None:
            return self._svc().get_gate(model)
        data = self._rest._json("GET", f"/evaluations/gates/{quote(model, safe='')}")
        return GatePolicy.model_validate(data)

    def delete_gate(self, model: str) -> None:
        if self._rest is None:
            self._svc().delete_gate(model)
            return
        self._rest._json("DELETE", f"/evaluations/gates/{quote(model, safe='')}")
