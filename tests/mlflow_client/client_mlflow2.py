"""Run by tests/test_mlflow_api.py with MLflow 2's oldest client (``.venv-mlflow2``).

``mlflow-skinny==2.0.1``, the first 2.x release on PyPI: the fluent API and
``MlflowClient`` for an experiment, a run, params, metrics, tags, an artifact
through the proxy, search and a registered model (created, renamed), against ``opsloop server``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

out: dict = {"version": mlflow.__version__}
mlflow.set_experiment("old-client")
with mlflow.start_run(run_name="old") as run:
    mlflow.log_param("a", 1)
    for i in range(3):
        mlflow.log_metric("m", i * 1.0, step=i)
    mlflow.set_tag("t", "v")
    p = Path(tempfile.mkdtemp()) / "f.txt"
    p.write_text("hi")
    mlflow.log_artifact(str(p))
c = MlflowClient()
r = c.get_run(run.info.run_id)
out["run_id"] = run.info.run_id
out["params"] = r.data.params
out["metrics"] = r.data.metrics
out["tag"] = r.data.tags.get("t")
out["history"] = [m.step for m in c.get_metric_history(run.info.run_id, "m")]
out["artifacts"] = [a.path for a in c.list_artifacts(run.info.run_id)]
out["search"] = [x.info.run_id for x in c.search_runs([r.info.experiment_id], "params.a = '1'")]
out["model"] = c.create_registered_model("old-model").name
c.rename_registered_model("old-model", "old-model-2")
out["renamed"] = [c.get_registered_model("old-model-2").name]
try:
    c.get_registered_model("old-model")
except MlflowException as exc:
    out["renamed"].append(exc.error_code)
try:
    c.get_run("0" * 32)
except MlflowException as exc:
    out["missing"] = exc.error_code
print(json.dumps(out))
