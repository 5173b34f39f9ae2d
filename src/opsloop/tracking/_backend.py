"""The tracking room's seam: one typed Protocol, embedded or over HTTP.

``EmbeddedTracking`` calls the services on the context's database and blob
store; ``RemoteTracking`` (``_remote.py``) calls a server through the
context's ``Transport``. ``Context.seam`` picks one from the settings, once;
the contract suite runs the same tests through both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from opsloop.tracking._artifact_service import ArtifactService
from opsloop.tracking._service import TrackingService
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LatestMetric,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
)

if TYPE_CHECKING:
    from opsloop.core import Context

__all__ = ["EmbeddedTracking", "MetricTuple", "TrackingBackend"]

MetricTuple = tuple[str, float, int, int]


class TrackingBackend(Protocol):
    """Everything the tracking client needs from storage, embedded or remote."""

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment: ...
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...
    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment: ...
    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None: ...
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...
    def set_metric_goal(self, experiment_id: str, key: str, goal: str) -> None: ...
    def delete_experiment(self, experiment_id: str) -> None: ...
    def restore_experiment(self, experiment_id: str) -> None: ...

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        notes: str = "",
        user: str = "",
        metrics: Sequence[MetricTuple] | None = None,
        validated: bool = False,
    ) -> Run:
        """Create a run with its first params, tags and metric points in one write."""

    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run: ...
    def delete_run(self, run_id: str, *, purge: bool = False) -> None: ...
    def restore_run(self, run_id: str) -> Run: ...
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricTuple] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        validated: bool = False,
    ) -> int:
        """Write metrics, params and tags in one transaction; ``validated`` skips re-checking points."""

    def delete_tag(self, run_id: str, key: str) -> None: ...
    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]: ...
    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
        parent_run_id: str | None = None,
    ) -> RunPage: ...
    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison: ...

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo: ...
    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]: ...
    def read_artifact(self, run_id: str, path: str) -> bytes: ...
    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path: ...

    def close(self) -> None:
        """Release connections."""


class EmbeddedTracking:
    """Talks to the database and artifact store directly (no server)."""

    def __init__(self, ctx: Context) -> None:
        self.tracking = ctx.room(tracking_service)
        self.artifacts = ctx.room(artifact_service)

    # Experiments and runs delegate one to one.
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        return self.tracking.create_experiment(name, description, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.tracking.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self.tracking.get_experiment_by_name(name)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        return self.tracking.list_experiments(include_deleted=include_deleted)

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        return self.tracking.update_experiment(experiment_id, name=name, description=description)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.tracking.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.tracking.delete_experiment_tag(experiment_id, key)

    def set_metric_goal(self, experiment_id: str, key: str, goal: str) -> None:
        self.tracking.set_metric_goal(experiment_id, key, goal)

    def delete_experiment(self, experiment_id: str) -> None:
        self.tracking.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.tracking.restore_experiment(experiment_id)

    def create_run(self, experiment_id: str, **kw: Any) -> Run:
        return self.tracking.create_run(experiment_id, **kw)

    def get_run(self, run_id: str) -> Run:
        return self.tracking.get_run(run_id)

    def update_run(self, run_id: str, **kw: Any) -> Run:
        return self.tracking.update_run(run_id, **kw)

    def delete_run(self, run_id: str, *, purge: bool = False) -> None:
        self.tracking.delete_run(run_id, purge=purge)

    def restore_run(self, run_id: str) -> Run:
        return self.tracking.restore_run(run_id)

    def log_batch(self, run_id: str, **kw: Any) -> int:
        return self.tracking.log_batch(run_id, **kw)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.tracking.delete_tag(run_id, key)

    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]:
        return self.tracking.list_metric_keys(run_id)

    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory:
        return self.tracking.get_metric_history(run_id, key, max_points=max_points, x=x)

    def search_runs(self, experiment_ids: Sequence[str] | None = None, **kw: Any) -> RunPage:
        return self.tracking.search_runs(experiment_ids, **kw)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        return self.tracking.compare_runs(run_ids)

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        return self.artifacts.put_stream(run_id, path, stream)

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        return self.artifacts.list(run_id, path, recursive=recursive)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        _, fh = self.artifacts.open(run_id, path)
        with fh:
            return fh.read()

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        return self.artifacts.download(run_id, path, dest)

    def close(self) -> None:
        """Nothing to release: the context owns the database."""


def tracking_service(ctx: Context) -> TrackingService:
    """The context's ``TrackingService`` (use as ``ctx.room(tracking_service)``)."""
    return TrackingService(ctx.database)


def artifact_service(ctx: Context) -> ArtifactService:
    """The context's ``ArtifactService`` (use as ``ctx.room(artifact_service)``)."""
    return ArtifactService(ctx.database, ctx.blobs, max_bytes=ctx.settings.max_artifact_bytes)
