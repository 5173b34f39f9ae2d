"""Quickstart step: a multi-objective Optuna study on the same tabular task.

Each trial trains a random forest or a logistic regression (the search space
of ``opsloop.tuning.examples.tabular``) and records its validation F1 and its
prediction latency; the study keeps the trials that no other beats on both
(the Pareto front) and draws them on the study's parent run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.quickstart._context import QuickstartContext
    from opsloop.tuning import Trial

TUNING_TRIALS = 12
OBJECTIVES = ("f1", "latency_ms")
DIRECTIONS = ("maximize", "minimize")


def tune_tabular(ctx: QuickstartContext) -> str:
    """Run ``ctx.extra["tuning_trials"]`` (default 12) trials; put the study's name and front in ``ctx.extra``."""
    from opsloop.tuning.examples import TABULAR_SPACE, tabular  # lazy: loads optuna

    n = int(ctx.extra.get("tuning_trials", TUNING_TRIALS))
    if n <= 0:
        ctx.reporter.begin("Tuning (skipped)")
        return "skipped"
    ctx.reporter.begin("Tuning", total=n)
    name = f"quickstart-tuning-{time.strftime('%Y%m%d-%H%M%S')}"
    study = ctx.client.tuning.create_study(
        name,
        directions=DIRECTIONS,
        objectives=OBJECTIVES,
        search_space=TABULAR_SPACE,
        sampler={"type": "tpe", "seed": ctx.seed},
        experiment="quickstart-tuning",
        tags={"opsloop.source": "quickstart"},
    )
    done = 0

    def objective(trial: Trial) -> dict[str, Any]:
        nonlocal done
        out = tabular(trial)
        done += 1
        model = trial.params.get("model")
        ctx.reporter.advance(1, f"[{done}/{n}] {model} f1={out['f1']:.3f}")
        return out

    summary = study.optimize(objective, n_trials=n)
    front = summary.pareto_front
    ctx.extra["tuning_study"] = name
    ctx.extra["tuning_front"] = [p.model_dump() for p in front]
    return f"study {name!r}: {len(summary.trials)} trials, {len(front)} on the F1/latency front"
