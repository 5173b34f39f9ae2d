"""The monitoring room's backend seam: the operations, and the embedded backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.monitoring._alerts import run_monitor
from opsloop.monitoring._scores import score_trends
from opsloop.monitoring._service import MonitoringService
from opsloop.monitoring._usage import usage_points

if TYPE_CHECKING:
    from opsloop.core import Context
    from opsloop.monitoring.entities import Alert, Monitor, MonitorRun

__all__ = ["EmbeddedMonitoring", "MonitoringBackend"]


class MonitoringBackend(Protocol):
    def ingest(
        self, predictions: list[dict[str, Any]], rollups: list[dict[str, Any]]
    ) -> dict[str, int]: ...

    def add_labels(self, labels: list[dict[str, Any]]) -> int: ...

    def predictions(self, **query: Any) -> list[dict[str, Any]]: ...

    def metrics(self, **query: Any) -> list[dict[str, Any]]: ...

    def summary(self, deployment: str | None, *, since: int, until: int) -> dict[str, Any]: ...

    def scores(self, name: str, **query: Any) -> list[dict[str, Any]]: ...

    def usage(self, **query: Any) -> list[dict[str, Any]]: ...

    def create_monitor(self, m: Monitor, *, secret: str | None, author: str) -> Monitor: ...

    def get_monitor(self, name: str) -> Monitor: ...

    def list_monitors(self) -> list[Monitor]: ...

    def delete_monitor(self, name: str) -> None: ...

    def run_monitor(self, name: str, *, now: int | None, force: bool) -> MonitorRun: ...

    def alerts(self, *, monitor: str | None, state: str | None, limit: int) -> list[Alert]: ...


class EmbeddedMonitoring:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._svc = MonitoringService(ctx.database)

    @property
    def context(self) -> Context:
        return self._ctx

    def ingest(
        self, predictions: Iterable[Mapping[str, Any]], rollups: Iterable[Mapping[str, Any]]
    ) -> dict[str, int]:
        return self._svc.ingest(predictions, rollups)

    def add_labels(self, labels: list[dict[str, Any]]) -> int:
        return self._svc.add_labels(labels)

    def predictions(self, **query: Any) -> list[dict[str, Any]]:
        return self._svc.predictions(**query)

    def metrics(self, **query: Any) -> list[dict[str, Any]]:
        return self._svc.metrics(**query)

    def summary(self, deployment: str | None, *, since: int, until: int) -> dict[str, Any]:
        return self._svc.summary(deployment, since=since, until=until)

    def scores(self, name: str, **query: Any) -> list[dict[str, Any]]:
        return score_trends(self._ctx, name, **query)

    def usage(self, **query: Any) -> list[dict[str, Any]]:
        return usage_points(self._ctx, **query)

    def create_monitor(self, m: Monitor, *, secret: str | None, author: str) -> Monitor:
        return self._svc.create_monitor(m, secret=secret, author=author)

    def get_monitor(self, name: str) -> Monitor:
        return self._svc.get_monitor(name)

    def list_monitors(self) -> list[Monitor]:
        return self._svc.list_monitors()

    def delete_monitor(self, name: str) -> None:
        self._svc.delete_monitor(name)

    def run_monitor(self, name: str, *, now: int | None, force: bool) -> MonitorRun:
        return run_monitor(self._ctx, self._svc, name, now=now, force=force)

    def alerts(self, *, monitor: str | None, state: str | None, limit: int) -> list[Alert]:
        return self._svc.alerts(monitor=monitor, state=state, limit=limit)
