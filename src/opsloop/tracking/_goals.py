"""Metric goals: whether a metric is better high (``maximize``) or low (``minimize``).

The one place that decides a metric's direction. A goal set on an experiment
(``Client.set_metric_goal``) is stored as the experiment tag
``opsloop.goal.<metric key>`` = ``maximize`` | ``minimize``; a metric with no
goal set gets one inferred from its name (``infer_goal``). Comparisons carry
each metric's goal and pick the best run by it; the CLI and the UI show what
the service returns and never guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

from opsloop.errors import InvalidArgument
from opsloop.tracking import _validation as V

MetricGoal = Literal["maximize", "minimize"]
GOALS: tuple[MetricGoal, ...] = ("maximize", "minimize")
GOAL_TAG_PREFIX = "opsloop.goal."

# Words (of a key split at non-letters/digits and camelCase) that mean lower is better.
MINIMIZE_WORDS = frozenset(
    {
        "loss",
        "error",
        "err",
        "mse",
        "mae",
        "rmse",
        "mape",
        "smape",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "latency",
        "duration",
        "time",
        "cost",
    }
)
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def words(key: str) -> list[str]:
    """``"val/meanSquaredError"`` -> ``["val", "mean", "squared", "error"]``."""
    return [w.lower() for w in _WORDS.findall(key)]


def infer_goal(key: str) -> MetricGoal | None:
    """The goal of a metric nobody set one for, from its name.

    - ``system/...`` metrics (CPU, memory, ...) have none: no run is best at them;
    - ``minimize`` when a word of the key is a loss, an error or a cost
      (``MINIMIZE_WORDS``: loss, error, err, mse, mae, rmse, mape, perplexity,
      wer, cer, latency, duration, time, cost, ...) or ends in ``loss``/``error``
      (``logloss``); except scikit-learn's negated scores (``neg_...``), which
      are maximised;
    - ``maximize`` otherwise (accuracy, f1, auc, bleu, throughput, ...).
    """
    if key.startswith("system/"):
        return None
    ws = words(key)
    if ws and ws[0] == "neg":
        return "maximize"
    if any(w in MINIMIZE_WORDS or w.endswith(("loss", "error")) for w in ws):
        return "minimize"
    return "maximize"


def check_goal(goal: Any) -> MetricGoal:
    if goal not in GOALS:
        raise InvalidArgument(
            f"metric goal must be 'maximize' or 'minimize', got {goal!r}",
            details={"goal": str(goal)[:100]},
        )
    return cast(MetricGoal, goal)


def goal_tag(key: str) -> str:
    """The experiment tag that holds ``key``'s goal; ``InvalidArgument`` for a bad key."""
    V.check_key("metric", key)
    tag = GOAL_TAG_PREFIX + key
    if len(tag) > V.MAX_KEY:
        raise InvalidArgument(
            f"metric key {key[:40]!r}... is too long to set a goal for "
            f"(at most {V.MAX_KEY - len(GOAL_TAG_PREFIX)} characters)"
        )
    return tag


def check_goal_tag(key: str, value: Any) -> None:
    """A tag named ``opsloop.goal.<metric key>`` must hold a goal; other tags pass."""
    if key.startswith(GOAL_TAG_PREFIX):
        V.check_key("metric", key[len(GOAL_TAG_PREFIX) :])
        check_goal(value)


def explicit_goals(tags: Mapping[str, str]) -> dict[str, MetricGoal]:
    """The goals set in an experiment's tags (values that are not goals are ignored)."""
    return {
        k[len(GOAL_TAG_PREFIX) :]: v
        for k, v in tags.items()
        if k.startswith(GOAL_TAG_PREFIX) and v in GOALS
    }


def resolve_goals(
    keys: Iterable[str], explicit: Iterable[Mapping[str, MetricGoal]]
) -> dict[str, MetricGoal | None]:
    """Each key's goal: the first explicit one (in the order given), else inferred."""
    sets = list(explicit)
    out: dict[str, MetricGoal | None] = {}
    for k in keys:
        out[k] = next((g[k] for g in sets if k in g), None) or infer_goal(k)
    return out


def best_run(per_run: Mapping[str, float | None], goal: MetricGoal | None) -> str | None:
    """The run with the best value for the goal; ties go to the first run given.

    None when the metric has no goal or no run has a value (NaN counts as none).
    """
    if goal is None:
        return None
    best: tuple[float, str] | None = None
    for rid, v in per_run.items():
        if v is None or v != v:
            continue
        if best is None or (v > best[0] if goal == "maximize" else v < best[0]):
            best = (v, rid)
    return None if best is None else best[1]
