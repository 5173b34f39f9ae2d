"""Run by tests/test_mlflow_api.py in the separate mlflow virtualenv (.venv-mlflow).

``mlflow.sklearn.autolog()`` on a real fit, ``log_model`` with
``registered_model_name``, ``register_model``, the registry calls of
``MlflowClient`` (aliases, stages, tags, search) and ``load_model`` back,
all against ``opsloop server``. Prints one JSON object of what it saw.
"""

from __future__ import annotations

import json
import warnings

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
out: dict = {}
c = MlflowClient()


def code_of(fn) -> str | None:
    try:
        fn()
    except MlflowException as exc:
        return exc.error_code
    return None


X, y = load_iris(return_X_y=True)
mlflow.set_experiment("mlf-models")

# -- autolog on a real fit
mlflow.sklearn.autolog()
with mlflow.start_run(run_name="autolog") as run:
    LogisticRegression(max_iter=300).fit(X, y)
mlflow.sklearn.autolog(disable=True)
r = c.get_run(run.info.run_id)
out["autolog"] = {
    "run_id": run.info.run_id,
    "params": dict(r.data.params),
    "metrics": sorted(r.data.metrics),
    "outputs": [o.model_id for o in (r.outputs.model_outputs if r.outputs else [])],
    "inputs": len(r.inputs.dataset_inputs),
}

# -- log_model + registered_model_name, then register_model again
model = LogisticRegression(max_iter=300).fit(X, y)
with mlflow.start_run(run_name="train") as run2:
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris")
out["model_id"] = info.model_id
out["model_uri"] = info.model_uri
out["train_run"] = run2.info.run_id
lm = c.get_logged_model(info.model_id)
out["logged_model"] = {"status": str(lm.status), "source_run_id": lm.source_run_id, "name": lm.name}
v2 = mlflow.register_model(info.model_uri, "iris")
out["v2"] = v2.version

loaded = mlflow.sklearn.load_model("models:/iris/1")
out["predict_same"] = loaded.predict(X[:20]).tolist() == model.predict(X[:20]).tolist()

# -- aliases and stages
c.set_registered_model_alias("iris", "champion", "1")
out["alias_version"] = c.get_model_version_by_alias("iris", "champion").version
pyf = mlflow.pyfunc.load_model("models:/iris@champion")
out["alias_predict"] = pyf.predict(X[:5]).tolist() == model.predict(X[:5]).tolist()
c.delete_registered_model_alias("iris", "champion")
out["alias_gone"] = code_of(lambda: c.get_model_version_by_alias("iris", "champion"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mv = c.transition_model_version_stage("iris", "2", "Production")
    out["stage"] = mv.current_stage
    out["latest_production"] = [
        v.version for v in c.get_latest_versions("iris", stages=["Production"])
    ]
    c.transition_model_version_stage("iris", "1", "Production", archive_existing_versions=True)
    out["stages_after"] = {
        v.version: v.current_stage for v in c.search_model_versions("name='iris'")
    }

# -- registered models and versions: tags, descriptions, search, download uri
c.update_registered_model("iris", description="iris classifier")
c.set_registered_model_tag("iris", "team", "ml")
c.set_model_version_tag("iris", "1", "validated", "yes")
c.update_model_version("iris", "1", description="first")
got = c.get_registered_model("iris")
out["registered"] = {"description": got.description, "tags": dict(got.tags)}
v1 = c.get_model_version("iris", "1")
out["v1"] = {"tags": dict(v1.tags), "description": v1.description, "run_id": v1.run_id,
             "status": v1.status}  # fmt: skip
c.delete_model_version_tag("iris", "1", "validated")
c.delete_registered_model_tag("iris", "team")
out["tags_after_delete"] = [
    dict(c.get_model_version("iris", "1").tags),
    dict(c.get_registered_model("iris").tags),
]
out["search_models"] = [
    m.name for m in c.search_registered_models(filter_string="name LIKE 'iri%'")
]
out["download_uri"] = c.get_model_version_download_uri("iris", "1")
# -- rename: versions, stages and tags go along; the old name is gone, then renamed back
c.rename_registered_model("iris", "iris-new")  # answers None in MLflow 3's MlflowClient
out["rename"] = {
    "name": c.get_registered_model("iris-new").name,
    "versions": sorted(str(v.version) for v in c.search_model_versions("name='iris-new'")),
    "v1_stage": c.get_model_version("iris-new", "1").current_stage,
    "old_gone": code_of(lambda: c.get_registered_model("iris")),
    "predict": mlflow.sklearn.load_model("models:/iris-new/1").predict(X[:5]).tolist()
    == model.predict(X[:5]).tolist(),
}
c.create_registered_model("taken")
out["rename_taken"] = code_of(lambda: c.rename_registered_model("iris-new", "taken"))
out["rename_missing"] = code_of(lambda: c.rename_registered_model("no-such-model", "x"))
c.delete_registered_model("taken")
c.rename_registered_model("iris-new", "iris")
out["renamed_back"] = c.get_registered_model("iris").name
c.create_registered_model("scratch", tags={"k": "v"}, description="d")
out["dup_model"] = code_of(lambda: c.create_registered_model("scratch"))
c.delete_registered_model("scratch")
out["scratch_gone"] = code_of(lambda: c.get_registered_model("scratch"))
c.delete_model_version("iris", "2")
out["v2_gone"] = code_of(lambda: c.get_model_version("iris", "2"))

print(json.dumps(out))
