"""``Study``: optimise an objective over a search space, every trial a child run."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.errors import InvalidArgument
from opsloop.tuning._parallel import run_processes, run_ray
from opsloop.tuning._pareto import history_svg, pareto_svg
from opsloop.tuning._runner import Objective, Runner, StudyConfig, check_objective
from opsloop.tuning.entities import ParetoPoint, StudyInfo, StudySummary, TrialInfo

if TYPE_CHECKING:
    import optuna

    from opsloop.tracking import Tracking

BACKENDS = ("local", "processes", "ray")


class StudyOwner(Protocol):
    """What a study needs from the ``Tuning`` client that made it."""

    client: Tracking

    def summary(self, name: str) -> StudySummary: ...


class Study:
    """A hyperparameter study: its parent run, its Optuna state, and ``optimize``.

    Made by ``create_study`` (which resumes an existing study of that name).
    ``optimize(objective, n_trials=N)`` runs trials until the study holds N
    finished ones, so re-running the same script after a crash finishes the
    study instead of starting it over.
    """

    def __init__(self, tuning: StudyOwner, info: StudyInfo, config: StudyConfig) -> None:
        self._tuning = tuning
        self.client = tuning.client
        self.info = info
        self.config = config
        self._runner: Runner | None = None
        self._fresh_sampler: bool | None = None

    name = property(lambda self: self.config.name)
    directions = property(lambda self: list(self.config.directions))
    objectives = property(lambda self: list(self.config.objectives))
    space = property(lambda self: dict(self.config.space))
    run_id = property(lambda self: self.config.parent_run_id, doc="The study's parent run.")
    experiment_id = property(lambda self: self.config.experiment_id)

    @property
    def is_multi_objective(self) -> bool:
        return len(self.config.directions) > 1

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.config, self.client)
        return self._runner

    @property
    def optuna_study(self) -> optuna.Study:
        """The underlying ``optuna.Study`` (for Optuna's own visualisations and analysis)."""
        return self.runner.study

    # ------------------------------------------------------------------ optimize

    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        n_jobs: int = 1,
        backend: str = "local",
        ray_address: str | None = None,
        catch: Iterable[type[Exception]] | type[Exception] = (),
    ) -> StudySummary:
        """Run trials until the study holds ``n_trials`` finished trials, or ``timeout`` passes.

        Finished means complete, pruned, or failed by the objective; a trial
        whose process died is failed, its run marked KILLED, and queued again
        with the same params. ``backend``: ``"local"`` runs ``n_jobs`` threads
        here; ``"processes"`` runs ``n_jobs`` processes of this machine;
        ``"ray"`` runs ``n_jobs`` Ray tasks (default: one per cluster CPU),
        on the cluster at ``ray_address`` (None starts a local one). Both need
        a module-level objective for processes, or anything cloudpickle takes
        for Ray. An exception the objective raises stops the study (the trial
        is FAIL) unless its type is in ``catch``. Returns the study summary.
        """
        objective = check_objective(objective)
        if backend not in BACKENDS:
            raise InvalidArgument(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if n_trials is not None and (
            isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0
        ):
            raise InvalidArgument(f"n_trials must be a non-negative integer, got {n_trials!r}")
        if timeout is not None and timeout <= 0:
            raise InvalidArgument(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
            raise InvalidArgument(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
        if backend != "local" and not self.config.storage.persistent:
            raise InvalidArgument(f"backend={backend!r} needs a persistent storage, not 'memory'")
        catch_t = (catch,) if isinstance(catch, type) else tuple(catch)

        runner = self.runner
        if self._fresh_sampler is None:
            # A seeded sampler in a new process starts its sequence over: on a study
            # that already has trials it would propose the same params again.
            self._fresh_sampler = not runner.study.get_trials(deepcopy=False)
            if not self._fresh_sampler and runner.study.sampler is not None:
                runner.study.sampler.reseed_rng()
        runner.recover()
        remaining = None if n_trials is None else n_trials - runner.finished_count()
        tags: dict[str, Any] = {"opsloop.tuning.backend": backend}
        if n_trials is not None:
            tags["opsloop.tuning.n_trials"] = n_trials
        self.client.set_tags(self.run_id, tags)
        self.client.update_run(self.run_id, status="RUNNING")
        deadline = None if timeout is None else time.time() + timeout
        status = "FINISHED"
        try:
            if remaining is None or remaining > 0:
                self._run(
                    objective, remaining, timeout, deadline, n_jobs, backend, ray_address, catch_t
                )
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except BaseException:
            status = "FAILED"
            raise
        finally:
            summary = self._finalize(status)
        return summary

    def _run(
        self,
        objective: Objective,
        remaining: int | None,
        timeout: float | None,
        deadline: float | None,
        n_jobs: int,
        backend: str,
        ray_address: str | None,
        catch: tuple[type[Exception], ...],
    ) -> None:
        if backend == "local":
            self.runner.optimize(
                objective, n_trials=remaining, timeout=timeout, n_jobs=n_jobs, catch=catch
            )
            return
        import optuna

        self.client.flush()
        config = dataclasses.replace(self.config, optuna_verbosity=optuna.logging.get_verbosity())
        if backend == "processes":
            workers = n_jobs if n_jobs > 0 else (os.cpu_count() or 1)
            run_processes(
                config,
                objective,
                n_trials=remaining,
                deadline=deadline,
                workers=workers,
                catch=catch,
            )
        else:
            run_ray(
                config,
                objective,
                n_trials=remaining,
                deadline=deadline,
                workers=n_jobs if n_jobs > 0 else None,
                catch=catch,
                address=ray_address,
            )

    def _finalize(self, status: str) -> StudySummary:
        """Record the study's outcome on its parent run: counts, best, front, charts."""
        self.client.flush()
        s = self.summary()
        finished = sum(s.counts.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL"))
        metrics = {f"trials/{k.lower()}": float(v) for k, v in s.counts.items()}
        tags: dict[str, Any] = {}
        if s.best:
            b = s.best[0]
            for o, v in zip(self.objectives, b.values or [], strict=False):
                if v is not None:
                    metrics[f"best/{o}"] = v
            tags.update(
                {
                    "opsloop.tuning.best_trial": b.number,
                    "opsloop.tuning.best_run_id": b.run_id or "",
                    "opsloop.tuning.best_params": json.dumps(b.params, default=str),
                }
            )
        if self.is_multi_objective:
            tags["opsloop.tuning.pareto_size"] = len(s.pareto_front)
        ts = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[(k, v, finished, ts) for k, v in metrics.items()], tags=tags
        )
        self.client.log_text(
            self.run_id, s.model_dump_json(indent=2, exclude={"trials"}), "tuning/summary.json"
        )
        if self.is_multi_objective:
            self.client.log_dict(
                self.run_id, [p.model_dump() for p in s.pareto_front], "tuning/pareto_front.json"
            )
            self.client.log_text(self.run_id, self.pareto_svg(s), "tuning/pareto_front.svg")
        else:
            self.client.log_text(self.run_id, self.history_svg(s), "tuning/history.svg")
        self.client.set_terminated(self.run_id, status)
        return s

    # ------------------------------------------------------------------ results

    def summary(self) -> StudySummary:
        """Trials, counts by state, best trial and Pareto front, as the trial runs record them."""
        return self._tuning.summary(self.name)

    def trials(self, states: Iterable[str] | None = None) -> list[TrialInfo]:
        """Every trial (optionally only those in ``states``, e.g. ``["COMPLETE"]``), by number."""
        wanted = None if states is None else {s.upper() for s in states}
        return [t for t in self.summary().trials if wanted is None or t.state in wanted]

    @property
    def best_trial(self) -> TrialInfo:
        """The best complete trial of a single-objective study."""
        if self.is_multi_objective:
            raise InvalidArgument(
                "a multi-objective study has no single best trial: use pareto_front()"
            )
        best = self.summary().best
        if not best:
            raise InvalidArgument(f"study {self.name!r} has no complete trial yet")
        return best[0]

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        values = self.best_trial.values or [None]
        if values[0] is None:
            raise InvalidArgument(f"study {self.name!r} has no complete trial yet")
        return float(values[0])

    def pareto_front(self) -> list[ParetoPoint]:
        """The non-dominated complete trials (sorted by the first objective)."""
        if not self.is_multi_objective:
            s = self.summary()
            return [
                ParetoPoint(
                    number=t.number,
                    run_id=t.run_id,
                    values=[float(v) for v in t.values or [] if v is not None],
                    params=t.params,
                )
                for t in s.best
            ]
        return self.summary().pareto_front

    def pareto_svg(self, summary: StudySummary | None = None) -> str:
        """The Pareto chart (SVG): every complete trial on the first two objectives, front in red."""
        s = summary or self.summary()
        pts = [
            (t.number, [float(v) for v in t.values])  # type: ignore[arg-type]
            for t in s.trials
            if t.state == "COMPLETE" and t.values and None not in t.values
        ]
        return pareto_svg(pts, self.directions, self.objectives, title=f"{self.name}: Pareto front")

    def history_svg(self, summary: StudySummary | None = None) -> str:
        """Each complete trial's value by number with the best so far (single objective)."""
        s = summary or self.summary()
        pts = [
            (t.number, float(v))
            for t in s.trials
            if t.state == "COMPLETE" and t.values and (v := t.values[0]) is not None
        ]
        return history_svg(
            pts, self.directions[0], self.objectives[0], title=f"{self.name}: {self.objectives[0]}"
        )

    def __repr__(self) -> str:
        dirs = ", ".join(f"{d} {o}" for d, o in zip(self.directions, self.objectives, strict=True))
        return f"Study({self.name!r}, {dirs})"
