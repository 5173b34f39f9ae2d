"""``Tuning(client)``: the tuning SDK, the same embedded or against a server.

The study registry and summaries go through the client's backend (the
database embedded, ``/api/v1/tuning`` remote); Optuna's own state goes to the
study storage (``_storage``), which the client reaches directly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import AlreadyExists, Conflict, InvalidArgument
from opsloop.tracking import Tracking
from opsloop.tuning._backend import EmbeddedTuning, TuningBackend
from opsloop.tuning._remote import RemoteTuning
from opsloop.tuning._runner import StudyConfig
from opsloop.tuning._service import check_study_name
from opsloop.tuning._space import SearchSpace, check_space, space_to_dict
from opsloop.tuning._spec import check_directions, make_pruner, make_sampler
from opsloop.tuning._storage import open_storage, resolve_storage
from opsloop.tuning._study import Study
from opsloop.tuning.entities import StudyInfo, StudySummary

__all__ = ["Tuning"]


def _embedded(ctx: Context) -> TuningBackend:
    return EmbeddedTuning(ctx)


def _remote(ctx: Context) -> TuningBackend:
    return RemoteTuning(ctx)


class Tuning:
    """Create, resume, list and summarise hyperparameter studies."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self.client: Tracking = ctx.room(Tracking)
        self._backend: TuningBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        """The context this client works in (settings, identity, storage)."""
        return self._context

    # ------------------------------------------------------------------ registry

    def register(
        self,
        name: str,
        *,
        experiment_id: str,
        directions: Sequence[str],
        objectives: Sequence[str],
        space: SearchSpace,
        storage: str,
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[StudyInfo, bool]:
        """Get or create the registry entry (and parent run) of a study."""
        return self._backend.register_study(
            name,
            experiment_id=experiment_id,
            directions=directions,
            objectives=objectives,
            space=space_to_dict(space),
            storage=storage,
            user=self._context.user,
            tags=tags,
        )

    def get_study_info(self, name: str) -> StudyInfo:
        check_study_name(name)
        return self._backend.get_study(name)

    def list_studies(self, experiment_id: str | None = None) -> list[StudyInfo]:
        return self._backend.list_studies(experiment_id)

    def summary(self, name: str) -> StudySummary:
        """Trials, counts, best trial and Pareto front, read from the study's runs."""
        check_study_name(name)
        return self._backend.summary(name)

    def delete_study(self, name: str, *, storage: str | os.PathLike[str] | None = None) -> None:
        """Forget a study: its registry entry and its Optuna state (its runs stay)."""
        check_study_name(name)
        spec = resolve_storage(self.client.settings, storage)
        if spec.persistent:
            import optuna

            # KeyError: Optuna never saw it (created, never optimised).
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=name, storage=open_storage(spec))
        self._backend.delete_study(name)

    # ------------------------------------------------------------------ studies

    def create_study(
        self,
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
    ) -> Study:
        """A study named ``name``: created, or (``load_if_exists``) resumed where it stopped.

        ``directions`` and ``objectives`` pair up (``["maximize", "minimize"]``
        with ``["f1", "train_seconds"]``); objective names are the metric
        names the trial runs record. ``search_space`` maps parameter names to
        ``Float``/``Int``/``Categorical`` (or their YAML form); an objective
        may also sample more with ``trial.suggest_*``. ``sampler`` and
        ``pruner`` are Optuna objects or names (``"tpe"``, ``{"type": "median",
        "n_warmup_steps": 2}``). ``experiment`` (default: the study name)
        holds the study's parent run and one child run per trial.
        ``storage`` overrides where Optuna's state lives (see
        ``opsloop.tuning._storage``). A trial whose process died is failed
        and retried (up to ``max_retry`` times) by the next ``optimize``
        on the same machine; ``heartbeat_s`` (default ``"auto"``: 10 s when
        the storage is shared by several machines, off otherwise) lets
        workers notice a dead trial of another machine too.
        """
        check_study_name(name)
        dirs, objs = check_directions(directions, objectives)
        space = check_space(search_space or {})
        sampler_obj = make_sampler(sampler, space)
        pruner_obj = make_pruner(pruner)
        spec = resolve_storage(self.client.settings, storage)
        if heartbeat_s == "auto":
            heartbeat_s = 10 if spec.shared_across_machines else None
        if heartbeat_s is not None and (
            isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, int) or heartbeat_s < 1
        ):
            raise InvalidArgument(
                f"heartbeat_s must be a positive integer, 'auto' or None, got {heartbeat_s!r}"
            )
        exp = self.client.get_or_create_experiment(experiment or name)
        config_tags = {
            "opsloop.tuning.sampler": type(sampler_obj).__name__ if sampler_obj else "default",
            "opsloop.tuning.pruner": type(pruner_obj).__name__ if pruner_obj else "default",
            "opsloop.tuning.storage": spec.display,
        }
        info, created = self.register(
            name,
            experiment_id=exp.id,
            directions=dirs,
            objectives=objs,
            space=space,
            storage=spec.display,
            tags={**dict(tags or {}), **config_tags},
        )
        if not created and not load_if_exists:
            raise AlreadyExists(f"study {name!r} already exists", details={"name": name})
        if info.run_id is None:  # register always leaves one; a purge racing us could not
            raise Conflict(f"study {name!r} lost its parent run while opening; try again")
        if not created:
            self.client.set_tags(info.run_id, config_tags)
        config = StudyConfig(
            name=name,
            directions=dirs,
            objectives=objs,
            space=space,
            storage=spec,
            experiment_id=info.experiment_id,
            parent_run_id=info.run_id,
            settings=self.client.settings.model_dump(),
            sampler=sampler_obj,
            pruner=pruner_obj,
            heartbeat_s=heartbeat_s if spec.persistent else None,
            max_retry=max_retry,
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        self.client.log_dict(info.run_id, space_to_dict(space), "tuning/space.json")
        return Study(self, info, config)

    def load_study(
        self,
        name: str,
        *,
        storage: str | os.PathLike[str] | None = None,
        sampler: Any = None,
        pruner: Any = None,
        heartbeat_s: int | str | None = "auto",
    ) -> Study:
        """An existing study, with the directions, objectives and space it was created with."""
        info = self.get_study_info(name)
        if storage is None and info.storage.startswith("sqlite:"):
            storage = info.storage
        experiment = self.client.get_experiment(info.experiment_id).name
        return self.create_study(
            name,
            directions=info.directions,
            objectives=info.objectives,
            search_space=info.space,
            sampler=sampler,
            pruner=pruner,
            experiment=experiment,
            storage=storage,
            heartbeat_s=heartbeat_s,
        )
