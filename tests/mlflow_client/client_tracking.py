"""Run by tests/test_mlflow_api.py in the separate mlflow virtualenv (.venv-mlflow).

The real ``mlflow`` client against ``opsloop server`` (MLFLOW_TRACKING_URI):
the fluent API and ``MlflowClient`` for experiments, runs, metrics, params,
tags, search, artifacts and errors. Prints one JSON object of what it saw;
the test checks it and checks the server's store through opsloop's SDK.
argv[1]: the id of a run opsloop's own SDK logged (read back through MLflow).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

out: dict = {}
tmp = Path(tempfile.mkdtemp())


def code_of(fn) -> str | None:
    try:
        fn()
    except MlflowException as exc:
        return exc.error_code
    return None


# -- experiments (set_experiment: get-by-name answers RESOURCE_DOES_NOT_EXIST, then create)
exp = mlflow.set_experiment("mlf-exp")
out["exp_id"] = exp.experiment_id
c = MlflowClient()
out["dup_experiment"] = code_of(lambda: c.create_experiment("mlf-exp"))
e2 = c.create_experiment("mlf-exp2", tags={"team": "a"})
c.set_experiment_tag(e2, "purpose", "test")
c.rename_experiment(e2, "mlf-exp2-renamed")
got = c.get_experiment(e2)
out["exp2"] = {"name": got.name, "tags": {k: v for k, v in got.tags.items()}}
c.set_experiment_tag(e2, "scratch", "x")
c.delete_experiment_tag(e2, "scratch")
out["exp2_tag_deleted"] = sorted(c.get_experiment(e2).tags)
out["exp2_tag_missing"] = code_of(lambda: c.delete_experiment_tag(e2, "scratch"))
c.delete_experiment(e2)
out["exp2_deleted"] = c.get_experiment(e2).lifecycle_stage
c.restore_experiment(e2)
out["exp2_restored"] = c.get_experiment(e2).lifecycle_stage
out["search_experiments"] = sorted(
    e.name for e in c.search_experiments(filter_string="name LIKE 'mlf-exp%'")
)
out["missing_experiment"] = code_of(lambda: c.get_experiment("f" * 32))

# -- a run with the fluent API
with mlflow.start_run(run_name="fluent") as run:
    mlflow.log_param("lr", 0.01)
    mlflow.log_params({"depth": 3, "model": "rf"})
    for i in range(5):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8})
    mlflow.set_tag("team", "a")
    mlflow.set_tags({"stage": "dev"})
    (tmp / "notes.txt").write_text("hello opsloop")
    mlflow.log_artifact(str(tmp / "notes.txt"))
    mlflow.log_artifact(str(tmp / "notes.txt"), artifact_path="sub")
    mlflow.log_dict({"a": 1}, "cfg/config.json")
    mlflow.log_input(
        mlflow.data.from_numpy(np.arange(12).reshape(6, 2), name="arr"), context="training"
    )
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("x", 1.0)
    out["param_change"] = code_of(lambda: mlflow.log_param("lr", 0.5))
rid = run.info.run_id
out["run_id"], out["child_id"] = rid, child.info.run_id

r = c.get_run(rid)
out["run"] = {
    "name": r.info.run_name,
    "status": r.info.status,
    "params": dict(r.data.params),
    "metrics": dict(r.data.metrics),
    "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.source")},
    "artifact_uri": r.info.artifact_uri,
    "inputs": [d.dataset.name for d in r.inputs.dataset_inputs],
}
out["child_parent"] = c.get_run(child.info.run_id).data.tags.get("mlflow.parentRunId")
out["history"] = [(m.step, m.value) for m in c.get_metric_history(rid, "loss")]
out["artifacts"] = sorted(a.path for a in c.list_artifacts(rid))
out["artifacts_sub"] = sorted(a.path for a in c.list_artifacts(rid, "sub"))
local = c.download_artifacts(rid, "notes.txt", str(tmp / "dl"))
out["downloaded"] = Path(local).read_text()
out["config"] = mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/config.json")

# -- search: MLflow's filter and order syntax, page tokens
found = mlflow.search_runs(
    experiment_ids=[exp.experiment_id],
    filter_string="metrics.acc > 0.5 and params.model = 'rf' and attributes.status = 'FINISHED'",
    output_format="list",
)
out["search_filter"] = [x.info.run_id for x in found]
out["search_name"] = [
    x.info.run_id
    for x in c.search_runs([exp.experiment_id], filter_string="tags.mlflow.runName = 'child'")
]
out["search_quoted"] = [
    x.info.run_id for x in c.search_runs([exp.experiment_id], filter_string="tags.\"team\" = 'a'")
]
out["bad_filter"] = code_of(
    lambda: c.search_runs([exp.experiment_id], filter_string="metrics.acc >")
)
pages = c.create_experiment("mlf-pages")
made = []
for i in range(5):
    pr = c.create_run(pages, run_name=f"p{i}", start_time=1_700_000_000_000 + i)
    c.log_metric(pr.info.run_id, "score", float(i))
    c.set_terminated(pr.info.run_id)
    made.append(pr.info.run_id)
seen, token, n_pages = [], None, 0
while True:
    page = c.search_runs([pages], max_results=2, page_token=token, order_by=["metrics.score DESC"])
    seen += [x.info.run_id for x in page]
    n_pages += 1
    token = page.token
    if not token:
        break
out["pages"] = {"made": made, "seen": seen, "n_pages": n_pages}

# -- log_batch and its limits
br = c.create_run(pages, run_name="batch")
brid = br.info.run_id
ts = int(time.time() * 1000)
c.log_batch(
    brid,
    metrics=[Metric("m", float(i), ts, i) for i in range(1000)],
    params=[Param(f"p{i}", str(i)) for i in range(100)],
    tags=[RunTag("t", "v")],
)
out["batch_history"] = len(c.get_metric_history(brid, "m"))
# the client splits a batch over MLflow's limits into requests within them
c.log_batch(brid, metrics=[Metric("m2", 1.0, ts, i) for i in range(2500)])
out["split_history"] = len(c.get_metric_history(brid, "m2"))
c.set_tag(brid, "gone", "1")
c.delete_tag(brid, "gone")
out["tag_deleted"] = "gone" not in c.get_run(brid).data.tags
c.delete_run(brid)
out["deleted_stage"] = c.get_run(brid).info.lifecycle_stage
c.restore_run(brid)
out["restored_stage"] = c.get_run(brid).info.lifecycle_stage
out["missing_run"] = code_of(lambda: c.get_run("e" * 32))

# -- async logging
with mlflow.start_run(run_name="async") as arun:
    for i in range(50):
        mlflow.log_metric("a", float(i), step=i, synchronous=False)
out["async_points"] = len(c.get_metric_history(arun.info.run_id, "a"))

# -- multipart upload through the proxy
os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = "1000"
os.environ["MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"] = "6000"
big = tmp / "big.bin"
big.write_bytes(bytes(range(256)) * 80)  # 20480 bytes: 4 parts
with mlflow.start_run(run_name="multipart") as mrun:
    mlflow.log_artifact(str(big))
os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"
mp = c.download_artifacts(mrun.info.run_id, "big.bin", str(tmp / "mp"))
out["multipart_ok"] = Path(mp).read_bytes() == big.read_bytes()
out["multipart_run"] = mrun.info.run_id

# -- a run opsloop's SDK logged, read through MLflow
native = c.get_run(sys.argv[1])
out["native"] = {"params": dict(native.data.params), "metrics": dict(native.data.metrics)}

print(json.dumps(out))
