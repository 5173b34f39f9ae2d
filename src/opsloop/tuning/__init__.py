"""Hyperparameter tuning on Optuna: every trial a child run, studies that survive crashes.

::

    from opsloop.tuning import Float, Int, Categorical, create_study

    study = create_study(
        "iris-rf",
        directions=["maximize", "minimize"],
        objectives=["f1", "train_seconds"],
        search_space={"n_estimators": Int(10, 200), "max_depth": Int(2, 12)},
    )
    study.optimize(objective, n_trials=40)      # objective(trial) -> {"f1": ...}
    study.pareto_front()

Importing this package does not import Optuna; creating a study does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, context_of
from opsloop.tuning._pareto import SvgCanvas, non_dominated
from opsloop.tuning._space import (
    Categorical,
    Float,
    Int,
    SearchSpace,
    check_space,
    llm_space,
    space_to_dict,
)
from opsloop.tuning._spec import StudySpec, load_space, load_study_spec
from opsloop.tuning._trial import Timer, Trial, TrialPruned
from opsloop.tuning.entities import ParetoPoint, StudyInfo, StudySummary, TrialInfo

if TYPE_CHECKING:
    from opsloop.tracking import Tracking
    from opsloop.tuning._client import Tuning
    from opsloop.tuning._study import Study

__all__ = [
    "Categorical",
    "Float",
    "Int",
    "ParetoPoint",
    "SearchSpace",
    "Study",
    "StudyInfo",
    "StudySpec",
    "StudySummary",
    "SvgCanvas",
    "Timer",
    "Trial",
    "TrialInfo",
    "TrialPruned",
    "Tuning",
    "check_space",
    "create_study",
    "list_studies",
    "llm_space",
    "load_space",
    "load_study",
    "load_study_spec",
    "non_dominated",
    "space_to_dict",
]


def _tuning(client: Tracking | Context | None) -> Tuning:
    from opsloop.tuning._client import Tuning  # lazy: loads sqlalchemy (the study registry)

    return Tuning(context_of(client))


def create_study(
    name: str,
    *,
    directions: Sequence[str] | str = ("maximize",),
    objectives: Sequence[str] | str | None = None,
    search_space: Mapping[str, Any] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    experiment: str | None = None,
    storage: str | os.PathLike[str] | None = None,
    heartbeat_s: int | str | None = "auto",
    max_retry: int | None = 3,
    load_if_exists: bool = True,
    tags: Mapping[str, Any] | None = None,
    client: Tracking | Context | None = None,
) -> Study:
    """Create (or resume) a study on ``client`` (default: the fluent API's client).

    See ``Tuning.create_study`` for every argument.
    """
    return _tuning(client).create_study(
        name,
        directions=directions,
        objectives=objectives,
        search_space=search_space,
        sampler=sampler,
        pruner=pruner,
        experiment=experiment,
        storage=storage,
        heartbeat_s=heartbeat_s,
        max_retry=max_retry,
        load_if_exists=load_if_exists,
        tags=tags,
    )


def load_study(
    name: str,
    *,
    storage: str | os.PathLike[str] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    client: Tracking | Context | None = None,
) -> Study:
    """An existing study by name, as it was created."""
    return _tuning(client).load_study(name, storage=storage, sampler=sampler, pruner=pruner)


def list_studies(client: Tracking | Context | None = None) -> list[StudyInfo]:
    return _tuning(client).list_studies()


def __getattr__(name: str) -> Any:
    # ``Study`` and ``Tuning`` pull in Optuna glue and the store (SQLAlchemy): they load
    # on first use, so ``import opsloop.tuning`` (and the CLI) start fast.
    if name == "Study":
        from opsloop.tuning._study import Study  # lazy: loads sqlalchemy

        return Study
    if name == "Tuning":
        from opsloop.tuning._client import Tuning  # lazy: loads sqlalchemy

        return Tuning
    raise AttributeError(f"module 'opsloop.tuning' has no attribute {name!r}")
