"""``RemoteWorkflows``: the cache index and triggers over ``/api/v1/workflows`` (see ``api``).

Steps run in the client's process (or its executor) either way; against a
server the cache index and the inbox are the server's, and the outputs are
run artifacts in the server's store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.errors import NotFound
from opsloop.workflows.entities import CacheEntry, EventRecord, TriggerInfo

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteWorkflows"]


def _q(name: str) -> str:
    return quote(name, safe="")


class RemoteCache:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def get(self, key: str) -> CacheEntry | None:
        try:
            return CacheEntry.model_validate(self._t.get(f"/workflows/cache/{_q(key)}"))
        except NotFound:
            return None

    def put(self, key: str, step: str, run_id: str, outputs: Mapping[str, Any]) -> None:
        self._t.put(
            f"/workflows/cache/{_q(key)}",
            {"step": step, "run_id": run_id, "outputs": dict(outputs)},
        )

    def hit(self, key: str) -> None:
        self._t.post(f"/workflows/cache/{_q(key)}/hits", {})

    def drop(self, keys: list[str]) -> int:
        return int(self._t.post("/workflows/cache/drop", {"keys": list(keys)})["dropped"])

    def count(self, step: str | None = None) -> int:
        params = {"step": step} if step else None
        return int(self._t.get("/workflows/cache", params=params)["count"])


class RemoteTriggers:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(
        self,
        name: str,
        workflow: str,
        kind: str,
        spec: Mapping[str, Any],
        params: Mapping[str, Any],
        *,
        executor: str = "inline",
        user: str = "",
    ) -> TriggerInfo:
        body = {
            "name": name,
            "workflow": workflow,
            "kind": kind,
            "spec": dict(spec),
            "params": dict(params),
            "executor": executor,
        }
        return TriggerInfo.model_validate(self._t.post("/workflows/triggers", body))

    def all(self) -> list[TriggerInfo]:
        data = self._t.get("/workflows/triggers")
        return [TriggerInfo.model_validate(t) for t in data["triggers"]]

    def delete(self, name: str) -> None:
        self._t.delete(f"/workflows/triggers/{_q(name)}")

    def emit(self, event: str, key: str, payload: Mapping[str, Any]) -> int:
        body = {"event": event, "key": key, "payload": dict(payload)}
        return int(self._t.post("/workflows/events", body)["recorded"])

    def events(
        self, *, trigger: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[EventRecord]:
        params: dict[str, Any] = {"limit": limit}
        if trigger:
            params["trigger"] = trigger
        if status:
            params["status"] = status
        data = self._t.get("/workflows/events", params=params)
        return [EventRecord.model_validate(e) for e in data["events"]]


class RemoteWorkflows:
    def __init__(self, ctx: Context) -> None:
        t: Transport = ctx.transport
        self.cache = RemoteCache(t)
        self.triggers = RemoteTriggers(t)
