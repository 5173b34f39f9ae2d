"""``Tracking``: the tracking room's client, the same embedded or against a server.

``opsloop.Client`` is this class plus every other room's property; rooms
that log runs use ``context.room(Tracking)``, which is the user's ``Client``
when one was built on that context.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import AlreadyExists, InvalidArgument, NotFound
from opsloop.tracking import _validation as V
from opsloop.tracking._backend import EmbeddedTracking, TrackingBackend
from opsloop.tracking._buffer import MetricBuffer, Point
from opsloop.tracking._remote import RemoteTracking
from opsloop.tracking._service import DEFAULT_EXPERIMENT
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LatestMetric,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
    RunStatus,
)

__all__ = ["Tracking"]


def _embedded(ctx: Context) -> TrackingBackend:
    return EmbeddedTracking(ctx)


def _remote(ctx: Context) -> TrackingBackend:
    return RemoteTracking(ctx)


class Tracking:
    """Experiments, runs, params, metrics, tags and artifacts (the tracking room's client).

    ``Client()`` works embedded on ``~/.opsloop`` (or ``OPSLOOP_HOME``);
    ``Client("http://host:5000")`` or ``OPSLOOP_TRACKING_URI`` talks to a
    server; ``Client(home="/path")`` uses another home folder. Metric points
    logged with ``log_metric``/``log_metrics`` are buffered and written in
    the background; ``flush()`` writes them now and raises if it cannot.
    """

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self.settings = ctx.settings
        self._backend: TrackingBackend = ctx.seam(_embedded, _remote)
        self._buffer = MetricBuffer(
            self._write_points,
            interval_s=self.settings.flush_interval_s,
            max_points=self.settings.flush_max_points,
            max_batch=min(100_000, self.settings.max_batch_metrics),
            spill_dir=self.settings.home / "unflushed",
        )
        self._steps: dict[tuple[str, str], int] = {}
        self._known_keys: set[str] = set()
        self._steps_lock = threading.Lock()
        self._closed = False

    @property
    def context(self) -> Context:
        """The context this client works in (settings, identity, storage)."""
        return self._context

    @property
    def tracking_uri(self) -> str:
        if self.settings.is_remote:
            return str(self.settings.tracking_uri)
        return str(self.settings.home)

    @property
    def is_remote(self) -> bool:
        return self.settings.is_remote

    @property
    def backend(self) -> TrackingBackend:
        return self._backend

    def _write_points(self, run_id: str, points: list[Point], batch_id: str) -> object:
        return self._backend.log_batch(run_id, metrics=points, batch_id=batch_id, validated=True)

    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        return self._backend.create_experiment(name, description, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._backend.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self._backend.get_experiment_by_name(name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        try:
            return self._backend.get_experiment_by_name(name)
        except NotFound:
            try:
                return self._backend.create_experiment(name)
            except AlreadyExists:
                return self._backend.get_experiment_by_name(name)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return self._backend.list_experiments(include_deleted=include_deleted)

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        return self._backend.update_experiment(experiment_id, name=name, description=description)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._backend.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag of an experiment (``NotFound`` if it has no such tag)."""
        self._backend.delete_experiment_tag(experiment_id, key)

    def delete_experiment(self, experiment_id: str) -> None:
        self._backend.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self._backend.restore_experiment(experiment_id)

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        experiment_id: str | None = None,
        *,
        experiment_name: str | None = None,
        name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        notes: str = "",
        user: str | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> Run:
        """Start a run in an experiment (by id, or by name, created if missing).

        ``params``, ``tags`` and ``metrics`` (first values, logged at step 0
        now, written synchronously) are stored with the run in one write:
        against a server, one request. ``log_metric`` without a step then
        goes on from step 1 for those keys.
        """
        if experiment_id is None:
            experiment_id = self.get_or_create_experiment(experiment_name or DEFAULT_EXPERIMENT).id
        points: list[Point] = []
        if metrics:
            ts = int(time.time() * 1000)
            for k, v in metrics.items():
                if k not in self._known_keys:
                    V.check_key("metric", k)
                points.append((k, v if type(v) is float else V.metric_value(k, v), 0, ts))
        run = self._backend.create_run(
            experiment_id,
            name=name,
            start_time=start_time,
            parent_run_id=parent_run_id,
            tags=tags,
            params=params,
            notes=notes,
            user=user if user is not None else self._context.user,
            metrics=points or None,
            validated=True,
        )
        if points:
            with self._steps_lock:
                for k, _, _, _ in points:
                    self._known_keys.add(k)
                    self._steps[(run.id, k)] = 1
        return run

    def get_run(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run:
        return self._backend.update_run(
            run_id, status=status, end_time=end_time, name=name, notes=notes
        )

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> Run:
        """Flush the run's points, then mark it finished (or failed/killed)."""
        self.flush(run_id)
        return self._backend.update_run(
            run_id, status=str(RunStatus(str(status).upper()).value), end_time=end_time
        )

    def delete_run(self, run_id: str, *, purge: bool = False) -> None:
        self._backend.delete_run(run_id, purge=purge)

    def restore_run(self, run_id: str) -> Run:
        return self._backend.restore_run(run_id)

    # ------------------------------------------------------------------ params / tags

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self._backend.log_batch(run_id, params={key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if params:
            self._backend.log_batch(run_id, params=dict(params))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._backend.log_batch(run_id, tags={key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if tags:
            self._backend.log_batch(run_id, tags=dict(tags))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._backend.delete_tag(run_id, key)

    # ------------------------------------------------------------------ metrics

    def _point(
        self, run_id: str, key: str, value: Any, step: int | None, timestamp: int | None
    ) -> Point:
        if key not in self._known_keys:
            V.check_key("metric", key)
            self._known_keys.add(key)
        if type(value) is not float:
            value = V.metric_value(key, value)
        # Everything is checked before a step number is used up, so a rejected
        # call leaves no gap; a bad point must fail here, never later in a flush.
        ts = (
            int(time.time() * 1000) if timestamp is None else V.int64("metric timestamp", timestamp)
        )
        if step is None:
            with self._steps_lock:
                sk = (run_id, key)
                step = self._steps.get(sk, 0)
                self._steps[sk] = step + 1
        elif type(step) is not int or not V.INT64_MIN <= step <= V.INT64_MAX:
            step = V.int64("metric step", step)
        return (key, value, step, ts)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Record one point. Without ``step``, steps count up per run and key from 0.

        The point is buffered and written in the background; with
        ``synchronous=True`` it is written before this returns.
        """
        point = self._point(run_id, key, value, step, timestamp)
        if synchronous:
            self._backend.log_batch(run_id, metrics=[point])
        else:
            self._buffer.add(run_id, point)

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        for k, v in metrics.items():  # reject the whole call before any step is used up
            if k not in self._known_keys:
                V.check_key("metric", k)
            if type(v) is not float:
                V.metric_value(k, v)
        points = [self._point(run_id, k, v, step, ts) for k, v in metrics.items()]
        if synchronous:
            self._backend.log_batch(run_id, metrics=points)
        else:
            self._buffer.extend(run_id, points)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[tuple[str, float, int, int]] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> int:
        """Write metrics (key, value, step, timestamp ms), params and tags now, in one transaction."""
        return self._backend.log_batch(
            run_id, metrics=list(metrics or []), params=params, tags=tags
        )

    def flush(self, run_id: str | None = None) -> int:
        """Write buffered points now; raise ``FlushError`` if any could not be written."""
        return self._buffer.flush(run_id)

    @property
    def pending_points(self) -> int:
        return self._buffer.pending

    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory:
        """A metric's points (flushing this client's buffered points of the run first)."""
        self.flush(run_id)
        return self._backend.get_metric_history(run_id, key, max_points=max_points, x=x)

    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]:
        self.flush(run_id)
        return self._backend.list_metric_keys(run_id)

    # ------------------------------------------------------------------ search / compare

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        include_deleted: bool = False,
        parent_run_id: str | None = None,
    ) -> RunPage:
        """Runs matching a filter such as ``metrics.f1 > 0.9 and params.model = "rf"``."""
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        return self._backend.search_runs(
            list(experiment_ids) if experiment_ids else None,
            filter=filter,
            order_by=list(order_by) if order_by else None,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
            parent_run_id=parent_run_id,
        )

    def iter_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Run]:
        """Every matching run, fetched page by page."""
        token: str | None = None
        while True:
            page = self.search_runs(experiment_ids, filter, order_by, page_size, token)
            yield from page.runs
            token = page.next_page_token
            if not token:
                return

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Runs side by side: params that differ, latest metrics, and per metric its
        ``goals`` entry (``maximize``/``minimize``) and ``best`` run."""
        return self._backend.compare_runs(list(run_ids))

    def set_metric_goal(self, experiment: str | Experiment | Run, key: str, goal: str) -> None:
        """Say whether metric ``key`` is better high or low in an experiment's runs.

        ``experiment`` is an experiment id, an ``Experiment``, or a ``Run`` (its
        experiment); ``goal`` is ``"maximize"`` or ``"minimize"``. Comparisons
        (``compare_runs``, ``opsloop runs compare``, the UI) use it to pick the
        best run; without it the goal is inferred from the name (``loss``,
        ``error``, ``latency``, ... minimize; anything else maximize). Stored as
        the experiment tag ``opsloop.goal.<key>``.
        """
        if isinstance(experiment, Run):
            experiment_id = experiment.experiment_id
        elif isinstance(experiment, Experiment):
            experiment_id = experiment.id
        else:
            experiment_id = experiment
        self._backend.set_metric_goal(experiment_id, key, goal)

    # ------------------------------------------------------------------ artifacts

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Upload one file into the run's artifacts (under ``artifact_path`` if given)."""
        p = Path(local_path)
        if not p.is_file():
            raise InvalidArgument(f"{p} is not a file")
        dest = V.artifact_path(artifact_path, allow_empty=True)
        with open(p, "rb") as fh:
            return self._backend.upload_artifact(run_id, f"{dest}/{p.name}" if dest else p.name, fh)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Upload a folder and everything below it."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument(f"{root} is not a folder")
        dest = V.artifact_path(artifact_path, allow_empty=True)
        out = []
        for f in sorted(x for x in root.rglob("*") if x.is_file()):
            rel = f.relative_to(root).as_posix()
            with open(f, "rb") as fh:
                out.append(
                    self._backend.upload_artifact(run_id, f"{dest}/{rel}" if dest else rel, fh)
                )
        return out

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        return self._backend.upload_artifact(run_id, artifact_file, io.BytesIO(text.encode()))

    def log_dict(self, run_id: str, obj: Any, artifact_file: str) -> ArtifactInfo:
        data = json.dumps(obj, indent=2, default=str, allow_nan=True)
        return self.log_text(run_id, data, artifact_file)

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        return self._backend.list_artifacts(run_id, path, recursive=recursive)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self._backend.read_artifact(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dest: str | os.PathLike[str] = "."
    ) -> Path:
        return self._backend.download_artifacts(run_id, path, dest)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush buffered points (raising if that fails); the context keeps its connections."""
        if self._closed:
            return
        self._closed = True
        self._buffer.close(flush=True)

    def __enter__(self) -> Tracking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tracking_uri!r})"
