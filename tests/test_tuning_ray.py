"""Trials as tasks on a real (local) Ray cluster, sharing the study's storage and opsloop home."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.tuning import Tuning
from opsloop.tuning import examples as ex

pytest.importorskip("optuna")
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local two-CPU Ray cluster for this module (starting one costs 10-20 s)."""
    before = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage reports from a test cluster
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = before


@pytest.mark.slow
def test_ray_backend_runs_trials_as_tasks(ray_cluster: Any, home: Path, tmp_path: Path) -> None:
    with Client(home=home) as client:
        study = Tuning(client).create_study(
            "ray-quad", directions="minimize", search_space=ex.QUADRATIC_SPACE
        )
        summary = study.optimize(ex.quadratic, n_trials=6, n_jobs=2, backend="ray")
        assert summary.counts == {"COMPLETE": 6}
        runs = client.search_runs(parent_run_id=study.run_id, max_results=100).runs
        assert len(runs) == 6
        assert {r.status for r in runs} == {"FINISHED"}
        pids = {int(r.tags["opsloop.tuning.owner"].split(":")[1]) for r in runs}
        assert os.getpid() not in pids  # every trial ran in a Ray worker
        assert client.get_run(study.run_id).tags["opsloop.tuning.backend"] == "ray"

        # A lambda travels to Ray (cloudpickle), unlike to spawned processes.
        summary = study.optimize(
            lambda t: ex.quadratic(t) + 1.0, n_trials=8, n_jobs=2, backend="ray"
        )
        assert summary.counts == {"COMPLETE": 8}
        assert sorted(t.number for t in summary.trials) == list(range(8))

    # The CLI's --backend ray joins the cluster this process already runs.
    from typer.testing import CliRunner

    from opsloop.tuning.cli import app

    spec = tmp_path / "quad.yaml"
    spec.write_text(
        "name: ray-cli\ndirection: minimize\nobjectives: [loss]\n"
        "space:\n  x: {type: float, low: -10, high: 10}\n  y: {type: float, low: -10, high: 10}\n"
    )
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(spec),
            "-o",
            "opsloop.tuning.examples:quadratic",
            "-n",
            "4",
            "--backend",
            "ray",
            "-j",
            "2",
            "--json",
            "--home",
            str(home),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{") :])
    assert data["counts"] == {"COMPLETE": 4}
