"""MLflow's REST protocol on opsloop's server (``opsloop.mlflowapi``).

Two parts:

- the wire, in process (``TestClient`` on ``create_app``): GET messages as
  query parameters, int64 fields as strings, DELETE with a JSON body, MLflow's
  error JSON and codes, log-batch limits leaving nothing stored, the filter
  translation, the artifact proxy;
- the real ``mlflow`` 3.x client in its own virtualenv (``.venv-mlflow``,
  made by ``scripts/setup.sh dev``; ``OPSLOOP_MLFLOW_PYTHON`` names another
  interpreter) against a real server (uvicorn) on a free port: the fluent API
  and ``MlflowClient`` (tests/mlflow_client/client_tracking.py), sklearn
  autolog on a real fit, ``log_model``/``register_model``/``load_model`` and
  the registry calls (client_models.py), a Hugging Face ``Trainer`` with its
  MLflow callback on a tiny BERT (client_hf.py). What they logged is then read back
  through opsloop's SDK. Without that interpreter these skip, naming the
  command that makes it; under ``CI=true`` they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsloop import Client
from opsloop.mlflowapi import run_filter, run_order_by
from opsloop.server import create_app
from opsloop.settings import Settings
from tests._procs import ServerProcess, child_env
from tests.conftest import fresh_pg_database

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).parent / "mlflow_client"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


# ---------------------------------------------------------------------------- the wire


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The server app on SQLite, then on PostgreSQL (skipped without it, failing under CI=true)."""
    home = tmp_path_factory.mktemp("mlflow-wire")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_pg_database()) if request.param == "postgresql" else None
        settings = Settings(home=home, database_url=url) if url else Settings(home=home)
        yield stack.enter_context(TestClient(create_app(settings)))


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _new_run(api: TestClient, exp_name: str) -> tuple[str, str]:
    eid = _ok(api.post(f"{API}/experiments/create", json={"name": exp_name}))["experiment_id"]
    run = _ok(
        api.post(
            f"{API}/runs/create",
            json={"experiment_id": eid, "start_time": "1700000000000", "run_name": "r"},
        )
    )["run"]
    return eid, run["info"]["run_id"]


def test_get_reads_query_params_and_int64_strings(api: TestClient) -> None:
    eid, rid = _new_run(api, "wire-a")
    _ok(
        api.post(
            f"{API}/runs/log-metric",
            json={
                "run_id": rid,
                "key": "loss",
                "value": "NaN",
                "timestamp": "1700000000001",
                "step": "3",
            },
        )
    )
    _ok(
        api.post(
            f"{API}/runs/log-metric",
            json={
                "run_id": rid,
                "key": "loss",
                "value": 0.5,
                "timestamp": 1700000000002,
                "step": 4,
            },
        )
    )
    got = _ok(api.get(f"{API}/runs/get", params={"run_id": rid}))["run"]
    assert got["info"]["start_time"] == 1700000000000
    assert got["info"]["experiment_id"] == eid
    assert got["info"]["artifact_uri"] == f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    hist = _ok(api.get(f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "loss"}))[
        "metrics"
    ]
    assert [(m["step"], m["value"]) for m in hist] == [(3, "NaN"), (4, 0.5)]
    page = _ok(
        api.get(
            f"{API}/metrics/get-history",
            params={"run_id": rid, "metric_key": "loss", "max_results": "1"},
        )
    )
    assert len(page["metrics"]) == 1 and page["next_page_token"]
    rest = _ok(
        api.get(
            f"{API}/metrics/get-history",
            params={"run_id": rid, "metric_key": "loss", "page_token": page["next_page_token"]},
        )
    )
    assert [m["step"] for m in rest["metrics"]] == [4] and "next_page_token" not in rest
    # experiment "0" is opsloop's Default experiment
    default = _ok(api.get(f"{API}/experiments/get", params={"experiment_id": "0"}))
    assert default["experiment"]["name"] == "Default"


def test_errors_answer_mlflow_codes_and_change_nothing(api: TestClient) -> None:
    _, rid = _new_run(api, "wire-b")
    r = api.get(f"{API}/runs/get", params={"run_id": "f" * 32})
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST" and r.json()["message"]
    r = api.post(f"{API}/experiments/create", json={"name": "wire-b"})
    assert (r.status_code, r.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    r = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"})
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{API}/runs/no-such-call", json={})
    assert (r.status_code, r.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    r = api.post(
        f"{API}/runs/log-batch", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (r.status_code, r.json()["error_code"]) == (400, "BAD_REQUEST")
    r = api.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": "soon"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    r = api.post(
        f"{API}/experiments/delete-experiment-tag", json={"experiment_id": "0", "key": "k"}
    )
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{API}/registered-models/rename", json={"name": "nope", "new_name": "x"})
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{API}/registered-models/rename", json={"name": "nope"})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    # MLflow's batch limits: refused whole, nothing stored
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "metrics": metrics})
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "at most 1000 metrics" in r.json()["message"]
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    r = api.post(f"{API}/runs/log-batch", json={"run_id": rid, "params": params})
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    _ok(api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "lr", "value": "0.1"}))
    r = api.post(
        f"{API}/runs/log-batch",
        json={
            "run_id": rid,
            "metrics": [{"key": "ok", "value": 1, "timestamp": 1}],
            "params": [{"key": "lr", "value": "0.2"}],
        },
    )
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    data = _ok(api.get(f"{API}/runs/get", params={"run_id": rid}))["run"]["data"]
    assert data["params"] == [{"key": "lr", "value": "0.1"}] and data["metrics"] == []


def test_delete_experiment_tag_and_rename_registered_model(api: TestClient) -> None:
    eid = _ok(
        api.post(
            f"{API}/experiments/create",
            json={"name": "wire-tags", "tags": [{"key": "a", "value": "1"}]},
        )
    )["experiment_id"]
    for key, value in (("b", "2"), ("mlflow.note.content", "a note")):
        body = {"experiment_id": eid, "key": key, "value": value}
        _ok(api.post(f"{API}/experiments/set-experiment-tag", json=body))
    for key in ("b", "mlflow.note.content"):
        body = {"experiment_id": eid, "key": key}
        _ok(api.post(f"{API}/experiments/delete-experiment-tag", json=body))
        r = api.post(f"{API}/experiments/delete-experiment-tag", json=body)
        assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    exp = _ok(api.get(f"{API}/experiments/get", params={"experiment_id": eid}))["experiment"]
    assert exp["tags"] == [{"key": "a", "value": "1"}]

    tags = [{"key": "team", "value": "ml"}]
    _ok(api.post(f"{API}/registered-models/create", json={"name": "wire-old", "tags": tags}))
    _ok(api.post(f"{API}/registered-models/create", json={"name": "wire-taken"}))
    r = api.post(
        f"{API}/registered-models/rename", json={"name": "wire-old", "new_name": "wire-taken"}
    )
    assert (r.status_code, r.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    got = _ok(
        api.post(
            f"{API}/registered-models/rename", json={"name": "wire-old", "new_name": "wire-new"}
        )
    )["registered_model"]
    assert got["name"] == "wire-new" and got["tags"] == tags
    r = api.get(f"{API}/registered-models/get", params={"name": "wire-old"})
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    names = _ok(api.get(f"{API}/registered-models/search", params={"filter": "name LIKE 'wire-%'"}))
    assert [m["name"] for m in names["registered_models"]] == ["wire-new", "wire-taken"]


def test_search_runs_filter_order_and_pages(api: TestClient) -> None:
    eid = _ok(api.post(f"{API}/experiments/create", json={"name": "wire-search"}))["experiment_id"]
    ids = []
    for i in range(5):
        run = _ok(
            api.post(
                f"{API}/runs/create",
                json={
                    "experiment_id": eid,
                    "run_name": f"r{i}",
                    "tags": [{"key": "k", "value": str(i % 2)}],
                },
            )
        )["run"]
        rid = run["info"]["run_id"]
        ids.append(rid)
        _ok(
            api.post(
                f"{API}/runs/log-batch",
                json={
                    "run_id": rid,
                    "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1, "step": 0}],
                    "params": [{"key": "model", "value": "rf" if i < 3 else "lr"}],
                },
            )
        )
    body = {
        "experiment_ids": [eid],
        "filter": "metrics.acc >= 0.1 and params.model = 'rf' and tags.k = '0'",
        "order_by": ["metrics.acc DESC"],
    }
    got = [r["info"]["run_id"] for r in _ok(api.post(f"{API}/runs/search", json=body))["runs"]]
    assert got == [ids[2]]
    seen, token = [], None
    while True:
        page = _ok(
            api.post(
                f"{API}/runs/search",
                json={
                    "experiment_ids": [eid],
                    "max_results": 2,
                    "order_by": ["attributes.run_name ASC"],
                    **({"page_token": token} if token else {}),
                },
            )
        )
        seen += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == [f"r{i}" for i in range(5)]
    by_name = _ok(
        api.post(
            f"{API}/runs/search",
            json={"experiment_ids": [eid], "filter": "tags.`mlflow.runName` = 'r3'"},
        )
    )["runs"]
    assert [r["info"]["run_id"] for r in by_name] == [ids[3]]
    r = api.post(
        f"{API}/runs/search", json={"experiment_ids": [eid], "filter": "metrics.acc > 'x'"}
    )
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_filter_translation() -> None:
    assert (
        run_filter("metrics.rmse < 1 and params.model = 'rf' and tags.\"mlflow.runName\" LIKE 'a%'")
        == 'metrics.`rmse` < 1.0 and params.`model` = "rf" and name like "a%"'
    )
    assert run_filter("attributes.run_id IN ('a', 'b') AND user_id = 'x'") == (
        'id in ("a", "b") and user = "x"'
    )
    assert run_filter("tags.`a b` != 'it''s'") == 'tags.`a b` != "it\'s"'
    assert run_filter("") is None
    assert run_order_by(["metrics.`val loss` DESC", "start_time"]) == [
        "metrics.`val loss` desc",
        "start_time asc",
    ]


def test_artifact_proxy(api: TestClient) -> None:
    eid, rid = _new_run(api, "wire-art")
    base = f"{ART}/{eid}/{rid}/artifacts"
    assert api.put(f"{base}/dir/a.txt", content=b"alpha").status_code == 200
    assert api.put(f"{base}/b.bin", content=b"\x00\x01").status_code == 200
    assert api.get(f"{base}/dir/a.txt").content == b"alpha"
    listed = _ok(api.get(ART, params={"path": f"{eid}/{rid}/artifacts"}))["files"]
    assert sorted((f["path"], f["is_dir"]) for f in listed) == [("b.bin", False), ("dir", True)]
    inner = _ok(api.get(ART, params={"path": f"{eid}/{rid}/artifacts/dir"}))["files"]
    assert inner == [{"path": "a.txt", "is_dir": False, "file_size": 5}]
    assert api.delete(f"{base}/dir").status_code == 200
    r = api.get(f"{base}/dir/a.txt")
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.put(f"{ART}/not/a/known/place.txt", content=b"x")
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = api.put(f"{base}/../escape.txt", content=b"x")
    assert r.status_code in (400, 404)


def test_fuzzed_requests_never_answer_500(api: TestClient) -> None:
    """Random messages to every MLflow route: MLflow's error shape, never a server error."""
    eid, rid = _new_run(api, "wire-fuzz")
    _ok(api.post(f"{API}/runs/log-parameter", json={"run_id": rid, "key": "p", "value": "1"}))
    from opsloop.mlflowapi.api import HANDLERS

    routes = sorted((m, p.replace("{model_id}", f"m-{rid}").replace("{tag_key:path}", "k"))
                    for m, p in HANDLERS)  # fmt: skip
    fields = ["run_id", "run_uuid", "experiment_id", "experiment_name", "name", "new_name", "key",
              "value", "timestamp", "step", "metrics", "params", "tags", "filter", "order_by",
              "max_results", "page_token", "version", "alias", "stage", "source", "model_id",
              "status", "start_time", "end_time", "run_name", "metric_key", "view_type",
              "run_view_type", "experiment_ids", "datasets", "models", "description"]  # fmt: skip
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20),
        st.sampled_from([rid, eid, "0", "iris", "1", "m-" + rid, "metrics.p > 1", "FINISHED"]),
    )  # fmt: skip
    entry = st.dictionaries(
        st.sampled_from(["key", "value", "timestamp", "step", "dataset"]), scalars
    )
    values = st.one_of(scalars, st.lists(scalars, max_size=3), st.lists(entry, max_size=3))
    bodies = st.dictionaries(st.sampled_from(fields), values, max_size=6)

    before = _ok(api.get(f"{API}/runs/get", params={"run_id": rid}))["run"]["data"]["params"]

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(routes), bodies)
    def check(route: tuple[str, str], body: dict[str, Any]) -> None:
        method, path = route
        if method == "GET":
            params = {k: v for k, v in body.items() if isinstance(v, (str, int, float))}
            r = api.get(API + path, params=params)
        else:
            r = api.request(method, API + path, content=json.dumps(body, default=str))
        assert r.status_code < 500 or r.status_code == 501, (method, path, body, r.text)
        if r.status_code >= 400:
            assert set(r.json()) == {"error_code", "message"}, r.text

    check()
    after = _ok(api.get(f"{API}/runs/get", params={"run_id": rid}))["run"]["data"]["params"]
    assert before == [{"key": "p", "value": "1"}]
    assert {"key": "p", "value": "1"} in after  # a param never changes, whatever was sent


# ---------------------------------------------------------------------------- the real mlflow client


def _mlflow_python(
    default: Path = ROOT / ".venv-mlflow" / "bin" / "python", env: str = "OPSLOOP_MLFLOW_PYTHON"
) -> Path:
    py = Path(os.environ.get(env, default))
    if not py.exists():
        msg = (
            f"the mlflow client's virtualenv is missing ({py}); make it with "
            "`scripts/setup.sh dev` (or scripts/mlflow_venv.sh)"
        )
        if IN_CI:
            pytest.fail(f"{msg}: under CI=true these tests must run")
        pytest.skip(msg)
    return py


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    return _mlflow_python()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_python: Path
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("mlflow-server")
    with ServerProcess(home) as srv:
        yield srv


def run_client(py: Path, script: str, url: str, *args: str) -> dict[str, Any]:
    env = child_env(
        MLFLOW_TRACKING_URI=url,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        GIT_PYTHON_REFRESH="quiet",
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
    )
    env.pop("PYTHONPATH", None)  # the client's venv must not see opsloop's packages
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(py), str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=str(SCRIPTS),
    )
    assert proc.returncode == 0, (
        f"{script} failed ({time.monotonic() - t0:.0f}s):\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
    )
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_mlflow_client_tracking(mlflow_python: Path, server: ServerProcess) -> None:
    sdk = Client(server.url)
    native = sdk.create_run(experiment_name="native", params={"alpha": 0.5})
    sdk.log_metric(native.id, "score", 0.75, step=1)
    sdk.flush()
    out = run_client(mlflow_python, "client_tracking.py", server.url, native.id)

    assert out["dup_experiment"] == "RESOURCE_ALREADY_EXISTS"
    assert out["exp2"] == {"name": "mlf-exp2-renamed", "tags": {"team": "a", "purpose": "test"}}
    assert out["exp2_tag_deleted"] == ["purpose", "team"]
    assert out["exp2_tag_missing"] == "RESOURCE_DOES_NOT_EXIST"
    assert (out["exp2_deleted"], out["exp2_restored"]) == ("deleted", "active")
    assert out["search_experiments"] == ["mlf-exp", "mlf-exp2-renamed"]
    assert out["missing_experiment"] == "RESOURCE_DOES_NOT_EXIST"
    run = out["run"]
    assert run["name"] == "fluent" and run["status"] == "FINISHED"
    assert run["params"] == {"lr": "0.01", "depth": "3", "model": "rf"}
    assert run["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": 0.8}
    assert run["tags"]["team"] == "a" and run["tags"]["stage"] == "dev"
    assert run["tags"]["mlflow.runName"] == "fluent"
    assert run["inputs"] == ["arr"]
    assert out["param_change"] == "INVALID_PARAMETER_VALUE"
    assert out["child_parent"] == out["run_id"]
    assert out["history"] == [[i, 1.0 / (i + 1)] for i in range(5)]
    assert out["artifacts"] == ["cfg", "notes.txt", "sub"]
    assert out["artifacts_sub"] == ["sub/notes.txt"]
    assert out["downloaded"] == "hello opsloop" and out["config"] == {"a": 1}
    assert out["search_filter"] == [out["run_id"]]
    assert out["search_name"] == [out["child_id"]]
    assert out["search_quoted"] == [out["run_id"]]
    assert out["bad_filter"] == "INVALID_PARAMETER_VALUE"
    pages = out["pages"]
    assert pages["seen"] == list(reversed(pages["made"])) and pages["n_pages"] == 3
    assert out["batch_history"] == 1000 and out["split_history"] == 2500
    assert out["tag_deleted"] is True
    assert (out["deleted_stage"], out["restored_stage"]) == ("deleted", "active")
    assert out["missing_run"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["async_points"] == 50
    assert out["multipart_ok"] is True
    assert out["native"] == {"params": {"alpha": "0.5"}, "metrics": {"score": 0.75}}

    # What the MLflow client logged is an opsloop run, read through opsloop's SDK.
    exp = sdk.get_experiment_by_name("mlf-exp")
    r = sdk.get_run(out["run_id"])
    assert r.experiment_id == exp.id and r.name == "fluent" and r.status == "FINISHED"
    assert r.params == {"lr": "0.01", "depth": "3", "model": "rf"}
    assert r.tags["team"] == "a" and "mlflow.runName" not in r.tags
    hist = sdk.get_metric_history(out["run_id"], "loss")
    assert hist.steps == [0, 1, 2, 3, 4] and hist.values[-1] == pytest.approx(0.2)
    assert sdk.get_run(out["child_id"]).parent_run_id == out["run_id"]
    assert sdk.read_artifact(out["run_id"], "sub/notes.txt") == b"hello opsloop"
    assert len(sdk.read_artifact(out["multipart_run"], "big.bin")) == 20480
    sdk.close()


@pytest.mark.slow
def test_mlflow_client_models(mlflow_python: Path, server: ServerProcess) -> None:
    out = run_client(mlflow_python, "client_models.py", server.url)
    auto = out["autolog"]
    assert auto["params"]["max_iter"] == "300"
    assert "training_accuracy_score" in auto["metrics"]
    assert auto["outputs"] and auto["inputs"] >= 1
    assert out["model_id"].startswith("m-")
    assert out["logged_model"]["source_run_id"] == out["train_run"]
    assert "READY" in out["logged_model"]["status"]
    assert out["v2"] == 2 or out["v2"] == "2"
    assert out["predict_same"] is True and out["alias_predict"] is True
    assert out["alias_version"] in (1, "1")
    assert out["alias_gone"] == "INVALID_PARAMETER_VALUE"
    assert out["stage"] == "Production" and out["latest_production"] in (["2"], [2])
    assert out["stages_after"] == {"1": "Production", "2": "Archived"}
    assert out["registered"] == {"description": "iris classifier", "tags": {"team": "ml"}}
    assert out["v1"]["tags"] == {"validated": "yes"} and out["v1"]["description"] == "first"
    assert out["v1"]["run_id"] == out["train_run"] and out["v1"]["status"] == "READY"
    assert out["tags_after_delete"] == [{}, {}]
    assert out["search_models"] == ["iris"]
    assert out["download_uri"] == "mlflow-artifacts:/_registry/iris/1"
    assert out["rename"] == {
        "name": "iris-new",
        "versions": ["1", "2"],
        "v1_stage": "Production",
        "old_gone": "RESOURCE_DOES_NOT_EXIST",
        "predict": True,
    }
    assert out["rename_taken"] == "RESOURCE_ALREADY_EXISTS"
    assert out["rename_missing"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["renamed_back"] == "iris"
    assert out["dup_model"] == "RESOURCE_ALREADY_EXISTS"
    assert out["scratch_gone"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["v2_gone"] == "RESOURCE_DOES_NOT_EXIST"

    # The registered model is an opsloop model version; the logged model a child run.
    sdk = Client(server.url)
    mv = sdk.registry.get_version("iris", 1)
    assert mv.flavor == "mlflow" and "MLmodel" in mv.files
    assert mv.aliases == ["production"]
    model_run = sdk.get_run(out["model_id"][2:])
    assert model_run.parent_run_id == out["train_run"] and model_run.status == "FINISHED"
    auto_run = sdk.get_run(auto["run_id"])
    assert auto_run.params["max_iter"] == "300"
    assert "training_accuracy_score" in auto_run.metrics
    sdk.close()


@pytest.mark.slow
def test_hugging_face_trainer_logs_through_its_mlflow_callback(
    mlflow_python: Path, server: ServerProcess
) -> None:
    out = run_client(mlflow_python, "client_hf.py", server.url)
    assert out["n_runs"] == 1 and out["name"] == "hf-tiny"
    assert out["n_params"] > 100 and out["learning_rate_param"] == "5e-05"
    assert {"loss", "learning_rate", "train_runtime"} <= set(out["metrics"])
    assert out["loss_steps"] == list(range(1, 9))  # 32 examples / 8 per step x 2 epochs
    sdk = Client(server.url)
    run = sdk.get_run(out["run_id"])
    assert run.name == "hf-tiny" and run.status == "FINISHED"
    assert sdk.get_metric_history(out["run_id"], "loss").steps == list(range(1, 9))
    sdk.close()


@pytest.mark.slow
def test_oldest_mlflow_2_client(server: ServerProcess) -> None:
    py = _mlflow_python(ROOT / ".venv-mlflow2" / "bin" / "python", "OPSLOOP_MLFLOW2_PYTHON")
    out = run_client(py, "client_mlflow2.py", server.url)
    assert out["version"] == "2.0.1"
    assert out["params"] == {"a": "1"} and out["metrics"] == {"m": 2.0} and out["tag"] == "v"
    assert out["history"] == [0, 1, 2] and out["artifacts"] == ["f.txt"]
    assert out["search"] == [out["run_id"]] and out["model"] == "old-model"
    assert out["renamed"] == ["old-model-2", "RESOURCE_DOES_NOT_EXIST"]
    assert out["missing"] == "RESOURCE_DOES_NOT_EXIST"
    sdk = Client(server.url)
    assert sdk.read_artifact(out["run_id"], "f.txt") == b"hi"
    sdk.close()
