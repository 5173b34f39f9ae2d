"""Fine-tuning jobs over the database; one transaction per public call.

The service validates and records a job, and starts its worker: a separate
process (``python -m opsloop.finetune._worker JOB_ID``) on this machine, so
the caller (the SDK, the CLI, a server request) returns at once and a killed
worker never takes the caller with it. Every state change is a conditional
update (``... WHERE state IN (...)``): a cancel and a worker's finish cannot
both win.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import ValidationError

from opsloop.datasets import Datasets
from opsloop.errors import Conflict, InvalidArgument, NotFound, OpsloopError
from opsloop.finetune._tables import finetune_jobs
from opsloop.finetune.entities import TERMINAL_STATES, FinetuneJob, JobSpec
from opsloop.registry import Registry
from opsloop.store import Database, now_ms
from opsloop.tracking import Tracking

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["JOB_TAG", "SETTINGS_ENV", "FinetuneService", "work_dir"]

JOB_TAG = "opsloop.finetune.job"
SETTINGS_ENV = "OPSLOOP_FINETUNE_SETTINGS"  # the worker's settings (JSON), from its launcher
CAUSAL_FLAVORS = ("transformers",)
# A worker on another machine, silent this long, counts as gone (``resume`` may restart it).
STALE_AFTER_MS = 120_000


def work_dir(ctx: Context, job_id: str) -> Path:
    """The job's folder on the machine that runs it: checkpoints, the adapter, worker logs."""
    return Path(ctx.settings.home) / "finetune" / job_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie (killed, not yet reaped) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


class FinetuneService:
    """Submit, list, cancel and resume jobs; the worker's state changes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def db(self) -> Database:
        return self.ctx.database

    # -- reading --------------------------------------------------------------------

    @staticmethod
    def _entity(row: Any) -> FinetuneJob:
        spec = row.spec if isinstance(row.spec, dict) else json.loads(row.spec)
        return FinetuneJob(
            id=row.id,
            run_id=row.run_id,
            method=row.method,
            state=row.state,
            spec=spec,
            output_model=row.output_model,
            result_version=row.result_version,
            error=row.error,
            host=row.host or "",
            pid=row.pid,
            attempts=row.attempts,
            step=row.step,
            max_steps=row.max_steps,
            checkpoint_step=row.checkpoint_step,
            resumed_from_step=row.resumed_from_step,
            elapsed_s=row.elapsed_s,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            heartbeat_at=row.heartbeat_at,
            created_by=row.created_by or "",
        )

    def get(self, job_id: str) -> FinetuneJob:
        with self.db.read() as conn:
            row = conn.execute(sa.select(finetune_jobs).where(finetune_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"fine-tuning job {job_id!r} not found", details={"job_id": job_id})
        return self._entity(row)

    def list(
        self, *, state: str | None = None, output_model: str | None = None, limit: int = 200
    ) -> list[FinetuneJob]:
        """Jobs newest first."""
        if state is not None and state not in (
            "validating",
            "queued",
            "running",
            *TERMINAL_STATES,
        ):
            raise InvalidArgument(f"unknown job state {state!r}", details={"field": "state"})
        q = sa.select(finetune_jobs).order_by(finetune_jobs.c.created_at.desc(), finetune_jobs.c.id)
        if state:
            q = q.where(finetune_jobs.c.state == state)
        if output_model:
            q = q.where(finetune_jobs.c.output_model == output_model)
        with self.db.read() as conn:
            rows = conn.execute(q.limit(max(1, min(limit, 10_000)))).all()
        return [self._entity(r) for r in rows]

    # -- submitting -----------------------------------------------------------------

    def submit(
        self, spec: JobSpec | dict[str, Any], *, start: bool = True, user: str | None = None
    ) -> FinetuneJob:
        """Record a job (``validating``), check its model and data, queue it and start its worker.

        Malformed arguments raise ``InvalidArgument`` and store nothing. A job
        whose base model or dataset does not fit is kept as ``failed`` with
        the reason in ``error`` (and its run ``FAILED``). ``start=False``
        leaves it ``queued`` for a worker run in the foreground
        (``opsloop finetune run``).
        """
        if not isinstance(spec, JobSpec):
            try:
                spec = JobSpec.model_validate(spec)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise InvalidArgument(
                    f"invalid fine-tuning job: {field}: {first['msg']}" if field else first["msg"],
                    details={"field": field},
                ) from None
        output = spec.output_model or _default_output(spec)
        job_id = uuid.uuid4().hex
        tracking = self.ctx.room(Tracking)
        run = tracking.create_run(
            experiment_name=spec.experiment,
            name=f"finetune-{spec.method}-{job_id[:8]}",
            tags={JOB_TAG: job_id, "opsloop.finetune.method": spec.method},
        )
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(
                finetune_jobs.insert().values(
                    id=job_id,
                    run_id=run.id,
                    method=spec.method,
                    state="validating",
                    spec=spec.model_dump(mode="json"),
                    output_model=output,
                    host="",
                    attempts=0,
                    step=0,
                    max_steps=spec.max_steps,
                    elapsed_s=0.0,
                    created_at=now,
                    updated_at=now,
                    created_by=user or self.ctx.user,
                )
            )
        try:
            pinned = self._validate(spec, output)
        except OpsloopError as exc:
            self._finish(job_id, "failed", error=f"[{exc.code}] {exc}", from_states=("validating",))
            tracking.set_terminated(run.id, "FAILED")
            return self.get(job_id)
        params = {k: v for k, v in pinned.model_dump(mode="json").items() if v is not None}
        params["target_modules"] = ",".join(pinned.target_modules)
        tracking.log_params(run.id, params)
        with contextlib.suppress(OpsloopError):  # lineage is a nicety: never fail a job on it
            self.ctx.room(Datasets).log_input(run.id, pinned.dataset, context="train")
        with self.db.write() as conn:
            conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state == "validating")
                .values(state="queued", spec=pinned.model_dump(mode="json"), updated_at=now_ms())
            )
        if start:
            self.launch(job_id)
        return self.get(job_id)

    def _validate(self, spec: JobSpec, output: str) -> JobSpec:
        """The spec with base model and dataset pinned, or the error that stops the job."""
        registry = self.ctx.room(Registry)
        base = registry.resolve(spec.base_model)
        if base.flavor not in CAUSAL_FLAVORS:
            raise InvalidArgument(
                f"base model {base.uri} is a {base.flavor!r} model; fine-tuning needs a "
                f"causal language model ({', '.join(CAUSAL_FLAVORS)})",
                details={"field": "base_model"},
            )
        if output == base.name:
            raise InvalidArgument(
                "output_model must differ from the base model's name (an adapter version "
                "is not a version of its base)",
                details={"field": "output_model"},
            )
        datasets = self.ctx.room(Datasets)
        version = datasets.get(spec.dataset)
        have = [c.name for c in version.columns]
        completion = spec.completion_column
        if spec.method == "sft" and completion is None:
            completion = next((c for c in ("completion", "response") if c in have), "completion")
        needed = spec.columns(completion)
        missing = [c for c in needed.values() if c not in have]
        if missing:
            raise InvalidArgument(
                f"dataset {version.ref} has no column(s) {missing} for {spec.method} "
                f"(it has {have})",
                details={"field": "dataset", "missing": missing},
            )
        if version.row_count < 1:
            raise InvalidArgument(
                f"dataset {version.ref} has no rows", details={"field": "dataset"}
            )
        update: dict[str, Any] = {"base_model": base.uri, "dataset": version.ref}
        if spec.method == "sft":
            update["completion_column"] = completion
        update["output_model"] = output
        return spec.model_copy(update=update)

    # -- the worker process ---------------------------------------------------------

    def launch(self, job_id: str) -> FinetuneJob:
        """Start the job's worker process on this machine (the job must be ``queued``)."""
        job = self.get(job_id)
        if job.state != "queued":
            raise Conflict(f"job {job_id} is {job.state}; only a queued job starts a worker")
        folder = work_dir(self.ctx, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env[SETTINGS_ENV] = self.ctx.settings.model_dump_json()
        log = (folder / f"worker-{job.attempts + 1}.log").open("ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "opsloop.finetune._worker", job_id],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the caller's terminal leaves it running
            )
        finally:
            log.close()
        self._procs[job_id] = proc
        with self.db.write() as conn:
            conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state == "queued")
                .values(
                    host=socket.gethostname(),
                    pid=proc.pid,
                    heartbeat_at=now_ms(),
                    updated_at=now_ms(),
                )
            )
        return self.get(job_id)

    def worker_alive(self, job: FinetuneJob) -> bool:
        """Whether the job's worker still runs (checked by pid here, by heartbeat elsewhere)."""
        proc = self._procs.get(job.id)
        if proc is not None and proc.poll() is not None:
            return False
        if job.pid is None:  # trained in the foreground of some program: its heartbeat says
            return job.heartbeat_at is not None and now_ms() - job.heartbeat_at < STALE_AFTER_MS
        if job.host == socket.gethostname():
            return _pid_alive(job.pid)
        return job.heartbeat_at is not None and now_ms() - job.heartbeat_at < STALE_AFTER_MS

    def cancel(self, job_id: str) -> FinetuneJob:
        """Cancel a job that has not finished: state ``cancelled``, its worker told to stop."""
        job = self.get(job_id)
        if job.done:
            raise Conflict(
                f"job {job_id} is already {job.state}; only an unfinished job can be cancelled",
                details={"state": job.state},
            )
        if not self._finish(job_id, "cancelled", from_states=("validating", "queued", "running")):
            job = self.get(job_id)
            raise Conflict(f"job {job_id} finished ({job.state}) before the cancel")
        if job.pid is not None and job.host == socket.gethostname() and _pid_alive(job.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(job.pid, signal.SIGTERM)  # the worker stops at its next step
        if job.run_id:
            with contextlib.suppress(OpsloopError):
                run = self.ctx.room(Tracking).get_run(job.run_id)
                if run.status in ("RUNNING", "SCHEDULED"):
                    self.ctx.room(Tracking).set_terminated(job.run_id, "KILLED")
        return self.get(job_id)

    def resume(self, job_id: str, *, start: bool = True) -> FinetuneJob:
        """Restart a failed job, or one whose worker died, from its last checkpoint."""
        job = self.get(job_id)
        if job.state in ("succeeded", "cancelled", "validating"):
            raise Conflict(
                f"job {job_id} is {job.state}; only a failed job or one whose worker died "
                "can be resumed",
                details={"state": job.state},
            )
        if job.state == "failed" and job.attempts == 0:
            raise Conflict(
                f"job {job_id} failed before it trained ({job.error}); submit a new job",
                details={"state": job.state},
            )
        if job.state in ("queued", "running") and self.worker_alive(job):
            raise Conflict(
                f"job {job_id} is {job.state} and its worker (pid {job.pid}) is alive",
                details={"state": job.state},
            )
        with self.db.write() as conn:
            moved = conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state == job.state)
                .values(state="queued", error=None, ended_at=None, pid=None, updated_at=now_ms())
            ).rowcount
        if not moved:
            raise Conflict(f"job {job_id} changed state while resuming; try again")
        if job.run_id:
            with contextlib.suppress(OpsloopError):
                self.ctx.room(Tracking).update_run(job.run_id, status="RUNNING", end_time=None)
        if start:
            self.launch(job_id)
        return self.get(job_id)

    # -- state changes made by the worker ---------------------------------------------

    def mark_running(self, job_id: str, *, pid: int | None) -> bool:
        """queued -> running; False when the job is no longer queued.

        ``pid``: the worker process's, which a cancel may SIGTERM; None when the
        job trains in the foreground of another program (a cancel is then seen
        at its next heartbeat, and the program lives on).
        """
        now = now_ms()
        with self.db.write() as conn:
            moved = conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state == "queued")
                .values(
                    state="running",
                    host=socket.gethostname(),
                    pid=pid,
                    attempts=finetune_jobs.c.attempts + 1,
                    started_at=sa.func.coalesce(finetune_jobs.c.started_at, now),
                    heartbeat_at=now,
                    updated_at=now,
                )
            ).rowcount
        return bool(moved)

    def progress(
        self,
        job_id: str,
        *,
        step: int | None = None,
        elapsed_s: float | None = None,
        checkpoint_step: int | None = None,
        resumed_from_step: int | None = None,
    ) -> str:
        """Record a running job's progress (a heartbeat); return its state now."""
        values: dict[str, Any] = {"heartbeat_at": now_ms(), "updated_at": now_ms()}
        if step is not None:
            values["step"] = step
        if elapsed_s is not None:
            values["elapsed_s"] = elapsed_s
        if checkpoint_step is not None:
            values["checkpoint_step"] = checkpoint_step
        if resumed_from_step is not None:
            values["resumed_from_step"] = resumed_from_step
        with self.db.write() as conn:
            conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state == "running")
                .values(**values)
            )
            state = conn.execute(
                sa.select(finetune_jobs.c.state).where(finetune_jobs.c.id == job_id)
            ).scalar_one()
        return str(state)

    def succeed(self, job_id: str, *, result_version: int) -> bool:
        return self._finish(job_id, "succeeded", result_version=result_version)

    def fail(self, job_id: str, error: str) -> bool:
        return self._finish(job_id, "failed", error=error[:20_000])

    def _finish(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        result_version: int | None = None,
        from_states: tuple[str, ...] = ("running",),
    ) -> bool:
        now = now_ms()
        values: dict[str, Any] = {"state": state, "ended_at": now, "updated_at": now}
        if error is not None:
            values["error"] = error
        if result_version is not None:
            values["result_version"] = result_version
        with self.db.write() as conn:
            moved = conn.execute(
                finetune_jobs.update()
                .where(finetune_jobs.c.id == job_id, finetune_jobs.c.state.in_(from_states))
                .values(**values)
            ).rowcount
        return bool(moved)

    def close(self) -> None:
        for proc in self._procs.values():  # reap finished workers; running ones keep running
            proc.poll()


def _default_output(spec: JobSpec) -> str:
    base = spec.base_model.removeprefix("models:/").split("@")[0].split("/")[0] or "model"
    return f"{base}-{spec.method}"[:256]
