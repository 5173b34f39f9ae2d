"""``opsloop deployments export``: a pinned Dockerfile and Kubernetes manifests that the
official Kubernetes client's model classes accept without losing a field.

Real parts: a registered scikit-learn model, the CLI, the memory measured by a child
process that loads the model. Not checked against a live cluster (there is none here).
"""

from __future__ import annotations

import inspect
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import opsloop
from opsloop.cli import app
from opsloop.deployments._export import to_yaml
from opsloop.registry import Registry

runner = CliRunner()
K8S_TYPES = {
    "Deployment": "V1Deployment",
    "Service": "V1Service",
    "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler",
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    from opsloop.registry.flavors import save_sklearn

    home = tmp_path_factory.mktemp("export-home")
    with opsloop.Client(home=home) as c:
        est = LogisticRegression().fit(
            [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [0, 1, 0, 1]
        )
        folder = save_sklearn(est, home / "src", input_example=[{"a": 0.0, "b": 1.0}])
        reg = Registry(c)
        reg.register("Churn_Model", folder)
        reg.set_alias("Churn_Model", "champion", 1)
    return home


def _cli(home: Path, *args: str) -> Any:
    return runner.invoke(app, ["--home", str(home), "deployments", "export", *args])


def _k8s_roundtrip(doc: dict[str, Any]) -> Any:
    """The document as the client's model class, and back: a misspelt field would vanish."""
    from kubernetes.client import ApiClient

    api = ApiClient()

    kind = K8S_TYPES[doc["kind"]]
    if "response_text" in inspect.signature(api.deserialize).parameters:  # client 35+
        obj = api.deserialize(json.dumps(doc), kind, "application/json")
    else:  # older clients take a response object

        class _Response:
            data = json.dumps(doc)

        obj = api.deserialize(_Response(), kind)
    assert api.sanitize_for_serialization(obj) == doc
    return obj


def test_docker_export_pins_the_recorded_libraries_and_bundles_the_model(
    registered: Path, tmp_path: Path
) -> None:
    out = tmp_path / "img"
    res = _cli(registered, "models:/Churn_Model@champion", "--format", "docker", "-o", str(out))
    assert res.exit_code == 0, res.output
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert reqs[0] == f"opsloop[serving,sklearn]=={opsloop.__version__}"
    # Pinned to what the version recorded when saved (the same libraries are installed here).
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in reqs
    assert f"skops=={metadata.version('skops')}" in reqs
    assert (out / "model" / "opsloop-model.json").is_file()
    docker = (out / "Dockerfile").read_text()
    assert "COPY model/ /opt/opsloop/model/" in docker
    cmd = json.loads(docker.split("\nCMD ", 1)[1])
    assert cmd == ["opsloop", "serve", "/opt/opsloop/model", "--host", "0.0.0.0", "--port", "8000"]
    # The folder the image serves is one opsloop can serve: the registry's files, unchanged.
    with opsloop.Client(home=registered) as c:
        model = Registry(c).load("models:/Churn_Model/1")
        assert model.predict([{"a": 1.0, "b": 0.0}]) == [1]
    from opsloop.registry import load_model

    assert load_model(str(out / "model")).predict([{"a": 1.0, "b": 0.0}]) == [1]


def test_kubernetes_manifests_load_into_the_official_client_models(
    registered: Path, tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    res = _cli(
        registered,
        "Churn_Model",
        "--format",
        "kubernetes",
        "-o",
        str(out),
        "--image",
        "registry.example/churn:1",
        "--min-replicas",
        "2",
        "--replicas",
        "2",
        "--max-replicas",
        "6",
    )
    assert res.exit_code == 0, res.output
    text = (out / "kubernetes.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    dep, svc, hpa = (_k8s_roundtrip(d) for d in docs)
    assert dep.metadata.name == svc.metadata.name == hpa.metadata.name == "opsloop-churn-model"
    c = dep.spec.template.spec.containers[0]
    assert c.image == "registry.example/churn:1"
    assert c.readiness_probe.http_get.path == "/ready"
    assert c.liveness_probe.http_get.path == "/health"
    assert c.ports[0].container_port == 8000 and c.ports[0].name == "http"
    # The memory request was measured: loading scikit-learn and the model takes tens of MiB.
    mem = c.resources.requests["memory"]
    assert mem.endswith("Mi") and 40 <= int(mem[:-2]) <= 4096, mem
    assert "Memory request: " + mem[:-2] + " MiB (measured" in text
    assert c.resources.limits["memory"] == f"{2 * int(mem[:-2])}Mi"
    assert dep.spec.selector.match_labels == svc.spec.selector
    assert dep.spec.template.metadata.labels == dep.spec.selector.match_labels
    assert svc.spec.ports[0].target_port == "http"
    assert hpa.spec.scale_target_ref.name == dep.metadata.name
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas, dep.spec.replicas) == (2, 6, 2)
    assert c.args == ["serve", "/opt/opsloop/model", "--host", "0.0.0.0", "--port", "8000"]


def test_the_measured_peak_is_the_childs_own_not_its_large_parents(registered: Path) -> None:
    """Linux carries ru_maxrss across exec, so a child spawned by a process that once held
    gigabytes (a test worker with models loaded) reported the parent's peak: 9 GiB."""
    from opsloop.deployments._export import measure_memory
    from opsloop.settings import Settings

    ballast = bytearray(1500 * 2**20)  # the parent's resident set: 1.5 GiB touched
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    try:
        peak = measure_memory("models:/Churn_Model/1", Settings(home=registered), [])
    finally:
        del ballast
    assert 20 * 2**20 <= peak <= 1000 * 2**20, peak / 2**20


def test_following_the_registry_bundles_nothing_and_a_given_memory_skips_measuring(
    registered: Path, tmp_path: Path
) -> None:
    out = tmp_path / "k"
    res = _cli(
        registered,
        "models:/Churn_Model@champion",
        "--format",
        "kubernetes",
        "-o",
        str(out),
        "--memory",
        "300",
        "--follow-registry",
        "http://opsloop.internal:5000",
    )
    assert res.exit_code == 0, res.output
    dep = _k8s_roundtrip(next(yaml.safe_load_all((out / "kubernetes.yaml").read_text())))
    c = dep.spec.template.spec.containers[0]
    assert c.resources.requests["memory"] == "300Mi"
    assert c.args[:2] == ["serve", "models:/Churn_Model@champion"]
    assert ("OPSLOOP_TRACKING_URI", "http://opsloop.internal:5000") in [
        (e.name, e.value) for e in c.env
    ]
    docker = tmp_path / "d"
    res = _cli(
        registered,
        "models:/Churn_Model@champion",
        "-o",
        str(docker),
        "--follow-registry",
        "http://x:5000",
    )
    assert res.exit_code == 0, res.output
    assert not (docker / "model").exists()
    assert 'ENV OPSLOOP_TRACKING_URI="http://x:5000"' in (docker / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["models:/Nope@champion"], "NOT_FOUND"),
        (["models:/Churn_Model@champion", "--format", "helm"], "unknown format"),
        (
            ["models:/Churn_Model@champion", "--min-replicas", "3", "--max-replicas", "2"],
            "min replicas",
        ),
        (["models:/Churn_Model@champion", "--cpu", "lots"], "cpu must be"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    registered: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "never"
    res = _cli(registered, *args, "-o", str(out))
    assert res.exit_code != 0
    assert needle in res.output
    assert not out.exists()


def test_an_existing_non_empty_folder_is_refused(registered: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    res = _cli(registered, "models:/Churn_Model@champion", "-o", str(tmp_path))
    assert res.exit_code != 0 and "not an empty folder" in res.output
    assert (tmp_path / "keep.txt").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1


def test_yaml_writer_round_trips_awkward_values() -> None:
    value = {
        "a": [{"b": "x: y", "c": [1, 2.5, True, None]}, [], {}],
        "quote": 'say "hi"\n',
        "empty": "",
        "list": [["nested", 1]],
    }
    assert yaml.safe_load(to_yaml(value)) == value
