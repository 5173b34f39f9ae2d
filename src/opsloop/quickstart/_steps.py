"""The quickstart as a list of steps, each a small function over the shared context.

Later features add steps (register the best model, deploy it, ...) by
appending to ``DEFAULT_STEPS`` or passing ``steps=`` to ``run_quickstart``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsloop.errors import InvalidArgument
from opsloop.quickstart._context import (
    EXPERIMENT_NAME,
    NullReporter,
    QuickstartContext,
    QuickstartResult,
    Reporter,
    TrialResult,
)
from opsloop.quickstart._data import load_dataset, require_sklearn
from opsloop.quickstart._evaluate import (
    RANK_METRIC,
    classification_report_text,
    confusion_matrix_csv,
    epoch_scores,
    rows_csv,
)
from opsloop.quickstart._llm import docs_qa, select_llm
from opsloop.quickstart._models import DEFAULT_TRIALS, SWEEP, Trainer, TrialConfig, feature_weights
from opsloop.quickstart._register import register_best
from opsloop.quickstart._tune import tune_tabular
from opsloop.settings import Settings


@dataclass(frozen=True)
class Step:
    """A named unit of quickstart work; ``run`` returns a one-line summary."""

    name: str
    run: Callable[[QuickstartContext], str]


def _load_data(ctx: QuickstartContext) -> str:
    ctx.reporter.begin("Loading data")
    ctx.data = load_dataset(ctx.seed)
    d = ctx.data
    return f"{len(d.y_train)} train / {len(d.y_val)} validation rows, {d.n_features} features"


def _open_sweep(ctx: QuickstartContext) -> str:
    ctx.reporter.begin("Opening the sweep run")
    ctx.experiment_id = ctx.client.get_or_create_experiment(EXPERIMENT_NAME).id
    assert ctx.data is not None
    ctx.parent_run_id = ctx.start_run(
        f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
        params={"dataset": ctx.data.name, "n_trials": len(ctx.configs), "seed": ctx.seed},
        tags={"opsloop.source": "quickstart", "quickstart.role": "sweep"},
    )
    ctx.client.log_dict(ctx.parent_run_id, ctx.data.describe(), "dataset.json")
    return f"experiment {EXPERIMENT_NAME!r}"


def _train_one(ctx: QuickstartContext, cfg: TrialConfig, index: int) -> TrialResult:
    data = ctx.data
    assert data is not None and ctx.parent_run_id is not None
    t0 = time.perf_counter()
    run_id = ctx.start_run(
        cfg.name,
        params={**cfg.loggable_params(), "dataset": data.name, "seed": ctx.seed},
        tags={"opsloop.source": "quickstart", "quickstart.family": cfg.family},
        parent_run_id=ctx.parent_run_id,
    )
    trainer = Trainer(cfg, data, ctx.seed)
    rows: list[dict[str, float]] = []
    last_val = None
    for ep in trainer.epochs():
        scores = epoch_scores(data.y_train, ep.train_proba, data.y_val, ep.val_proba)
        ctx.client.log_metrics(run_id, scores, step=ep.epoch)
        rows.append({"epoch": ep.epoch, **scores})
        last_val = ep.val_proba
        ctx.reporter.advance(1, f"[{index}/{len(ctx.configs)}] {cfg.name}")
    assert last_val is not None

    from opsloop.quickstart._png import learning_curves_png  # lazy: loads numpy

    history = {k: [r[k] for r in rows] for k in rows[0] if k != "epoch"}
    with tempfile.TemporaryDirectory(prefix="opsloop-quickstart-") as tmp:
        out = Path(tmp)
        (out / "confusion_matrix.csv").write_text(
            confusion_matrix_csv(data.y_val, last_val, data.class_names)
        )
        (out / "classification_report.txt").write_text(
            f"{cfg.name} on {data.name} (validation split)\n\n"
            + classification_report_text(data.y_val, last_val, data.class_names)
        )
        (out / "metrics_per_epoch.csv").write_text(rows_csv(rows))
        (out / "feature_importance.csv").write_text(
            rows_csv(feature_weights(trainer.model, cfg, data))
        )
        (out / "learning_curves.png").write_bytes(learning_curves_png(history))
        ctx.client.log_artifacts(run_id, out)
    ctx.end_run(run_id)
    # Kept in memory so the best one can be registered without retraining.
    ctx.extra.setdefault("models", {})[run_id] = trainer.model
    return TrialResult(
        run_id=run_id,
        name=cfg.name,
        family=cfg.family,
        params=cfg.loggable_params(),
        metrics={k: v[-1] for k, v in history.items()},
        epochs=len(rows),
        seconds=time.perf_counter() - t0,
    )


def _train_sweep(ctx: QuickstartContext) -> str:
    ctx.reporter.begin("Training", total=sum(c.epochs for c in ctx.configs))
    assert ctx.parent_run_id is not None
    best = float("-inf")
    for i, cfg in enumerate(ctx.configs, start=1):
        result = _train_one(ctx, cfg, i)
        ctx.trials.append(result)
        score = result.metrics[RANK_METRIC]
        best = max(best, score)
        # The sweep's own curves: each trial's score and the best so far, by trial number.
        ctx.client.log_metrics(
            ctx.parent_run_id, {f"trial_{RANK_METRIC}": score, f"best_{RANK_METRIC}": best}, step=i
        )
    return f"{len(ctx.configs)} models"


def _close_sweep(ctx: QuickstartContext) -> str:
    ctx.reporter.begin("Summarising")
    assert ctx.parent_run_id is not None
    ctx.trials.sort(key=lambda t: (-t.metrics[RANK_METRIC], t.metrics["val_loss"]))
    best = ctx.trials[0]
    board = [
        {"rank": i, "run_id": t.run_id, "name": t.name, "model": t.family, **t.metrics}
        for i, t in enumerate(ctx.trials, start=1)
    ]
    ctx.client.log_text(ctx.parent_run_id, rows_csv(board), "leaderboard.csv")
    ctx.client.set_tags(
        ctx.parent_run_id,
        {"quickstart.best_run_id": best.run_id, "quickstart.best_run_name": best.name},
    )
    ctx.end_run(ctx.parent_run_id)
    return f"best {best.name}"


DEFAULT_STEPS: list[Step] = [
    Step("load_data", _load_data),
    Step("open_sweep", _open_sweep),
    Step("train_sweep", _train_sweep),
    Step("close_sweep", _close_sweep),
    Step("register_best", register_best),
    Step("tune", tune_tabular),
]

# The LLM half (needs the llm extra and the bundled models): choose between the
# two bundled LLMs, then a retrieval QA pipeline over opsloop's docs.
LLM_STEPS: list[Step] = [
    Step("select_llm", select_llm),
    Step("docs_qa", docs_qa),
]


def select_trials(n: int) -> list[TrialConfig]:
    """The first ``n`` configs of the sweep (raises ``InvalidArgument`` out of range)."""
    if not isinstance(n, int) or not 1 <= n <= len(SWEEP):
        raise InvalidArgument(f"trials must be between 1 and {len(SWEEP)}, got {n!r}")
    return SWEEP[:n]


def run_quickstart(
    settings: Settings | None = None,
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    reporter: Reporter | None = None,
    system_metrics_interval_s: float = 0.5,
    steps: Sequence[Step] | None = None,
    tuning_trials: int = 12,
    llm: bool = False,
    model_cache: str | Path | None = None,
) -> QuickstartResult:
    """Train the sweep into the ``quickstart`` experiment and return the runs, best first.

    ``llm``: also choose between the two bundled LLMs and build, register and
    query the retrieval QA pipeline over opsloop's docs (``LLM_STEPS``);
    ``model_cache``: where converted model weights are kept (default
    ``<home>/cache/models``).

    Works embedded (on ``settings.home``) or against a server
    (``settings.tracking_uri``). If a step fails, every run it opened ends
    FAILED with the error in its ``opsloop.error`` tag, and the error is raised.
    """
    require_sklearn()
    configs = select_trials(trials)
    reporter = reporter or NullReporter()
    t0 = time.perf_counter()
    from opsloop.sdk import Client  # lazy: loads sqlalchemy

    with Client(settings=settings or Settings()) as client:
        ctx = QuickstartContext(
            client=client,
            configs=configs,
            seed=seed,
            reporter=reporter,
            system_metrics_interval_s=system_metrics_interval_s,
        )
        ctx.extra["tuning_trials"] = tuning_trials
        ctx.extra["model_cache"] = model_cache
        try:
            if steps is None:
                steps = [*DEFAULT_STEPS, *(LLM_STEPS if llm else [])]
            for step in steps:
                message = step.run(ctx)
                reporter.end(step.name, message)
        except BaseException as exc:
            ctx.abort(exc)
            raise
        if ctx.experiment_id is None or ctx.parent_run_id is None:
            raise InvalidArgument("the quickstart steps did not open a sweep run")
        return QuickstartResult(
            tracking_uri=client.tracking_uri,
            experiment_id=ctx.experiment_id,
            parent_run_id=ctx.parent_run_id,
            trials=ctx.trials,
            seconds=time.perf_counter() - t0,
            model_uri=ctx.extra.get("model_uri"),
            trusted_types=list(ctx.extra.get("trusted_types", [])),
            tuning_study=ctx.extra.get("tuning_study"),
            tuning_front=list(ctx.extra.get("tuning_front", [])),
            selection=ctx.extra.get("selection"),
            docs_answers=list(ctx.extra.get("docs_answers", [])),
            docs_pipeline_uri=ctx.extra.get("docs_pipeline_uri"),
        )
