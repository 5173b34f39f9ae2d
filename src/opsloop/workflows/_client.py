"""``Workflows(client)``: run, resume, list and show workflows; schedules and event triggers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument, NotFound
from opsloop.tracking import Run, RunStatus, Tracking
from opsloop.workflows._backend import EmbeddedWorkflows
from opsloop.workflows._executors import EXECUTORS, make_executor
from opsloop.workflows._inbox import tick
from opsloop.workflows._load import AnyWorkflow, load_workflow
from opsloop.workflows._remote import RemoteWorkflows
from opsloop.workflows._run import TAGS, Run_, Runner
from opsloop.workflows.entities import EventRecord, StepResult, TriggerInfo, WorkflowResult

__all__ = ["DEFAULT_EXPERIMENT", "Workflows", "load_workflow"]

DEFAULT_EXPERIMENT = "workflows"
PARAMS_PATH = "workflow/params.json"


def _embedded(ctx: Context) -> Any:
    return EmbeddedWorkflows(ctx)


def _remote(ctx: Context) -> Any:
    return RemoteWorkflows(ctx)


class Workflows:
    """Run workflows (a run with a child run per step, cached soundly), list and show them."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self.tracking: Tracking = ctx.room(Tracking)
        self._backend: Any = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    @property
    def cache(self) -> Any:
        """The cache index (``get``, ``put``, ``count``, ``drop``)."""
        return self._backend.cache

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        workflow: str | AnyWorkflow,
        params: Mapping[str, Any] | None = None,
        *,
        executor: str = "inline",
        experiment: str = DEFAULT_EXPERIMENT,
        tags: Mapping[str, str] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> WorkflowResult:
        """Run ``workflow`` with ``params``; raises ``StepFailed`` (``.result``) if a step fails."""
        wf = load_workflow(workflow)
        values = wf.params_of(params)
        graph = wf.build(values)
        ex = make_executor(_check_executor(executor))
        parent = self.tracking.create_run(
            experiment_name=experiment,
            name=wf.name,
            params={k: repr(v)[:500] for k, v in values.items()},
            tags={
                TAGS.WORKFLOW: wf.name,
                TAGS.REF: wf.ref,
                TAGS.ROLE: "workflow",
                TAGS.EXECUTOR: ex.name,
                TAGS.DAG: json.dumps(graph.to_dict())[:60000],
                **dict(tags or {}),
            },
        )
        try:
            self.tracking.log_text(parent.id, json.dumps(values, default=str), PARAMS_PATH)
            if on_start is not None:
                on_start(parent.id)
            return Runner(self.tracking, self.cache, ex).run(
                Run_(parent.id, parent.experiment_id, wf.name), graph
            )
        except BaseException:
            if self.tracking.get_run(parent.id).status == RunStatus.RUNNING:
                self.tracking.set_terminated(parent.id, RunStatus.FAILED)
            raise
        finally:
            ex.close()

    def resume(
        self, run_id: str, *, executor: str | None = None, force: bool = False
    ) -> WorkflowResult:
        """Go on with a failed workflow run from its failed step, reusing the finished steps.

        ``force`` resumes a run still marked running (its process was killed)."""
        parent = self.tracking.get_run(run_id)
        if parent.tags.get(TAGS.ROLE) != "workflow":
            raise InvalidArgument(f"run {run_id} is not a workflow run")
        if parent.status == RunStatus.RUNNING and not force:
            raise InvalidArgument(f"workflow run {run_id} is still running")
        wf = load_workflow(parent.tags[TAGS.REF])
        values = json.loads(self.tracking.read_artifact(run_id, PARAMS_PATH))
        graph = wf.build(values)
        finished = {
            s.name: s for s in self.steps(run_id) if s.status in ("ran", "cached", "resumed")
        }
        ex = make_executor(executor or parent.tags.get(TAGS.EXECUTOR, "inline"))
        self.tracking.update_run(run_id, status=RunStatus.RUNNING.value)
        try:
            return Runner(self.tracking, self.cache, ex).run(
                Run_(parent.id, parent.experiment_id, wf.name), graph, finished
            )
        finally:
            ex.close()

    # -- reading -------------------------------------------------------------------------
    def list_runs(
        self, workflow: str | None = None, *, experiment: str = DEFAULT_EXPERIMENT, limit: int = 50
    ) -> list[Run]:
        """Workflow runs, newest first."""
        try:
            exp = self.tracking.get_experiment_by_name(experiment)
        except NotFound:
            return []
        flt = f'tags."{TAGS.ROLE}" = "workflow"'
        if workflow:
            flt += f' and tags."{TAGS.WORKFLOW}" = {json.dumps(workflow)}'
        page = self.tracking.search_runs(
            [exp.id], flt, order_by=["start_time DESC"], max_results=limit
        )
        return page.runs

    def steps(self, run_id: str) -> list[StepResult]:
        """The step runs of a workflow run, in the order they started (latest attempt per step)."""
        runs = self.tracking.search_runs(
            None, parent_run_id=run_id, max_results=10_000, order_by=["start_time ASC"]
        ).runs
        latest: dict[str, StepResult] = {}
        for r in runs:
            name = r.tags.get(TAGS.STEP, r.name)
            attempts = json.loads(r.tags.get(TAGS.ATTEMPTS, "[]") or "[]")
            cache = r.tags.get(TAGS.CACHE, "")
            status = {
                RunStatus.FINISHED: "cached" if cache == "hit" else "ran",
                RunStatus.FAILED: "failed",
            }.get(r.status, r.status.value.lower())
            rid = r.tags.get(TAGS.FROM, r.id) if cache == "hit" else r.id
            latest[name] = StepResult(
                name=name,
                step=r.tags.get(TAGS.STEP_REF, ""),
                run_id=rid,
                status=status,
                key=r.tags.get(TAGS.KEY, ""),
                digest=r.tags.get(TAGS.DIGEST),
                attempts=len(attempts),
                seconds=((r.end_time or r.start_time) - r.start_time) / 1000,
                error=r.tags.get(TAGS.ERROR, ""),
            )
        return list(latest.values())

    def show(self, run_id: str) -> dict[str, Any]:
        """A workflow run: the run, its DAG, and each step with cache status and lineage."""
        parent = self.tracking.get_run(run_id)
        if parent.tags.get(TAGS.ROLE) != "workflow":
            raise NotFound(f"run {run_id} is not a workflow run")
        runs = self.tracking.search_runs(
            None, parent_run_id=run_id, max_results=10_000, order_by=["start_time ASC"]
        ).runs
        return {
            "run": parent.model_dump(mode="json"),
            "dag": json.loads(parent.tags.get(TAGS.DAG, "{}") or "{}"),
            "steps": [
                {
                    "run_id": r.id,
                    "name": r.tags.get(TAGS.STEP, r.name),
                    "status": r.status.value,
                    "cache": r.tags.get(TAGS.CACHE, ""),
                    "cached_from": r.tags.get(TAGS.FROM),
                    "key": r.tags.get(TAGS.KEY, ""),
                    "digest": r.tags.get(TAGS.DIGEST),
                    "inputs": json.loads(r.tags.get(TAGS.INPUTS, "{}") or "{}"),
                    "attempts": json.loads(r.tags.get(TAGS.ATTEMPTS, "[]") or "[]"),
                    "error": r.tags.get(TAGS.ERROR, ""),
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                }
                for r in runs
            ],
        }

    def output(self, run_id: str, step: str) -> Any:
        """The output of ``step`` in the workflow run ``run_id`` (read from its artifact)."""
        for s in self.steps(run_id):
            if s.name == step and s.digest and s.run_id:
                value = Runner(self.tracking, self.cache, make_executor("inline"))._load(
                    s.run_id, s.digest
                )
                if value is not None:
                    return value
        raise NotFound(f"no output of step {step!r} in workflow run {run_id}")

    # -- schedules and event triggers ------------------------------------------------------
    def _workflow_ref(self, workflow: str | AnyWorkflow) -> str:
        wf = load_workflow(workflow)  # checks it loads now, not at the first firing
        return wf.ref

    def schedule(
        self,
        name: str,
        workflow: str | AnyWorkflow,
        cron: str,
        params: Mapping[str, Any] | None = None,
        *,
        executor: str = "inline",
    ) -> TriggerInfo:
        """Run ``workflow`` on a cron schedule (UTC) while ``opsloop server`` runs."""
        t: TriggerInfo = self._backend.triggers.create(
            name,
            self._workflow_ref(workflow),
            "cron",
            {"cron": cron},
            dict(params or {}),
            executor=_check_executor(executor),
            user=self._context.user,
        )
        return t

    def on(
        self,
        name: str,
        workflow: str | AnyWorkflow,
        event: str,
        params: Mapping[str, Any] | None = None,
        *,
        match: Mapping[str, Any] | None = None,
        every: int = 1,
        executor: str = "inline",
    ) -> TriggerInfo:
        """Run ``workflow`` when ``event`` happens (whose payload has the ``match`` fields),
        or on every ``every``-th such event (``feedback.created`` with ``every=50``)."""
        t: TriggerInfo = self._backend.triggers.create(
            name,
            self._workflow_ref(workflow),
            "event",
            {"event": event, "match": dict(match or {}), "every": every},
            dict(params or {}),
            executor=_check_executor(executor),
            user=self._context.user,
        )
        return t

    def emit(self, event: str, key: str, payload: Mapping[str, Any] | None = None) -> int:
        """Record an event (e.g. ``monitoring.alert``) under its idempotency ``key``; returns
        how many triggers it reached for the first time (0 when delivered before)."""
        return int(self._backend.triggers.emit(event, key, dict(payload or {})))

    def triggers(self) -> list[TriggerInfo]:
        return list(self._backend.triggers.all())

    def delete_trigger(self, name: str) -> None:
        self._backend.triggers.delete(name)

    def events(
        self, *, trigger: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRecord]:
        """The inbox, newest first: each event, its status and the run it started."""
        return list(self._backend.triggers.events(trigger=trigger, status=status, limit=limit))

    def dispatch(self) -> int:
        """One dispatcher pass in this process (what ``opsloop server`` does every few seconds)."""
        if self._context.is_remote:
            raise InvalidArgument("the server dispatches events itself (opsloop server)")
        return tick(self, self._backend.triggers)


def _check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise InvalidArgument(f"executor {name!r}: one of {', '.join(EXECUTORS)}")
    return name
