"""``Monitoring(context)``: the monitoring SDK, the same embedded or against a server."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opsloop.core import Context, HasContext, context_of
from opsloop.datasets import Datasets, DatasetVersion
from opsloop.errors import InvalidArgument
from opsloop.feedback import Feedback
from opsloop.monitoring._backend import EmbeddedMonitoring, MonitoringBackend
from opsloop.monitoring._remote import RemoteMonitoring
from opsloop.monitoring._report import drift_report, feedback_series, performance_series
from opsloop.monitoring.entities import Alert, Monitor, MonitorRun

__all__ = ["Monitoring"]


def _embedded(ctx: Context) -> MonitoringBackend:
    return EmbeddedMonitoring(ctx)


def _remote(ctx: Context) -> MonitoringBackend:
    return RemoteMonitoring(ctx)


def _now() -> int:
    return int(time.time() * 1000)


class Monitoring:
    """Prediction log, labels, live metrics, drift, performance, monitors and alerts."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        self._ctx = context_of(context)
        self._backend: MonitoringBackend = self._ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._ctx

    # ------------------------------------------------------------------ the log

    def ingest(
        self, predictions: Sequence[Mapping[str, Any]], rollups: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, int]:
        """Store logged prediction rows and add per-minute counters (what the serving hook sends)."""
        return self._backend.ingest([dict(p) for p in predictions], [dict(r) for r in rollups])

    def label(self, request_id: str, label: Any, *, row: int = 0) -> None:
        """The ground truth of one served row (by the ``X-Opsloop-Response-Id`` it answered)."""
        self._backend.add_labels([{"request_id": request_id, "row_index": row, "label": label}])

    def labels(self, labels: Iterable[Mapping[str, Any]]) -> int:
        """Many labels: ``{"request_id", "label", "row_index"?}`` each; returns how many."""
        return self._backend.add_labels([dict(x) for x in labels])

    def predictions(
        self,
        deployment: str | None = None,
        *,
        since: int | None = None,
        until: int | None = None,
        version: str | None = None,
        labelled: bool | None = None,
        limit: int = 1000,
    ) -> builtins.list[dict[str, Any]]:
        """Logged rows, newest first, each with its label (None until it arrives)."""
        return self._backend.predictions(
            deployment=deployment,
            since=since,
            until=until,
            version=version,
            labelled=labelled,
            limit=limit,
        )

    def export(
        self,
        deployment: str,
        name: str,
        *,
        since: int | None = None,
        until: int | None = None,
        labelled: bool | None = None,
        limit: int = 1_000_000,
        message: str = "",
    ) -> DatasetVersion:
        """The logged rows as a dataset version: input columns, ``prediction``, ``label``,
        ``request_id``, ``model_version``, ``ts`` (oldest first)."""
        rows = self.predictions(
            deployment, since=since, until=until, labelled=labelled, limit=limit
        )
        if not rows:
            raise InvalidArgument(f"no logged predictions of {deployment!r} in that window")
        records = [
            {
                **r["inputs"],
                "prediction": r["output"],
                "label": r["label"],
                "request_id": r["request_id"],
                "model_version": r["version"],
                "ts": r["ts"],
            }
            for r in reversed(rows)
        ]
        return Datasets(self._ctx).create(
            name, records, message=message or f"prediction log of {deployment}"
        )

    # ------------------------------------------------------------------ metrics

    def metrics(
        self,
        deployment: str | None = None,
        *,
        since: int | None = None,
        until: int | None = None,
        bucket_s: int = 60,
        by_version: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        """Request rate, errors, latency percentiles, tokens and cost per time bucket."""
        until = _now() if until is None else until
        since = until - 3_600_000 if since is None else since
        return self._backend.metrics(
            deployment=deployment,
            since=since,
            until=until,
            bucket_s=bucket_s,
            by_version=by_version,
        )

    def summary(
        self, deployment: str | None = None, *, since: int | None = None, until: int | None = None
    ) -> dict[str, Any]:
        """The same figures over one window (default: the last 5 minutes)."""
        until = _now() if until is None else until
        since = until - 300_000 if since is None else since
        return self._backend.summary(deployment, since=since, until=until)

    def usage(
        self,
        *,
        route: str | None = None,
        model: str | None = None,
        since: int | None = None,
        until: int | None = None,
        bucket_s: int = 300,
        by: Sequence[str] = ("route", "model"),
    ) -> builtins.list[dict[str, Any]]:
        """The LLM gateway's usage as live metrics (default: the last hour): per bucket and per
        route and/or model, requests, errors, tokens, cost (US dollars), cache hits, misses and
        hit rate, guardrail hits (blocked, redacted or flagged) and blocks, mean latency."""
        until = _now() if until is None else until
        since = until - 3_600_000 if since is None else since
        return self._backend.usage(
            since=since, until=until, bucket_s=bucket_s, by=list(by), route=route, model=model
        )

    # ------------------------------------------------------------------ drift, performance

    def drift(
        self,
        deployment: str,
        *,
        reference: str | DatasetVersion,
        since: int | None = None,
        until: int | None = None,
        features: Sequence[str] | None = None,
        limit: int = 1_000_000,
    ) -> dict[str, Any]:
        """Drift of the logged inputs in a window against a dataset version (the training data).

        Per feature: the test, p-value, effect size and decision; the drifted
        share and the input's decision (see ``opsloop.monitoring._drift``)."""
        return drift_report(
            self._ctx,
            self.predictions,
            deployment,
            reference=reference,
            since=since,
            until=until,
            features=features,
            limit=limit,
        )

    def performance(
        self,
        deployment: str,
        *,
        since: int | None = None,
        until: int | None = None,
        bucket_s: int = 3600,
        limit: int = 1_000_000,
    ) -> builtins.list[dict[str, Any]]:
        """Per bucket: accuracy estimated before labels arrive, and realised as they join.

        Estimated accuracy is the mean top-class probability of rows answered
        with class probabilities (``/v1/predict_proba``: right for calibrated
        classifiers); realised accuracy is the share of labelled rows whose
        predicted class (the top probability's index, or the predicted value)
        equals the label."""
        rows = self.predictions(deployment, since=since, until=until, limit=limit)
        return performance_series(rows, bucket_s)

    def feedback(
        self,
        deployment: str,
        *,
        name: str = "thumbs",
        since: int | None = None,
        until: int | None = None,
        bucket_s: int = 3600,
        limit: int = 100_000,
    ) -> builtins.list[dict[str, Any]]:
        """End users' feedback on the logged answers (``POST /v1/feedback`` of the served app)
        per time bucket and model version: the feedback rate and the mean score of ``name``."""
        rows = self.predictions(deployment, since=since, until=until, limit=limit)
        annotations = Feedback(self._ctx).list(name=name, limit=min(limit, 100_000))
        return feedback_series(rows, annotations, bucket_s)

    def scores(
        self,
        name: str,
        *,
        since: int | None = None,
        until: int | None = None,
        bucket_s: int = 3600,
        by: Sequence[str] = ("prompt", "model"),
        source: str | None = None,
        limit: int = 10_000,
    ) -> builtins.list[dict[str, Any]]:
        """Judge-score and feedback trends of traced LLM apps: per bucket of trace start (default
        the last day) and per prompt version (``qa@2``) and/or model, the count and mean of the
        annotations of score ``name`` (booleans as 1/0) from ``source`` (human, llm_judge,
        code; default all) on the traces; see ``opsloop.monitoring._scores``."""
        until = _now() if until is None else until
        since = until - 86_400_000 if since is None else since
        return self._backend.scores(
            name,
            since=since,
            until=until,
            bucket_s=bucket_s,
            by=list(by),
            source=source,
            limit=limit,
        )

    # ------------------------------------------------------------------ monitors, alerts

    def create_monitor(
        self,
        name: str,
        *,
        deployment: str,
        kind: str = "metric",
        metric: str | None = None,
        op: str = ">",
        threshold: float = 0.0,
        reference: str | None = None,
        features: Sequence[str] | None = None,
        text: str = "input",
        interval_s: int = 60,
        window_s: int = 300,
        cooldown_s: int = 3600,
        min_rows: int = 100,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> Monitor:
        """A check the server runs every ``interval_s`` over the last ``window_s``.

        ``kind="metric"``: ``metric op threshold`` breaches (metrics:
        requests, request_rate, error_rate, latency_p50/p95/p99).
        ``kind="drift"``: the logged inputs drift from ``reference`` (the
        input's decision, or ``drift share op threshold`` when threshold > 0).
        ``kind="embedding"``: the MiniLM embeddings of the logged prompts
        (``text="input"``) or answers (``"output"``) drift from those of the
        reference's text column (``features=[column]``; default its first
        text column): MMD p-value under 5% and effect at least 0.1, or
        ``effect op threshold`` when threshold > 0."""
        m = Monitor.model_validate(
            {
                "name": name,
                "kind": kind,
                "deployment": deployment,
                "metric": metric,
                "op": op,
                "threshold": threshold,
                "reference": reference,
                "features": list(features) if features else None,
                "text": text,
                "interval_s": interval_s,
                "window_s": window_s,
                "cooldown_s": cooldown_s,
                "min_rows": min_rows,
                "webhook_url": webhook_url,
            }
        )
        return self._backend.create_monitor(m, secret=webhook_secret, author=self._ctx.user)

    def monitor(self, name: str) -> Monitor:
        return self._backend.get_monitor(name)

    def monitors(self) -> builtins.list[Monitor]:
        return self._backend.list_monitors()

    def delete_monitor(self, name: str) -> None:
        self._backend.delete_monitor(name)

    def run_monitor(self, name: str, *, now: int | None = None, force: bool = True) -> MonitorRun:
        """Check ``name`` now on its last closed window (the server's scheduler does this itself)."""
        return self._backend.run_monitor(name, now=now, force=force)

    def alerts(
        self, *, monitor: str | None = None, state: str | None = None, limit: int = 100
    ) -> builtins.list[Alert]:
        """Alert history, newest first."""
        return self._backend.alerts(monitor=monitor, state=state, limit=limit)
