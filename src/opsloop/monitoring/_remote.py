"""``RemoteMonitoring``: the monitoring backend over HTTP against ``opsloop server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from opsloop.monitoring.entities import Alert, Monitor, MonitorRun

if TYPE_CHECKING:
    from opsloop.core import Context, Transport

__all__ = ["RemoteMonitoring"]


def _q(s: str) -> str:
    return quote(s, safe="")


def _params(query: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.items() if v is not None
    }


class RemoteMonitoring:
    def __init__(self, ctx: Context) -> None:
        self._t: Transport = ctx.transport

    def ingest(
        self, predictions: list[dict[str, Any]], rollups: list[dict[str, Any]]
    ) -> dict[str, int]:
        # Not idempotent for the rollups (they add up): never retried blindly.
        body = {"predictions": predictions, "rollups": rollups}
        return self._t.post("/monitoring/ingest", body)  # type: ignore[no-any-return]

    def add_labels(self, labels: list[dict[str, Any]]) -> int:
        out = self._t.post("/monitoring/labels", {"labels": labels}, idempotent=True)
        return int(out["labelled"])

    def predictions(self, **query: Any) -> list[dict[str, Any]]:
        return self._t.get("/monitoring/predictions", _params(query))["predictions"]  # type: ignore[no-any-return]

    def metrics(self, **query: Any) -> list[dict[str, Any]]:
        return self._t.get("/monitoring/metrics", _params(query))["points"]  # type: ignore[no-any-return]

    def summary(self, deployment: str | None, *, since: int, until: int) -> dict[str, Any]:
        q = _params({"deployment": deployment, "since": since, "until": until})
        return self._t.get("/monitoring/summary", q)  # type: ignore[no-any-return]

    def scores(self, name: str, **query: Any) -> list[dict[str, Any]]:
        q = _params({**query, "name": name, "by": ",".join(query.get("by") or ())})
        return self._t.get("/monitoring/scores", q)["points"]  # type: ignore[no-any-return]

    def usage(self, **query: Any) -> list[dict[str, Any]]:
        q = _params({**query, "by": ",".join(query.get("by") or ())})
        return self._t.get("/monitoring/usage", q)["points"]  # type: ignore[no-any-return]

    def create_monitor(self, m: Monitor, *, secret: str | None, author: str) -> Monitor:
        body = {
            **m.model_dump(exclude={"has_secret", "last_window_end", "created_at", "created_by"}),
            "webhook_secret": secret,
        }
        return Monitor.model_validate(self._t.post("/monitoring/monitors", body))

    def get_monitor(self, name: str) -> Monitor:
        return Monitor.model_validate(self._t.get(f"/monitoring/monitors/{_q(name)}"))

    def list_monitors(self) -> list[Monitor]:
        out = self._t.get("/monitoring/monitors")["monitors"]
        return [Monitor.model_validate(m) for m in out]

    def delete_monitor(self, name: str) -> None:
        self._t.delete(f"/monitoring/monitors/{_q(name)}")

    def run_monitor(self, name: str, *, now: int | None, force: bool) -> MonitorRun:
        body = {"now": now, "force": force}
        return MonitorRun.model_validate(self._t.post(f"/monitoring/monitors/{_q(name)}/run", body))

    def alerts(self, *, monitor: str | None, state: str | None, limit: int) -> list[Alert]:
        q = _params({"monitor": monitor, "state": state, "limit": limit})
        return [Alert.model_validate(a) for a in self._t.get("/monitoring/alerts", q)["alerts"]]
