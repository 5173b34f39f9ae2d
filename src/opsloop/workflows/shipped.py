"""Workflows that ship with opsloop: ``tabular`` and ``feedback_loop``.

``tabular``: data -> split -> train -> evaluate -> register -> gate -> deploy.
A scikit-learn logistic regression on a CSV file (or, without one, a
synthetic classification table), registered as a new version of ``name``,
and moved to ``alias`` (the deployment: servers started with
``opsloop serve models:/NAME@ALIAS`` follow it) only when its held-out
accuracy passes ``min_accuracy``. Data, split, train and evaluate are cached
(an unchanged rerun trains nothing); register, gate and deploy act on the
store, so they always run.

    opsloop workflows run opsloop.workflows.shipped:tabular -p csv=churn.csv -p target=churned
    opsloop workflows schedule retrain opsloop.workflows.shipped:tabular \\
        --on datasets.version_created --match dataset=churn

``feedback_loop``: feedback -> dataset -> fine-tune -> evaluate -> gate ->
promote, on the feedback users left on a served language model (the loop's
second half, ``opsloop.loop``, one step each). The annotations with a
correction (or an accepted answer) become an SFT dataset version; a LoRA job
fine-tunes the version holding ``alias`` and its adapter is merged into the
next version; both versions answer the held-out questions of dataset
``heldout`` through the retrieval pipeline over ``index``; the alias moves
only when the paired bootstrap interval of the gain is above zero. Nothing
is cached: every step reads or changes the store. Fewer than ``min_rows``
examples, and the run ends at once with ``skipped`` (nothing trained).

    opsloop workflows schedule improve opsloop.workflows.shipped:feedback_loop \\
        --on feedback.created --every 50 -p model=docs-qa-llm -p heldout=docs-heldout \\
        -p index=docs-index
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from opsloop.core import Context
from opsloop.errors import InvalidArgument
from opsloop.feedback import NothingToExport
from opsloop.loop import (
    DEFAULT_TRAINING,
    Compared,
    check_loop_arguments,
    evaluate_versions,
    finetune_version,
    gate_and_promote,
    loop_client,
    rag_pipeline,
)
from opsloop.registry import Registry
from opsloop.settings import Settings
from opsloop.workflows._step import step, workflow

__all__ = [
    "compare_versions",
    "data",
    "deploy",
    "evaluate",
    "feedback_data",
    "feedback_loop",
    "finetune",
    "gate",
    "promote",
    "register",
    "split",
    "tabular",
    "train",
]


def _context(store: str) -> Context:
    """The store a side-effect step writes to: a server URL, a home folder, or the default."""
    if store.startswith(("http://", "https://")):
        return Context(Settings(tracking_uri=store))
    if store:
        return Context(Settings(home=Path(store), tracking_uri=None))
    return Context(Settings())


@step
def data(csv: Path | None, target: str, rows: int = 500, seed: int = 0) -> Any:
    """The table: a CSV file (hashed by content), or a synthetic classification table."""
    import pandas as pd  # lazy: the tabular workflow's own dependency

    if csv is not None:
        return pd.read_csv(csv)
    from sklearn.datasets import make_classification  # lazy: scikit-learn is optional

    x, y = make_classification(
        n_samples=rows, n_features=8, n_informative=5, random_state=seed, class_sep=1.2
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame[target] = y
    return frame


@step
def split(frame: Any, target: str, test_size: float = 0.25, seed: int = 0) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split  # lazy: scikit-learn is optional

    if target not in frame.columns:
        raise ValueError(f"no column {target!r} in the table ({', '.join(frame.columns)})")
    train_part, test_part = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[target]
    )
    return {"train": train_part, "test": test_part}


@step
def train(parts: dict[str, Any], target: str, c: float = 1.0, max_iter: int = 500) -> Any:
    from sklearn.linear_model import LogisticRegression  # lazy: scikit-learn is optional
    from sklearn.pipeline import make_pipeline  # lazy: scikit-learn is optional
    from sklearn.preprocessing import StandardScaler  # lazy: scikit-learn is optional

    frame = parts["train"]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    model.fit(frame.drop(columns=[target]), frame[target])
    return model


@step
def evaluate(model: Any, parts: dict[str, Any], target: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score  # lazy: scikit-learn is optional

    frame = parts["test"]
    pred = model.predict(frame.drop(columns=[target]))
    return {
        "accuracy": float(accuracy_score(frame[target], pred)),
        "f1": float(f1_score(frame[target], pred, average="macro")),
        "rows": float(len(frame)),
    }


@step(cache=False)
def register(
    model: Any, metrics: dict[str, float], parts: dict[str, Any], target: str, name: str, store: str
) -> dict[str, Any]:
    """A new version of ``name`` holding the model, its metrics as tags."""
    from opsloop.registry.flavors import save_sklearn  # lazy: loads scikit-learn glue

    example = parts["test"].drop(columns=[target]).head(2)
    ctx = _context(store)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_sklearn(model, Path(tmp) / "model", input_example=example)
            mv = Registry(ctx).register(
                name, folder, tags={k: f"{v:.4f}" for k, v in metrics.items()}
            )
    finally:
        ctx.close()
    return {"name": name, "version": mv.version}


@step(cache=False)
def gate(metrics: dict[str, float], min_accuracy: float) -> dict[str, Any]:
    passed = metrics["accuracy"] >= min_accuracy
    reason = f"accuracy {metrics['accuracy']:.3f} {'>=' if passed else '<'} {min_accuracy}"
    return {"passed": passed, "reason": reason}


@step(cache=False)
def deploy(
    version: dict[str, Any], decision: dict[str, Any], alias: str, store: str
) -> dict[str, Any]:
    """Move ``alias`` to the new version when the gate passed (the registry's own gate too)."""
    if not decision["passed"]:
        return {"moved": False, "alias": alias, "reason": decision["reason"]}
    ctx = _context(store)
    try:
        Registry(ctx).set_alias(version["name"], alias, version["version"])
    finally:
        ctx.close()
    return {"moved": True, "alias": alias, "version": version["version"]}


@workflow
def tabular(
    name: str = "tabular-model",
    csv: str = "",
    target: str = "label",
    rows: int = 500,
    seed: int = 0,
    c: float = 1.0,
    min_accuracy: float = 0.7,
    alias: str = "champion",
    store: str = "",
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, evaluate, register, gate and deploy a tabular classifier."""
    frame = data(Path(csv) if csv else None, target, rows, seed)
    parts = split(frame, target, seed=seed)
    model = train(parts, target, c=c)
    metrics = evaluate(model, parts, target)
    version = register(model, metrics, parts, target, name, store)
    decision = gate(metrics, min_accuracy)
    return {
        "metrics": metrics,
        "version": version,
        "gate": decision,
        "deploy": deploy(version, decision, alias, store),
    }


@step(cache=False)
def feedback_data(model: str, min_rows: int, store: str) -> dict[str, Any]:
    """The feedback so far as an SFT dataset version ``MODEL-feedback`` (or why not)."""
    ctx = _context(store)
    try:
        export = loop_client(ctx).feedback.export(f"{model}-feedback", "sft")
    except NothingToExport as exc:
        return {"skipped": str(exc)}
    finally:
        ctx.close()
    if export.rows < min_rows:
        return {"skipped": f"{export.rows} examples, fewer than min_rows={min_rows}"}
    return {"dataset": export.ref, "rows": export.rows, "annotations": export.annotations}


@step(cache=False)
def finetune(
    data: dict[str, Any], model: str, alias: str, training: dict[str, Any], store: str,
    cache_dir: str,
) -> dict[str, Any]:  # fmt: skip
    """A LoRA job on the version holding ``alias``; its adapter merged into the next version."""
    if "skipped" in data:
        return data
    spec = check_loop_arguments(model, alias, training)
    ctx = _context(store)
    try:
        client = loop_client(ctx)
        v1 = int(client.registry.resolve(f"models:/{model}@{alias}").version)
        tuned = finetune_version(
            client, model, v1, data["dataset"], spec, cache_dir=cache_dir or None,
            description=f"feedback loop: {data['dataset']} on v{v1}",
        )  # fmt: skip
    finally:
        ctx.close()
    return {"v1": v1, **tuned.model_dump()}


@step(cache=False)
def compare_versions(
    tuned: dict[str, Any], model: str, heldout: str, index: str, k: int, max_tokens: int,
    n_bootstrap: int, store: str, cache_dir: str,
) -> dict[str, Any]:  # fmt: skip
    """Both versions on the held-out questions; the paired bootstrap of the gain."""
    if "skipped" in tuned:
        return tuned
    ctx = _context(store)
    try:
        client = loop_client(ctx)
        rows = client.datasets.rows(heldout).rows

        def pipeline(version: int) -> Any:
            return rag_pipeline(
                client, model, version, index=index, k=k, max_tokens=max_tokens,
                cache_dir=cache_dir or None,
            )  # fmt: skip

        cmp = evaluate_versions(
            client, model, (tuned["v1"], tuned["version"]), heldout, pipeline, rows=len(rows),
            n_bootstrap=n_bootstrap,
        )  # fmt: skip
    finally:
        ctx.close()
    return cmp.model_dump()


@step(cache=False)
def promote(
    compared: dict[str, Any], tuned: dict[str, Any], model: str, alias: str, store: str
) -> dict[str, Any]:
    """Move ``alias`` to the new version when the gate (gain's lower bound above 0) passes."""
    if "skipped" in compared:
        return compared
    ctx = _context(store)
    try:
        client = loop_client(ctx)
        decision = gate_and_promote(
            client, model, alias, tuned["version"], Compared.model_validate(compared)
        )
    finally:
        ctx.close()
    return decision.model_dump()


@workflow
def feedback_loop(
    model: str = "docs-qa-llm",
    alias: str = "prod",
    heldout: str = "",
    index: str = "",
    k: int = 3,
    max_tokens: int = 64,
    training: dict[str, Any] | None = None,
    min_rows: int = 1,
    n_bootstrap: int = 1000,
    store: str = "",
    cache_dir: str = "",
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Feedback to data, fine-tune, evaluate against the alias's version, gate, promote."""
    if not heldout or not index:
        raise InvalidArgument(
            "the feedback loop needs heldout= (a dataset of held-out questions with an answer "
            "column) and index= (the retrieval index its pipeline reads)",
            details={"heldout": heldout, "index": index},
        )
    check_loop_arguments(model, alias, training)
    spec = {**DEFAULT_TRAINING, **(training or {})}
    data = feedback_data(model, min_rows, store)
    tuned = finetune(data, model, alias, spec, store, cache_dir)
    compared = compare_versions(
        tuned, model, heldout, index, k, max_tokens, n_bootstrap, store, cache_dir
    )
    return {
        "data": data,
        "finetune": tuned,
        "evaluation": compared,
        "gate": promote(compared, tuned, model, alias, store),
    }
