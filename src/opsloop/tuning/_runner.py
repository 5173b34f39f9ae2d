"""Running trials in one process: each Optuna trial becomes a child run, whatever its end.

The driver (``Study.optimize``) and every worker (process or Ray task) use
the same ``Runner``: it opens the study's shared Optuna storage, wraps the
user's objective so every trial gets a child run, and records how the trial
ended on that run *before* Optuna does. So a process killed at any point
leaves either a trial Optuna still calls RUNNING (which ``recover`` fails,
marks KILLED and queues again) or a trial whose run already says how it ended.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsloop.core import context_of
from opsloop.errors import InvalidArgument, NotFound, OpsloopError
from opsloop.tracking import MAX_TAG_VALUE, param_value
from opsloop.tuning._service import (
    TAG_ERROR,
    TAG_OWNER,
    TAG_PARAMS,
    TAG_ROLE,
    TAG_STATE,
    TAG_STUDY,
    TAG_TRIAL,
    TAG_VALUES,
)
from opsloop.tuning._space import SearchSpace, suggest
from opsloop.tuning._storage import StorageSpec, open_storage
from opsloop.tuning._trial import Trial, TrialPruned

if TYPE_CHECKING:
    import optuna

    from opsloop.tracking import Tracking

ATTR_FAILED = "opsloop.failed"  # on a trial the objective failed (not one whose worker died)
ORPHAN_AFTER_S = 120.0  # a RUNNING trial with no run for this long lost its process

Objective = Callable[[Trial], Any]
_log = logging.getLogger("opsloop.tuning")


@dataclass
class StudyConfig:
    """Everything a worker needs to join a study (picklable: it travels to processes and Ray)."""

    name: str
    directions: list[str]
    objectives: list[str]
    space: SearchSpace
    storage: StorageSpec
    experiment_id: str
    parent_run_id: str
    settings: dict[str, Any]
    sampler: Any = None
    pruner: Any = None
    heartbeat_s: int | None = None
    max_retry: int | None = 3
    tags: dict[str, str] = field(default_factory=dict)
    optuna_verbosity: int | None = None  # the driver's, applied in workers


def owner_tag() -> str:
    import psutil

    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when ``owner`` names a process of this machine that no longer runs."""
    if not owner:
        return False
    import psutil

    try:
        host, pid_s, started = owner.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False  # another machine: its trials go stale through the heartbeat instead
    try:
        return bool(abs(psutil.Process(pid).create_time() - float(started)) > 0.05)
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, ValueError):
        return False


def _param_text(params: dict[str, Any]) -> dict[str, str]:
    return {k: param_value(v) for k, v in params.items()}


def open_optuna_study(config: StudyConfig, on_stale: Any = None) -> optuna.Study:
    import optuna

    storage = open_storage(config.storage, heartbeat_s=config.heartbeat_s, on_stale=on_stale)
    return optuna.create_study(
        storage=storage,
        study_name=config.name,
        directions=config.directions,  # type: ignore[arg-type]  # checked: maximize/minimize
        sampler=config.sampler,
        pruner=config.pruner,
        load_if_exists=True,
    )


class Runner:
    """Runs trials of one study in this process, logging each as a child run."""

    def __init__(
        self, config: StudyConfig, client: Tracking, study: optuna.Study | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.study = study if study is not None else open_optuna_study(config, self.on_stale)
        self._owner = owner_tag()
        self._user = context_of(
            client
        ).user  # looked up once: it costs a passwd lookup per run otherwise

    # ------------------------------------------------------------------ one trial

    def wrap(self, objective: Objective) -> Callable[[optuna.Trial], Any]:
        """The Optuna objective: sample, open the child run, call ``objective``, close the run."""
        import optuna

        cfg = self.config
        multi = len(cfg.directions) > 1

        def run_trial(ot: optuna.Trial) -> Any:
            params = suggest(ot, cfg.space)
            run = self.client.create_run(
                cfg.experiment_id,
                name=f"{cfg.name}-{ot.number}",
                parent_run_id=cfg.parent_run_id,
                params=_param_text(params),
                user=self._user,
                tags={
                    **cfg.tags,
                    TAG_ROLE: "trial",
                    TAG_STUDY: cfg.name,
                    TAG_TRIAL: ot.number,
                    TAG_STATE: "RUNNING",
                    TAG_OWNER: self._owner,
                },
            )
            trial = Trial(
                ot,
                client=self.client,
                run_id=run.id,
                study_name=cfg.name,
                objectives=cfg.objectives,
                params=params,
                multi_objective=multi,
            )
            try:
                out = objective(trial)
                values = trial.resolve_values(out)
            except (TrialPruned, optuna.TrialPruned) as exc:
                self._finish(trial, "PRUNED", "FINISHED")
                raise optuna.TrialPruned(str(exc)) from None
            except KeyboardInterrupt:
                self._finish_after_error(trial, "KILLED", "interrupted")
                raise
            except BaseException as exc:
                self._finish_after_error(trial, "FAILED", f"{type(exc).__name__}: {exc}")
                ot.set_user_attr(ATTR_FAILED, True)
                raise
            if not Trial.finite(values):
                # Optuna records a NaN result as FAIL; the run says the same.
                self._finish(trial, "FAIL", "FAILED", values=values, error="objective returned NaN")
                ot.set_user_attr(ATTR_FAILED, True)
                return values if multi else values[0]
            self._finish(trial, "COMPLETE", "FINISHED", values=values)
            return values if multi else values[0]

        return run_trial

    def _finish(
        self,
        trial: Trial,
        state: str,
        status: str,
        *,
        values: Sequence[float] | None = None,
        error: str | None = None,
    ) -> None:
        ts = int(time.time() * 1000)
        metrics = trial.take_points()
        tags: dict[str, Any] = {TAG_STATE: state}
        if values is not None:
            tags[TAG_VALUES] = json.dumps([v if math.isfinite(v) else None for v in values])
            for key, v in zip(self.config.objectives, values, strict=True):
                if math.isfinite(v) and trial.metrics.get(key) != v:
                    metrics.append((key, v, trial.next_step(key), ts))
        if error:
            tags[TAG_ERROR] = error[:MAX_TAG_VALUE]
        extra = None
        if trial.extra_params:
            extra = _param_text(trial.extra_params)
            text = json.dumps(trial.params, default=str)
            if len(text) <= MAX_TAG_VALUE:
                tags[TAG_PARAMS] = text
        self.client.log_batch(trial.run_id, metrics=metrics, params=extra, tags=tags)
        self.client.set_terminated(trial.run_id, status)  # flushes points handed off before

    def _finish_after_error(self, trial: Trial, status: str, error: str) -> None:
        # The objective's exception is what the caller must see: if recording the
        # failure fails too (the store is down), say so in the log and let the
        # objective's exception through (the run then stays RUNNING).
        try:
            self._finish(trial, "FAIL", status, error=error)
        except Exception as exc:
            _log.warning("could not record the failure of trial %s: %s", trial.number, exc)

    # ------------------------------------------------------------------ dead trials

    def _mark_killed(self, trial: optuna.trial.FrozenTrial, reason: str) -> None:
        for run in self._trial_runs(trial.number):
            try:
                self.client.log_batch(run.id, tags={TAG_STATE: "FAIL", TAG_ERROR: reason})
                self.client.set_terminated(run.id, "KILLED")
            except (NotFound, OpsloopError):
                continue

    def _trial_runs(self, number: int) -> list[Any]:
        page = self.client.search_runs(
            [self.config.experiment_id],
            filter=f'tags."{TAG_TRIAL}" = "{number}"',
            parent_run_id=self.config.parent_run_id,
            max_results=100,
        )
        return list(page.runs)

    def retry(self, trial: optuna.trial.FrozenTrial) -> None:
        """Queue a trial whose worker died again, with the same params (up to ``max_retry``)."""
        import optuna

        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if self.config.max_retry is not None and len(history) > self.config.max_retry:
            return
        self.study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={k: v for k, v in trial.user_attrs.items() if k != ATTR_FAILED},
                system_attrs={"failed_trial": history[0], "retry_history": history},
            )
        )

    def on_stale(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna's heartbeat found ``trial`` stale (its worker stopped beating): record, retry."""
        self._mark_killed(trial, "the worker running this trial stopped (heartbeat lost)")
        self.retry(trial)

    def recover(self) -> list[int]:
        """Fail and queue again the RUNNING trials whose process on this machine is gone.

        Returns their numbers. Trials of live processes (another driver, a
        worker still running) are left alone; those of other machines go
        stale through the heartbeat.
        """
        import optuna

        TS = optuna.trial.TrialState
        running = self.study.get_trials(deepcopy=False, states=(TS.RUNNING,))
        recovered = []
        now = time.time()
        for t in running:
            runs = self._trial_runs(t.number)
            if runs:
                if not all(owner_is_dead(r.tags.get(TAG_OWNER)) for r in runs):
                    continue
            elif t.datetime_start is None or now - t.datetime_start.timestamp() < ORPHAN_AFTER_S:
                # No run yet: a live worker opens it right after sampling, so only
                # a trial that has had none for minutes was left by a dead one.
                continue
            try:
                self.study._storage.set_trial_state_values(t._trial_id, state=TS.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            self._mark_killed(t, "the process running this trial died")
            self.retry(t)
            recovered.append(t.number)
        return recovered

    # ------------------------------------------------------------------ counting

    def finished_count(self) -> int:
        """Trials that count towards ``n_trials``: complete, pruned, or failed by the objective.

        A trial failed because its worker died does not count: its retry does.
        """
        import optuna

        TS = optuna.trial.TrialState
        n = 0
        for t in self.study.get_trials(deepcopy=False, states=(TS.COMPLETE, TS.PRUNED, TS.FAIL)):
            if t.state != TS.FAIL or t.user_attrs.get(ATTR_FAILED):
                n += 1
        return n

    def optimize(
        self,
        objective: Objective,
        *,
        n_trials: int | None,
        timeout: float | None,
        n_jobs: int = 1,
        catch: tuple[type[Exception], ...] = (),
    ) -> None:
        """Run ``n_trials`` trials here (threads when ``n_jobs`` > 1), or until ``timeout``."""
        if n_trials is not None and n_trials <= 0:
            return
        if timeout is not None and timeout <= 0:
            return
        self.study.optimize(
            self.wrap(objective), n_trials=n_trials, timeout=timeout, n_jobs=n_jobs, catch=catch
        )


def check_objective(objective: Any) -> Objective:
    if not callable(objective):
        raise InvalidArgument(f"the objective must be callable, got {type(objective).__name__}")
    return objective  # type: ignore[no-any-return]
