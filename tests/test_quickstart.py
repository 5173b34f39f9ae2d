"""The quickstart: real scikit-learn models trained and tracked, then served.

One quickstart run (three configs, one per model family) is shared by the
tests that inspect what it stored; the full default sweep and the serving
path run as real processes.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opsloop import Client
from opsloop.cli import app
from opsloop.errors import InvalidArgument
from opsloop.quickstart import (
    DEFAULT_STEPS,
    EPOCH_METRICS,
    SWEEP,
    Step,
    run_quickstart,
    select_trials,
)
from opsloop.settings import Settings
from opsloop.tracking.entities import RunStatus
from tests._procs import START_TIMEOUT_S, child_env, free_port, wait_until
from tests.conftest import live_server

CHILD_ARTIFACTS = {
    "classification_report.txt",
    "confusion_matrix.csv",
    "feature_importance.csv",
    "learning_curves.png",
    "metrics_per_epoch.csv",
}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"}, catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``opsloop quickstart --no-serve --trials 3 --tuning-trials 6``: one config of each family."""
    home = tmp_path_factory.mktemp("quickstart-home")
    result = _invoke(
        "quickstart",
        "--home",
        str(home),
        "--no-serve",
        "--trials",
        "3",
        "--tuning-trials",
        "6",
        "--no-llm",
    )
    assert result.exit_code == 0, result.output
    with Client(home=home) as c:
        exp = c.get_experiment_by_name("quickstart")
        runs = c.search_runs(exp.id, max_results=100).runs
        parent = next(r for r in runs if r.parent_run_id is None)
        children = [r for r in runs if r.parent_run_id == parent.id]
    return {"home": home, "output": result.stdout, "parent": parent, "children": children}


def test_sweep_has_a_parent_and_one_finished_child_per_config(trained: dict[str, Any]) -> None:
    parent, children = trained["parent"], trained["children"]
    assert parent.status == RunStatus.FINISHED and parent.params["n_trials"] == "3"
    assert sorted(c.name for c in children) == sorted(cfg.name for cfg in SWEEP[:3])
    assert {c.params["model"] for c in children} == {"sgd", "mlp", "gbdt"}
    assert all(c.status == RunStatus.FINISHED for c in children)
    assert all(c.params["dataset"] == "sklearn.breast_cancer" for c in children)
    best = max(children, key=lambda c: c.metrics["val_f1"].value or 0)
    assert parent.tags["quickstart.best_run_id"] == best.id


def test_best_model_is_registered_as_champion_and_predicts(trained: dict[str, Any]) -> None:
    from opsloop.registry import Registry, load_model

    with Client(home=trained["home"]) as c:
        reg = Registry(c)
        mv = reg.get_version_by_alias("quickstart-classifier", "champion")
        best_run = c.get_run(trained["parent"].tags["quickstart.best_run_id"])
        assert mv.source_run_id == best_run.id and mv.flavor == "sklearn"
        model = load_model(
            "models:/quickstart-classifier@champion",
            client=c,
            trusted_types=list(mv.metadata.get("untrusted_types", [])),
        )
        features = mv.signature["inputs"] if mv.signature else []
        assert len(features) == 30
        # It takes raw features, as a client has them: the scaler is part of the model.
        from sklearn.datasets import load_breast_cancer

        raw = load_breast_cancer()
        records = [
            {str(k): float(v) for k, v in zip(raw.feature_names, row, strict=True)}
            for row in raw.data
        ]
        labels = model.predict(records)
        accuracy = sum(int(p == t) for p, t in zip(labels, raw.target, strict=True)) / len(labels)
        assert accuracy > 0.9, accuracy


def test_every_child_has_per_epoch_histories(trained: dict[str, Any]) -> None:
    with Client(home=trained["home"]) as c:
        for child in trained["children"]:
            epochs = int(child.params["epochs"])
            for key in EPOCH_METRICS:
                hist = c.get_metric_history(child.id, key)
                assert hist.steps == list(range(1, epochs + 1)), (child.name, key)
                assert all(v is not None and v >= 0 for v in hist.values)
            # Training goes somewhere: the last epoch's train loss beats the first's.
            loss = c.get_metric_history(child.id, "train_loss").values
            assert loss[-1] < loss[0], child.name


def test_best_model_is_good(trained: dict[str, Any]) -> None:
    scores = {c.name: c.metrics["val_f1"].value for c in trained["children"]}
    assert max(s for s in scores.values() if s is not None) > 0.9, scores
    best = max(trained["children"], key=lambda c: c.metrics["val_f1"].value or 0)
    assert best.metrics["val_roc_auc"].value > 0.95
    assert best.metrics["val_accuracy"].value > 0.9


def test_artifacts_are_real_files(trained: dict[str, Any]) -> None:
    with Client(home=trained["home"]) as c:
        for child in trained["children"]:
            paths = {a.path for a in c.list_artifacts(child.id, recursive=True) if not a.is_dir}
            # The best run also holds the registered model (skops file and descriptor).
            is_best = child.id == trained["parent"].tags["quickstart.best_run_id"]
            model_files = {"model/model.skops", "model/opsloop-model.json"} if is_best else set()
            assert paths == CHILD_ARTIFACTS | model_files, child.name

            rows = list(
                csv.DictReader(
                    io.StringIO(c.read_artifact(child.id, "metrics_per_epoch.csv").decode())
                )
            )
            assert len(rows) == int(child.params["epochs"])
            assert float(rows[-1]["val_f1"]) == pytest.approx(
                child.metrics["val_f1"].value, abs=1e-5
            )

            cm = list(
                csv.reader(io.StringIO(c.read_artifact(child.id, "confusion_matrix.csv").decode()))
            )
            assert cm[0][1:] == ["malignant", "benign"]
            assert sum(int(v) for row in cm[1:] for v in row[1:]) == 143  # the validation rows

            report = c.read_artifact(child.id, "classification_report.txt").decode()
            assert "precision" in report and "malignant" in report

            weights = list(
                csv.DictReader(
                    io.StringIO(c.read_artifact(child.id, "feature_importance.csv").decode())
                )
            )
            assert len(weights) == 30 and weights[0]["feature"]

            png = c.read_artifact(child.id, "learning_curves.png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = struct.unpack(">II", png[16:24])
            assert (width, height) == (480, 324)

        board = c.read_artifact(trained["parent"].id, "leaderboard.csv").decode()
        assert len(board.strip().splitlines()) == 1 + 3
        dataset = json.loads(c.read_artifact(trained["parent"].id, "dataset.json"))
        assert dataset["n_train"] + dataset["n_val"] == 569


def test_system_metrics_were_sampled(trained: dict[str, Any]) -> None:
    parent = trained["parent"]
    system = {k for k in parent.metrics if k.startswith("system/")}
    assert {"system/cpu_percent", "system/memory_used_mb", "system/process_rss_mb"} <= system
    # One sample per 0.5 s while the sweep runs plus a last one at its end: a fast
    # machine may finish the three small models inside the first interval.
    assert parent.metrics["system/process_rss_mb"].count >= 1
    assert parent.metrics["system/process_rss_mb"].value > 10
    children = trained["children"]
    assert all("system/process_rss_mb" in c.metrics for c in children)


def test_summary_output(trained: dict[str, Any]) -> None:
    out = trained["output"]
    best = max(trained["children"], key=lambda c: c.metrics["val_f1"].value or 0)
    assert "Best runs of 3" in out
    assert f"Best: {best.name}" in out
    assert f"opsloop runs show --home {trained['home']} {best.id}" in out
    assert "Training" in out and "3 models" in out


def test_tuning_study_trades_f1_against_latency(trained: dict[str, Any]) -> None:
    """The quickstart's Optuna study: six child runs, a non-dominated front, drawn and printed."""
    with Client(home=trained["home"]) as c:
        studies = c.tuning.list_studies()
        assert len(studies) == 1 and studies[0].name.startswith("quickstart-tuning-")
        summary = c.tuning.summary(studies[0].name)
        assert summary.study.objectives == ["f1", "latency_ms"]
        assert summary.counts.get("COMPLETE") == 6
        assert summary.study.run_id is not None
        parent = c.get_run(summary.study.run_id)
        trial_runs = c.search_runs(parent.experiment_id, max_results=100).runs
        children = [r for r in trial_runs if r.parent_run_id == parent.id]
        assert len(children) == 6
        assert all("f1" in r.metrics and "latency_ms" in r.metrics for r in children)
        svg = c.read_artifact(parent.id, "tuning/pareto_front.svg").decode()
    front = summary.pareto_front
    assert front and "<svg" in svg
    done = [t for t in summary.trials if t.state == "COMPLETE"]
    for p in front:  # nothing complete beats a front member on both objectives
        f1, lat = p.values
        assert not any(t.values and t.values[0] > f1 and t.values[1] < lat for t in done), p
    assert "Pareto front" in trained["output"] and "Tuning" in trained["output"]


def test_epoch_scores_agree_with_scikit_learn() -> None:
    import numpy as np
    from sklearn import metrics as skm

    from opsloop.quickstart._evaluate import epoch_scores

    rng = np.random.default_rng(7)
    y_train, y_val = rng.integers(0, 2, 200), rng.integers(0, 2, 150)
    # Rounded probabilities give tied scores, the case a hand-written ROC AUC gets wrong.
    p_train = np.round(np.clip(y_train * 0.6 + rng.random(200) * 0.5, 0, 1), 1)
    p_val = np.round(np.clip(y_val * 0.5 + rng.random(150) * 0.6, 0, 1), 1)
    got = epoch_scores(y_train, p_train, y_val, p_val)
    pred = (p_val >= 0.5).astype(int)
    want = {
        "train_loss": skm.log_loss(y_train, p_train),
        "val_loss": skm.log_loss(y_val, p_val),
        "train_accuracy": skm.accuracy_score(y_train, (p_train >= 0.5).astype(int)),
        "val_accuracy": skm.accuracy_score(y_val, pred),
        "val_precision": skm.precision_score(y_val, pred),
        "val_recall": skm.recall_score(y_val, pred),
        "val_f1": skm.f1_score(y_val, pred),
        "val_roc_auc": skm.roc_auc_score(y_val, p_val),
    }
    assert set(got) == set(EPOCH_METRICS)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_png_decodes_to_a_drawn_chart() -> None:
    from opsloop.quickstart._png import learning_curves_png

    png = learning_curves_png({"train_loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.7, 0.5]})
    # Walk the chunks and inflate the image data: a valid PNG with coloured pixels on it.
    pos, data = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        assert (
            zlib.crc32(kind + body)
            == struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0]
        )
        if kind == b"IDAT":
            data += body
        pos += 12 + length
    raw = zlib.decompress(data)
    assert len(raw) == 324 * (1 + 480 * 3)
    assert bytes((31, 119, 180)) in raw  # the train-loss line was drawn


def test_public_surface_and_lazy_sklearn() -> None:
    import opsloop.quickstart as qs

    assert sorted(qs.__all__) == sorted(
        [
            "DEFAULT_STEPS",
            "DEFAULT_TRIALS",
            "DOCS_QUALITY_METRIC",
            "EPOCH_METRICS",
            "EXPERIMENT_NAME",
            "LOOP_MODEL",
            "RANK_METRIC",
            "SWEEP",
            "NullReporter",
            "QuickstartContext",
            "QuickstartResult",
            "Reporter",
            "Step",
            "TrialConfig",
            "TrialResult",
            "docs_questions",
            "run_docs_loop",
            "run_quickstart",
            "select_trials",
            "serve_model_in_thread",
        ]
    )
    code = "import sys, opsloop.quickstart; print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_trial_count_is_checked() -> None:
    with pytest.raises(InvalidArgument):
        select_trials(0)
    with pytest.raises(InvalidArgument):
        select_trials(len(SWEEP) + 1)
    assert _invoke("quickstart", "--trials", "0", "--no-serve").exit_code == 2
    # The command's bound is the sweep's size.
    assert _invoke("quickstart", "--trials", str(len(SWEEP) + 1), "--no-serve").exit_code == 2
    assert f"1<=x<={len(SWEEP)}" in _invoke("quickstart", "--help").stdout


def test_a_failing_step_marks_open_runs_failed(home: Path) -> None:
    def boom(ctx: Any) -> str:
        raise RuntimeError("disk on fire")

    steps = [*DEFAULT_STEPS[:2], Step("boom", boom)]
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_quickstart(Settings(home=home), trials=1, steps=steps)
    with Client(home=home) as c:
        (run,) = c.search_runs(max_results=10).runs
    assert run.status == RunStatus.FAILED
    assert "disk on fire" in run.tags["opsloop.error"]


def test_quickstart_logs_to_a_server(home: Path) -> None:
    with live_server(Settings(home=home)) as srv:
        result = CliRunner().invoke(
            app,
            ["quickstart", "--trials", "1", "--tuning-trials", "2", "--no-llm"],
            env={"OPSLOOP_TRACKING_URI": srv.url, "COLUMNS": "160"},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert f"Logging to the server at {srv.url}" in result.stdout
        # With a server to log to, it does not start another one.
        assert "opsloop server:" not in result.stdout
    with Client(home=home) as c:
        sweep = c.get_experiment_by_name("quickstart")
        names = {r.name for r in c.search_runs(sweep.id, max_results=10).runs}
        study = c.tuning.list_studies()[0]
        assert c.tuning.summary(study.name).counts.get("COMPLETE") == 2
    assert SWEEP[0].name in names and len(names) == 2


def _health(url: str) -> Any:
    try:
        r = httpx.get(f"{url}/api/v1/health", timeout=2)
        return r.json() if r.status_code == 200 else None
    except httpx.TransportError:
        return None


@pytest.mark.slow
def test_quickstart_then_serves_the_ui(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsloop.cli",
            "quickstart",
            "--home",
            str(home),
            "--trials",
            "1",
            "--tuning-trials",
            "0",
            "--no-llm",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(COLUMNS="160"),
    )
    try:
        # the whole quickstart runs before the server starts: on a busy 2-core CI machine
        # (a loop training beside it) that took over two minutes once
        wait_until(lambda: proc.poll() is None and _health(url), START_TIMEOUT_S + 300, "health")
        assert httpx.get(f"{url}/ui/").status_code == 200
        found = httpx.post(f"{url}/api/v1/runs/search", json={"max_results": 10}).json()
        assert {r["name"] for r in found["runs"]} >= {SWEEP[0].name}
        # The best model is served on the next port and recorded as a running deployment.
        deps = httpx.get(f"{url}/api/v1/deployments").json()["deployments"]
        assert [(d["name"], d["status"]) for d in deps] == [
            ("models:/quickstart-classifier@champion", "running")
        ]
        assert deps[0]["url"] == f"http://127.0.0.1:{port + 1}"
        meta = httpx.get(f"{deps[0]['url']}/v1/metadata").json()
        row = {col["name"]: 0.0 for col in meta["signature"]["inputs"]}
        pred = httpx.post(f"{deps[0]['url']}/v1/predict", json={"records": [row]})
        assert pred.status_code == 200, pred.text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"opsloop server: {url}" in out and "Best runs of 1" in out
    assert f"model served at http://127.0.0.1:{port + 1}/v1/predict" in out
    assert "Traceback" not in err
    with Client(home=home) as c:
        from opsloop.deployments import Deployments

        (dep,) = Deployments(c).list()
    assert dep.status == "stopped" and dep.stopped_at is not None


@pytest.mark.slow
def test_default_quickstart_as_a_user_runs_it(home: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "opsloop.cli",
            "quickstart",
            "--home",
            str(home),
            "--no-serve",
            "--no-llm",
        ],
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="160"),
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Best runs of 8" in proc.stdout and "Pareto front" in proc.stdout
    with Client(home=home) as c:
        runs = c.search_runs(c.get_experiment_by_name("quickstart").id, max_results=100).runs
        tuned = c.search_runs(c.get_experiment_by_name("quickstart-tuning").id).runs
    children = [r for r in runs if r.parent_run_id]
    assert len(runs) == 9 and len(children) == 8
    assert len(tuned) == 13  # the study's run and its 12 trials
    assert {r.params["model"] for r in children} == {"sgd", "mlp", "gbdt"}
    assert max(r.metrics["val_f1"].value or 0 for r in children) > 0.95
