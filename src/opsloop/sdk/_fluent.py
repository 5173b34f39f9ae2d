"""The fluent API: ``with opsloop.start_run(): opsloop.log_metric(...)``.

A module-level client on the program's shared context (``opsloop.core.
default_context()``, built from ``Settings()``, so ``OPSLOOP_TRACKING_URI``
and ``OPSLOOP_HOME`` apply) and a stack of active runs shared by the
process's threads (rooms read the innermost through
``opsloop.core.active_run_id()``). ``start_run`` inside an active run makes a
child run.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from opsloop.core import (
    Context,
    default_context,
    pop_active_run,
    push_active_run,
    set_default_context,
)
from opsloop.errors import InvalidArgument
from opsloop.sdk._client import Client, settings_for
from opsloop.tracking import SystemMetricsSampler
from opsloop.tracking.entities import ArtifactInfo, Run, RunStatus

_lock = threading.RLock()
_client: Client | None = None
_experiment_name: str | None = None
_stack: list[ActiveRun] = []


def get_client() -> Client:
    """The client the fluent API uses (created on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = Client(context=default_context())
        return _client


def set_tracking_uri(uri: str | None) -> None:
    """Point the fluent API at a server URL, a home folder, or (None) the default."""
    global _client
    with _lock:
        if _stack:
            raise InvalidArgument("cannot change the tracking URI while a run is active")
        if _client is not None:
            _client.close()
            _client.context.close()
        if uri:
            ctx = Context(settings_for(uri))
            set_default_context(ctx)
            _client = Client(context=ctx)
        else:
            set_default_context(None)
            _client = None


def set_experiment(name: str) -> str:
    """Make ``name`` the experiment new runs go to (created if missing); return its id."""
    global _experiment_name
    exp = get_client().get_or_create_experiment(name)
    _experiment_name = name
    return exp.id


class ActiveRun:
    """A started run; ends (FINISHED, or FAILED on an exception) when its ``with`` block exits."""

    def __init__(self, client: Client, run: Run, sampler: SystemMetricsSampler | None) -> None:
        self.client = client
        self.run_id = run.id
        self.info = run
        self._sampler = sampler
        self._ended = False

    @property
    def experiment_id(self) -> str:
        return self.info.experiment_id

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        if self._ended:
            return
        self._ended = True
        if self._sampler is not None:
            self._sampler.stop()
        with _lock:
            if self in _stack:
                _stack.remove(self)
        pop_active_run(self.run_id)
        self.client.set_terminated(self.run_id, status)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
            return
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        try:
            text = "".join(traceback.format_exception(exc_type, exc, tb))[-7000:]
            self.client.set_tag(self.run_id, "opsloop.error", text)
        finally:
            self.end(status)

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self.info.name!r})"


def start_run(
    run_name: str | None = None,
    *,
    experiment: str | None = None,
    experiment_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    notes: str = "",
    nested: bool | None = None,
    parent_run_id: str | None = None,
    log_system_metrics: bool = True,
    system_metrics_interval_s: float | None = None,
) -> ActiveRun:
    """Start a run and make it the active one.

    Inside another active run the new run becomes its child (pass
    ``nested=False`` to refuse that). System metrics are sampled every
    ``system_metrics_interval_s`` (settings default 10 s) unless
    ``log_system_metrics=False``.
    """
    client = get_client()
    with _lock:
        parent = _stack[-1] if _stack else None
    if parent is not None and nested is False:
        raise InvalidArgument(f"run {parent.run_id} is already active: end it, or pass nested=True")
    if parent_run_id is None and parent is not None:
        parent_run_id = parent.run_id
    exp_name = experiment or (None if experiment_id else _experiment_name)
    run = client.create_run(
        experiment_id,
        experiment_name=exp_name,
        name=run_name,
        tags=tags,
        params=params,
        notes=notes,
        parent_run_id=parent_run_id,
    )
    sampler = None
    if log_system_metrics:
        interval = system_metrics_interval_s or client.settings.system_metrics_interval_s
        rid = run.id
        sampler = SystemMetricsSampler(
            lambda m, step: client.log_metrics(rid, m, step=step), interval
        ).start()
    active = ActiveRun(client, run, sampler)
    with _lock:
        _stack.append(active)
    push_active_run(run.id)
    return active


def active_run() -> ActiveRun | None:
    with _lock:
        return _stack[-1] if _stack else None


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidArgument("no active run: call opsloop.start_run() first")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run (no-op when none is active)."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_param(key: str, value: Any) -> None:
    r = _require_run()
    r.client.log_param(r.run_id, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    r = _require_run()
    r.client.log_params(r.run_id, params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    r = _require_run()
    r.client.log_metric(r.run_id, key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    r = _require_run()
    r.client.log_metrics(r.run_id, metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    r = _require_run()
    r.client.set_tag(r.run_id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    r = _require_run()
    r.client.set_tags(r.run_id, tags)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> ArtifactInfo:
    r = _require_run()
    return r.client.log_artifact(r.run_id, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[ArtifactInfo]:
    r = _require_run()
    return r.client.log_artifacts(r.run_id, Path(local_dir), artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    r = _require_run()
    return r.client.log_text(r.run_id, text, artifact_file)


def log_dict(obj: Any, artifact_file: str) -> ArtifactInfo:
    r = _require_run()
    return r.client.log_dict(r.run_id, obj, artifact_file)


def flush() -> int:
    """Write every buffered metric point now; raise ``FlushError`` if that fails."""
    return get_client().flush()
