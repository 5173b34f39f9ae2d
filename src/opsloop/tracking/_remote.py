"""``RemoteTracking``: the tracking backend over HTTP against ``opsloop server``.

Requests go through the context's ``Transport`` (errors come back as the
embedded classes; retries only where repeating is safe: reads, and metric
batches, which carry a batch id the server de-duplicates).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

from opsloop.errors import NotFound, Unavailable
from opsloop.tracking import _validation as V
from opsloop.tracking._backend import MetricTuple
from opsloop.tracking._goals import check_goal, goal_tag
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
    from opsloop.core import Context, Transport

__all__ = ["RemoteTracking"]


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _rid(run_id: str) -> str:
    # Checked here too, so a malformed id fails the same way as embedded, not as a 404 route.
    return V.check_id("run id", run_id)


def _wire_points(points: Sequence[MetricTuple]) -> list[list[Any]]:
    """Points as JSON arrays; NaN travels as null, infinities as ``"Infinity"`` and
    ``"-Infinity"`` (JSON has no such numbers: orjson would write null, storing NaN)."""
    return [[m[0], V.wire_value(m[1]), m[2], m[3]] for m in points]


def _wire_values(values: list[Any]) -> list[float | None]:
    """A history's values from the wire: ``"Infinity"`` / ``"-Infinity"`` back to floats."""
    if any(isinstance(v, str) for v in values):
        return [float(v) if isinstance(v, str) else v for v in values]
    return values


def _eid(experiment_id: str) -> str:
    return V.check_id("experiment id", experiment_id)


class RemoteTracking:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    # -- experiments -----------------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {
            "name": name,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        return Experiment.model_validate(self._t.call("POST", "/experiments", json=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self._t.call("GET", f"/experiments/{_eid(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment:
        V.check_name("experiment name", name)
        return Experiment.model_validate(self._t.call("GET", f"/experiments/by-name/{_q(name)}"))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        out: list[Experiment] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"include_deleted": include_deleted, "max_results": 10_000}
            if token:
                params["page_token"] = token
            data = self._t.call("GET", "/experiments", params=params)
            out.extend(Experiment.model_validate(e) for e in data["experiments"])
            token = data.get("next_page_token")
            if not token:
                return out

    def update_experiment(
        self, experiment_id: str, *, name: str | None = None, description: str | None = None
    ) -> Experiment:
        body = {
            k: v for k, v in {"name": name, "description": description}.items() if v is not None
        }
        return Experiment.model_validate(
            self._t.call("PATCH", f"/experiments/{_eid(experiment_id)}", json=body)
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        V.check_key("tag", key)
        self._t.call(
            "PUT",
            f"/experiments/{_eid(experiment_id)}/tags/{_q(key)}",
            json={"value": V.tag_value(value)},
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        V.check_key("tag", key)
        self._t.call("DELETE", f"/experiments/{_eid(experiment_id)}/tags/{_q(key)}")

    def set_metric_goal(self, experiment_id: str, key: str, goal: str) -> None:
        # The goal is the experiment tag ``opsloop.goal.<key>`` (``tracking/_goals.py``);
        # checked here too, so a bad key or goal fails before the request.
        self.set_experiment_tag(experiment_id, goal_tag(key), check_goal(goal))

    def delete_experiment(self, experiment_id: str) -> None:
        self._t.call("DELETE", f"/experiments/{_eid(experiment_id)}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._t.call("POST", f"/experiments/{_eid(experiment_id)}/restore", idempotent=True)

    # -- runs ------------------------------------------------------------------------------

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
        # Only what differs from the server's defaults travels.
        body: dict[str, Any] = {"experiment_id": experiment_id}
        if name is not None:
            body["name"] = name
        if start_time is not None:
            body["start_time"] = start_time
        if parent_run_id is not None:
            body["parent_run_id"] = parent_run_id
        if tags:
            body["tags"] = {k: V.tag_value(v) for k, v in tags.items()}
        if params:
            body["params"] = {k: V.param_value(v) for k, v in params.items()}
        if metrics:
            body["metrics"] = _wire_points(metrics if validated else V.metric_points(metrics))
        if notes:
            body["notes"] = notes
        if user:
            body["user"] = user
        # Validated straight from the answer's bytes (no dicts in between).
        return Run.model_validate_json(self._t.call_bytes("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return Run.model_validate(self._t.call("GET", f"/runs/{_rid(run_id)}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run:
        body = {
            k: v
            for k, v in {
                "status": status,
                "end_time": end_time,
                "name": name,
                "notes": notes,
            }.items()
            if v is not None
        }
        return Run.model_validate(
            self._t.call("PATCH", f"/runs/{_rid(run_id)}", json=body, idempotent=True)
        )

    def delete_run(self, run_id: str, *, purge: bool = False) -> None:
        self._t.call("DELETE", f"/runs/{_rid(run_id)}", params={"purge": purge})

    def restore_run(self, run_id: str) -> Run:
        return Run.model_validate(
            self._t.call("POST", f"/runs/{_rid(run_id)}/restore", idempotent=True)
        )

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
        points = metrics or []
        if not validated:
            points = V.metric_points(points)
        body: dict[str, Any] = {
            "metrics": _wire_points(points),
            "params": {k: V.param_value(v) for k, v in (params or {}).items()},
            "tags": {k: V.tag_value(v) for k, v in (tags or {}).items()},
        }
        if batch_id:
            body["batch_id"] = batch_id
        data = self._t.call(
            "POST", f"/runs/{_rid(run_id)}/batch", json=body, idempotent=batch_id is not None
        )
        return int(data["points_written"])

    def delete_tag(self, run_id: str, key: str) -> None:
        V.check_key("tag", key)
        self._t.call("DELETE", f"/runs/{_rid(run_id)}/tags/{_q(key)}")

    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]:
        return self.get_run(run_id).metrics

    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory:
        params: dict[str, Any] = {"key": key, "x": x}
        if max_points is not None:
            params["max_points"] = max_points
        data = self._t.call("GET", f"/runs/{_rid(run_id)}/metric-history", params=params)
        data["values"] = _wire_values(data["values"])
        return MetricHistory.model_construct(**data)

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
    ) -> RunPage:
        body = {
            "experiment_ids": list(experiment_ids or []),
            "filter": filter,
            "order_by": list(order_by or []),
            "max_results": max_results,
            "page_token": page_token,
            "include_deleted": include_deleted,
            "parent_run_id": parent_run_id,
        }
        # Validated straight from the JSON bytes: a page of runs decodes in
        # about half the time of json-to-dicts then dicts-to-models.
        data = self._t.call_bytes("POST", "/runs/search", json=body, idempotent=True)
        return RunPage.model_validate_json(data)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        return RunComparison.model_validate(
            self._t.call("POST", "/runs/compare", json={"run_ids": list(run_ids)}, idempotent=True)
        )

    # -- artifacts ----------------------------------------------------------------------------

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        path = V.artifact_path(path)
        url = f"/runs/{_rid(run_id)}/artifacts/{quote(path)}"
        data = self._t.call(
            "PUT", url, content=stream, headers={"Content-Type": "application/octet-stream"}
        )
        return ArtifactInfo.model_validate(data)

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        data = self._t.call(
            "GET", f"/runs/{_rid(run_id)}/artifacts", params={"path": path, "recursive": recursive}
        )
        return [ArtifactInfo.model_validate(a) for a in data]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        path = V.artifact_path(path)
        return self._t.call_bytes("GET", f"/runs/{_rid(run_id)}/artifacts/{quote(path)}")

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        path = V.artifact_path(path, allow_empty=True)
        dest_p = Path(dest)
        items = self.list_artifacts(run_id, path, recursive=True)
        if len(items) == 1 and items[0].path == path:
            target = dest_p / Path(path).name
            self._download_one(run_id, path, target)
            return target
        if not items:
            raise NotFound(f"run {run_id!r} has no artifact {path!r}")
        base = dest_p / (Path(path).name if path else "")
        for it in items:
            rel = it.path[len(path) + 1 :] if path else it.path
            self._download_one(run_id, it.path, base / rel)
        return base

    def _download_one(self, run_id: str, path: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        url = f"/runs/{_rid(run_id)}/artifacts/{quote(path)}"
        try:
            with self._t.stream("GET", url) as resp, open(tmp, "wb") as out:
                for block in resp.iter_bytes(1024 * 1024):
                    out.write(block)
        except httpx.TransportError as exc:
            raise Unavailable(f"download from {self._t.base_url} failed: {exc}") from exc
        os.replace(tmp, target)

    def close(self) -> None:
        """Nothing to release: the context owns the transport."""
