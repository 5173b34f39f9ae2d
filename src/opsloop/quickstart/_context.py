"""What the quickstart's steps share: the client, the data, open runs and results."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from opsloop.tracking.entities import RunStatus

if TYPE_CHECKING:
    from opsloop.quickstart._data import Dataset
    from opsloop.quickstart._models import TrialConfig
    from opsloop.sdk import Client
    from opsloop.tracking import SystemMetricsSampler  # lazy: loads psutil

EXPERIMENT_NAME = "quickstart"


class Reporter(Protocol):
    """Where the quickstart reports progress (the CLI draws rich progress bars)."""

    def begin(self, step: str, total: int | None = None) -> None:
        """A step started; ``total`` units of work follow (None: unknown)."""

    def advance(self, amount: int = 1, detail: str = "") -> None:
        """``amount`` units of the current step are done."""

    def end(self, step: str, message: str = "") -> None:
        """The step finished; ``message`` says what it did."""


class NullReporter:
    """Reports nothing."""

    def begin(self, step: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1, detail: str = "") -> None:
        pass

    def end(self, step: str, message: str = "") -> None:
        pass


@dataclass
class TrialResult:
    """One finished trial: its run, config and final validation scores."""

    run_id: str
    name: str
    family: str
    params: dict[str, Any]
    metrics: dict[str, float]
    epochs: int
    seconds: float


@dataclass
class QuickstartResult:
    """What the quickstart produced; ``trials`` are ordered best first."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    trials: list[TrialResult]
    seconds: float
    # The best model, registered (``models:/quickstart-classifier@champion``), and the
    # skops types its file holds: the quickstart trained it, so it may trust them.
    model_uri: str | None = None
    trusted_types: list[str] = field(default_factory=list)
    # The tuning study (F1 against prediction latency) and its Pareto front.
    tuning_study: str | None = None
    tuning_front: list[dict[str, Any]] = field(default_factory=list)
    # The LLM steps: the selection between the bundled LLMs (``opsloop.selection.Selection``),
    # the docs QA pipeline's answers (with trace ids) and its registry URI.
    selection: Any = None
    docs_answers: list[dict[str, Any]] = field(default_factory=list)
    docs_pipeline_uri: str | None = None

    @property
    def best(self) -> TrialResult:
        return self.trials[0]


@dataclass
class QuickstartContext:
    """State passed from step to step. Steps add to it; later steps read it."""

    client: Client
    configs: list[TrialConfig]
    seed: int
    reporter: Reporter
    system_metrics_interval_s: float
    data: Dataset | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    trials: list[TrialResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # for steps added later
    _samplers: dict[str, SystemMetricsSampler | None] = field(default_factory=dict)

    def start_run(
        self,
        name: str,
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        """Create a run in the quickstart experiment, sampling system metrics while it is open."""
        from opsloop.tracking import SystemMetricsSampler  # lazy: loads psutil

        run = self.client.create_run(
            self.experiment_id,
            experiment_name=None if self.experiment_id else EXPERIMENT_NAME,
            name=name,
            params=params,
            tags=tags,
            parent_run_id=parent_run_id,
        )
        client, rid = self.client, run.id
        self._samplers[rid] = SystemMetricsSampler(
            lambda m, step: client.log_metrics(rid, m, step=step),
            self.system_metrics_interval_s,
        ).start()
        return rid

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> None:
        """Stop the run's sampler, flush its points and mark it ended."""
        sampler = self._samplers.pop(run_id, None)
        if sampler is not None:
            sampler.stop()
        self.client.set_terminated(run_id, status)

    def abort(self, exc: BaseException) -> None:
        """End every open run as FAILED (KILLED on Ctrl-C), noting the error on each."""
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        text = "".join(traceback.format_exception(exc))[-7000:]
        # Innermost (most recently opened) runs first, so children end before their parent.
        for run_id in reversed(list(self._samplers)):
            try:
                self.client.set_tag(run_id, "opsloop.error", text)
            finally:
                self.end_run(run_id, status)
