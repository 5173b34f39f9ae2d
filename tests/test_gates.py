"""Promotion gates: stored per model, checked on every alias move (SDK, REST, CLI), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.errors import InvalidArgument, NotFound, PromotionRefused
from opsloop.evaluation import evaluate
from opsloop.settings import Settings
from tests.conftest import BackendEnv, live_server

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.dummy import DummyClassifier

    from opsloop.registry.flavors import save_sklearn

    m = DummyClassifier(strategy="most_frequent").fit([[0.0], [1.0]], [0, 1])
    return save_sklearn(m, tmp_path_factory.mktemp("m") / "dummy", input_example=[{"x": 0.0}])


@pytest.fixture
def client(backend: BackendEnv) -> opsloop.Client:
    """Gates on each of the four backends (the shared ``backend`` fixture)."""
    return backend.client


def _version(client: opsloop.Client, folder: Path, **metrics: float) -> int:
    run = client.create_run(experiment_name="train")
    client.log_metrics(run.id, metrics, synchronous=True)
    return client.registry.register("churn", folder, run_id=run.id).version


RULES = [
    {"metric": "f1", "min_delta_vs": "champion", "tolerance": 0.005},
    {"metric": "latency_p99_ms", "max": 200},
]


def test_gate_passes_refuses_with_shortfalls_and_force_is_recorded(
    client: opsloop.Client, model_folder: Path
) -> None:
    v1 = _version(client, model_folder, f1=0.80, latency_p99_ms=120.0)
    client.evaluation.set_gate("churn", RULES, aliases=["champion"])
    client.registry.set_alias("churn", "champion", v1)  # no champion yet: delta rule passes
    v2 = _version(client, model_folder, f1=0.797, latency_p99_ms=150.0)  # within tolerance
    client.registry.set_alias("churn", "champion", v2)
    v3 = _version(client, model_folder, f1=0.78, latency_p99_ms=250.0)
    with pytest.raises(PromotionRefused) as exc:
        client.registry.set_alias("churn", "champion", v3)
    e = exc.value
    assert e.code == "PROMOTION_GATE_FAILED" and e.http_status == 409
    fails = {f["metric"]: f for f in e.details["failures"]}
    assert set(fails) == {"f1", "latency_p99_ms"}
    assert fails["f1"]["required"] == pytest.approx(0.797 - 0.005)
    assert fails["f1"]["shortfall"] == pytest.approx(0.792 - 0.78)
    assert fails["f1"]["reference_version"] == v2
    assert fails["latency_p99_ms"]["shortfall"] == pytest.approx(50.0)
    assert "f1 0.78 is below champion v2's 0.797" in e.message
    assert "latency_p99_ms 250 is above the max 200 by 50" in e.message
    assert client.registry.get_version_by_alias("churn", "champion").version == v2  # unchanged
    client.registry.set_alias("churn", "challenger", v3)  # the gate guards only champion
    client.registry.set_alias("churn", "champion", v3, force=True)
    assert client.registry.get_version_by_alias("churn", "champion").version == v3
    actions = [ev.action for ev in client.registry.history("churn", limit=3)]
    assert actions[:2] == ["alias_set", "promotion_forced"]


def test_latest_evaluation_run_overrides_the_source_run(
    client: opsloop.Client, model_folder: Path
) -> None:
    v1 = _version(client, model_folder, accuracy=0.9)
    client.registry.set_alias("churn", "champion", v1)
    v2 = _version(client, model_folder, accuracy=0.95)
    client.evaluation.set_gate("churn", [{"metric": "accuracy", "min_delta_vs": "champion"}])
    rows = [{"x": float(i % 2), "label": 1} for i in range(10)] + [{"x": 0.0, "label": 0}] * 10
    res = evaluate(f"models:/churn/{v2}", rows, metrics=["accuracy"], client=client,
                   n_bootstrap=20)  # fmt: skip
    assert res.metrics["accuracy"] == pytest.approx(0.5)  # most_frequent on a 50/50 set
    with pytest.raises(
        PromotionRefused, match=re.escape("accuracy 0.5 is below champion v1's 0.9")
    ):
        client.registry.set_alias("churn", "champion", v2)


def test_gate_crud_and_bad_rules(client: opsloop.Client) -> None:
    with pytest.raises(NotFound):
        client.evaluation.get_gate("churn")
    with pytest.raises(InvalidArgument, match="min_delta_vs, max or min"):
        client.evaluation.set_gate("churn", [{"metric": "f1"}])
    with pytest.raises(InvalidArgument, match="non-empty"):
        client.evaluation.set_gate("churn", [])
    g = client.evaluation.set_gate("churn", RULES)
    assert client.evaluation.get_gate("churn").rules == g.rules and g.aliases is None
    client.evaluation.delete_gate("churn")
    with pytest.raises(NotFound):
        client.evaluation.delete_gate("churn")


def test_rest_refusal_shape_and_cli_force(home: Path, model_folder: Path) -> None:
    from opsloop.cli._app import app

    with live_server(Settings(home=home)) as srv:
        remote = opsloop.Client(settings=Settings(home=home / "c", tracking_uri=srv.url))
        v1 = _version(remote, model_folder, f1=0.9)
        remote.registry.set_alias("churn", "champion", v1)
        v2 = _version(remote, model_folder, f1=0.5)
        remote.evaluation.set_gate("churn", [{"metric": "f1", "min_delta_vs": "current"}])
        assert remote.evaluation.get_gate("churn").rules[0].min_delta_vs == "current"
        with pytest.raises(PromotionRefused, match=re.escape("below current v1's 0.9")):
            remote.registry.set_alias("churn", "champion", v2)
        r = httpx.put(
            f"{srv.url}/api/v1/registry/models/churn/aliases/champion", json={"version": v2}
        )
        err = r.json()["error"]
        assert r.status_code == 409 and err["code"] == "PROMOTION_GATE_FAILED"
        assert err["details"]["failures"][0]["shortfall"] == pytest.approx(0.4)
        bad = httpx.put(
            f"{srv.url}/api/v1/evaluations/gates/churn", json={"rules": [{"metric": 1}]}
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
        remote.close()
    runner = CliRunner()
    res = runner.invoke(app, ["models", "alias", "churn", "champion", str(v2), "--home", str(home)])
    assert res.exit_code == 1 and "error [PROMOTION_GATE_FAILED]" in res.output
    res = runner.invoke(app, ["models", "alias", "churn", "champion", str(v2), "--force",
                              "--home", str(home)])  # fmt: skip
    assert res.exit_code == 0, res.output
