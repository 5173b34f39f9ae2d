"""The seam between the SDK and storage: one interface, embedded or over HTTP.

``EmbeddedBackend`` calls the services directly on the home folder's
database; ``RestBackend`` (``_rest.py``) calls a server. The contract test
suite runs the same tests through both.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from opsloop.settings import Settings
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LatestMetric,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
)

MetricTuple = tuple[str, float, int, int]


class Backend(ABC):
    """Everything the tracking SDK needs from a store."""

    @abstractmethod
    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment: ...
    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment: ...
    @abstractmethod
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...
    @abstractmethod
    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment: ...
    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None: ...
    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...
    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
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
    ) -> Run: ...
    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...
    @abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run: ...
    @abstractmethod
    def delete_run(self, run_id: str, *, purge: bool = False) -> None: ...
    @abstractmethod
    def restore_run(self, run_id: str) -> Run: ...
    @abstractmethod
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

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...
    @abstractmethod
    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]: ...
    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory: ...
    @abstractmethod
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
    @abstractmethod
    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison: ...

    @abstractmethod
    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo: ...
    @abstractmethod
    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]: ...
    @abstractmethod
    def read_artifact(self, run_id: str, path: str) -> bytes: ...
    @abstractmethod
    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class EmbeddedBackend(Backend):
    """Talks to the database and artifact store directly (no server)."""

    def __init__(self, settings: Settings) -> None:
        from opsloop.store import Database, open_artifact_store
        from opsloop.tracking import ArtifactService, TrackingService

        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self.db.ensure_schema(create_if_empty=True)
        self.store = open_artifact_store(
            settings.resolved_artifact_uri,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
        self.tracking = TrackingService(self.db)
        self.artifacts = ArtifactService(self.db, self.store, max_bytes=settings.max_artifact_bytes)

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
        self.db.dispose()
