"""``RestBackend``: the tracking SDK over HTTP against ``opsloop server``.

Errors come back as the same exception classes the embedded backend raises.
Connection failures are retried with backoff; a request that may have reached
the server is retried only when repeating it is safe (reads, and metric
batches, which carry a batch id the server de-duplicates).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx
import orjson

from opsloop.errors import OpsloopError, Unavailable, error_from_payload
from opsloop.sdk._backend import Backend, MetricTuple
from opsloop.settings import Settings
from opsloop.tracking import _validation as V
from opsloop.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LatestMetric,
    MetricHistory,
    Run,
    RunComparison,
    RunPage,
)

_RETRY_STATUS = {502, 503, 504}


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _rid(run_id: str) -> str:
    # Checked here too, so a malformed id fails the same way as embedded, not as a 404 route.
    return V.check_id("run id", run_id)


def _eid(experiment_id: str) -> str:
    return V.check_id("experiment id", experiment_id)


class RestBackend(Backend):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base = str(settings.tracking_uri).rstrip("/")
        self.base_url = base
        self._http = httpx.Client(
            base_url=f"{base}/api/v1",
            timeout=httpx.Timeout(
                settings.http_timeout_s, connect=min(10.0, settings.http_timeout_s)
            ),
            headers={"User-Agent": "opsloop-python"},
        )
        self.retries = max(0, settings.http_retries)

    # -- transport ---------------------------------------------------------------

    def _request(
        self, method: str, url: str, *, idempotent: bool | None = None, **kw: Any
    ) -> httpx.Response:
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        if "json" in kw:
            kw["content"] = orjson.dumps(kw.pop("json"))
            kw.setdefault("headers", {})["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, url, **kw)
            except httpx.ConnectError as exc:
                # Never reached the server: always safe to retry.
                if attempt >= self.retries:
                    raise Unavailable(
                        f"cannot reach the opsloop server at {self.base_url}: {exc}"
                    ) from exc
            except (
                httpx.TimeoutException,
                httpx.RemoteProtocolError,
                httpx.ReadError,
                httpx.WriteError,
            ) as exc:
                if not idempotent or attempt >= self.retries:
                    raise Unavailable(
                        f"the opsloop server at {self.base_url} did not answer: {exc}"
                    ) from exc
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code in _RETRY_STATUS and idempotent and attempt < self.retries:
                    pass
                else:
                    raise self._error(resp)
            attempt += 1
            time.sleep(min(4.0, 0.2 * 2**attempt) * (0.5 + random.random()))
            if "content" in kw and hasattr(kw["content"], "seek"):
                kw["content"].seek(0)

    @staticmethod
    def _error(resp: httpx.Response) -> OpsloopError:
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        return error_from_payload(payload, resp.status_code)

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        resp = self._request(method, url, **kw)
        if resp.status_code == 204 or not resp.content:
            return None
        return orjson.loads(resp.content)

    # -- experiments -----------------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {
            "name": name,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
        }
        return Experiment.model_validate(self._json("POST", "/experiments", json=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self._json("GET", f"/experiments/{_eid(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment:
        V.check_name("experiment name", name)
        return Experiment.model_validate(self._json("GET", f"/experiments/by-name/{_q(name)}"))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        out: list[Experiment] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"include_deleted": include_deleted, "max_results": 10_000}
            if token:
                params["page_token"] = token
            data = self._json("GET", "/experiments", params=params)
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
            self._json("PATCH", f"/experiments/{_eid(experiment_id)}", json=body)
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        V.check_key("tag", key)
        self._json(
            "PUT",
            f"/experiments/{_eid(experiment_id)}/tags/{_q(key)}",
            json={"value": V.tag_value(value)},
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._json("DELETE", f"/experiments/{_eid(experiment_id)}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._json("POST", f"/experiments/{_eid(experiment_id)}/restore", idempotent=True)

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
    ) -> Run:
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "start_time": start_time,
            "parent_run_id": parent_run_id,
            "tags": {k: V.tag_value(v) for k, v in (tags or {}).items()},
            "params": {k: V.param_value(v) for k, v in (params or {}).items()},
            "notes": notes,
            "user": user,
        }
        return Run.model_validate(self._json("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return Run.model_validate(self._json("GET", f"/runs/{_rid(run_id)}"))

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
            self._json("PATCH", f"/runs/{_rid(run_id)}", json=body, idempotent=True)
        )

    def delete_run(self, run_id: str, *, purge: bool = False) -> None:
        self._json("DELETE", f"/runs/{_rid(run_id)}", params={"purge": purge})

    def restore_run(self, run_id: str) -> Run:
        return Run.model_validate(
            self._json("POST", f"/runs/{_rid(run_id)}/restore", idempotent=True)
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
        mets = []
        for m in points:
            v = m[1]
            mets.append([m[0], None if isinstance(v, float) and v != v else v, m[2], m[3]])
        body: dict[str, Any] = {
            "metrics": mets,
            "params": {k: V.param_value(v) for k, v in (params or {}).items()},
            "tags": {k: V.tag_value(v) for k, v in (tags or {}).items()},
        }
        if batch_id:
            body["batch_id"] = batch_id
        data = self._json(
            "POST", f"/runs/{_rid(run_id)}/batch", json=body, idempotent=batch_id is not None
        )
        return int(data["points_written"])

    def delete_tag(self, run_id: str, key: str) -> None:
        V.check_key("tag", key)
        self._json("DELETE", f"/runs/{_rid(run_id)}/tags/{_q(key)}")

    def list_metric_keys(self, run_id: str) -> dict[str, LatestMetric]:
        return self.get_run(run_id).metrics

    def get_metric_history(
        self, run_id: str, key: str, *, max_points: int | None = None, x: str = "step"
    ) -> MetricHistory:
        params: dict[str, Any] = {"key": key, "x": x}
        if max_points is not None:
            params["max_points"] = max_points
        data = self._json("GET", f"/runs/{_rid(run_id)}/metric-history", params=params)
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
        resp = self._request("POST", "/runs/search", json=body, idempotent=True)
        return RunPage.model_validate_json(resp.content)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        return RunComparison.model_validate(
            self._json("POST", "/runs/compare", json={"run_ids": list(run_ids)}, idempotent=True)
        )

    # -- artifacts ----------------------------------------------------------------------------

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        path = V.artifact_path(path)
        url = f"/runs/{_rid(run_id)}/artifacts/{quote(path)}"
        data = self._json(
            "PUT", url, content=stream, headers={"Content-Type": "application/octet-stream"}
        )
        return ArtifactInfo.model_validate(data)

    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]:
        data = self._json(
            "GET", f"/runs/{_rid(run_id)}/artifacts", params={"path": path, "recursive": recursive}
        )
        return [ArtifactInfo.model_validate(a) for a in data]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        path = V.artifact_path(path)
        return self._request("GET", f"/runs/{_rid(run_id)}/artifacts/{quote(path)}").content

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        path = V.artifact_path(path, allow_empty=True)
        dest_p = Path(dest)
        items = self.list_artifacts(run_id, path, recursive=True)
        if len(items) == 1 and items[0].path == path:
            target = dest_p / Path(path).name
            self._download_one(run_id, path, target)
            return target
        if not items:
            from opsloop.errors import NotFound

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
            with self._http.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._error(resp)
                with open(tmp, "wb") as out:
                    for block in resp.iter_bytes(1024 * 1024):
                        out.write(block)
        except httpx.TransportError as exc:
            raise Unavailable(f"download from {self.base_url} failed: {exc}") from exc
        os.replace(tmp, target)

    def close(self) -> None:
        self._http.close()
