"""The quickstart step that registers the sweep's best model as ``quickstart-classifier@champion``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from opsloop.registry import Registry

if TYPE_CHECKING:
    from opsloop.quickstart._context import QuickstartContext

MODEL_NAME = "quickstart-classifier"
ALIAS = "champion"
MODEL_URI = f"models:/{MODEL_NAME}@{ALIAS}"


def register_best(ctx: QuickstartContext) -> str:
    """Save the best trial's estimator with skops, log it to its run, register it, alias it.

    The version is made from the run's ``model`` artifact, so its card and
    lineage point at the run that trained it.
    """
    from opsloop.registry.flavors import save_sklearn  # lazy: loads skops

    ctx.reporter.begin("Registering the best model")
    if not ctx.trials or ctx.data is None:
        return "no trained model"
    best = ctx.trials[0]  # the summarising step sorted them, best first
    model = ctx.extra.get("models", {}).get(best.run_id)
    if model is None:
        return "the best model is not in memory"
    data = ctx.data
    raw = data.X_val if data.X_val_raw is None else data.X_val_raw
    if data.scaler is not None:
        # The sweep trained on standardised features; the served model takes them raw,
        # as a client has them, so the scaler travels with it.
        from sklearn.pipeline import Pipeline

        model = Pipeline([("scale", data.scaler), ("model", model)])
    example = [dict(zip(data.feature_names, map(float, row), strict=True)) for row in raw[:5]]
    with tempfile.TemporaryDirectory(prefix="opsloop-quickstart-model-") as tmp:
        folder = save_sklearn(model, Path(tmp) / "model", input_example=example)
        ctx.client.log_artifacts(best.run_id, folder, "model")
    reg = Registry(ctx.client)
    mv = reg.register(
        MODEL_NAME,
        f"runs:/{best.run_id}/model",
        description=f"Best of the quickstart sweep: {best.name} (val_f1 {best.metrics['val_f1']:.4f})",
        tags={"opsloop.source": "quickstart"},
    )
    reg.set_alias(MODEL_NAME, ALIAS, mv.version)
    ctx.extra["model_uri"] = MODEL_URI
    ctx.extra["trusted_types"] = list(mv.metadata.get("untrusted_types", []))
    return f"{MODEL_URI} (version {mv.version}, {best.name})"
