"""Tuning through a server (the REST API and the remote SDK) and from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from opsloop import Client
from opsloop.errors import Conflict, NotFound
from opsloop.settings import Settings
from opsloop.tuning import Tuning
from opsloop.tuning import examples as ex
from opsloop.tuning.cli import app
from tests.conftest import live_server

pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("quiet_optuna")


def test_remote_study_matches_embedded(tmp_path: Path) -> None:
    server_home = tmp_path / "server"
    client_home = tmp_path / "client"
    with (
        live_server(Settings(home=server_home)) as srv,
        Client(srv.url, home=client_home) as remote,
    ):
        tu = Tuning(remote)
        study = tu.create_study(
            "remote-rag",
            directions=["maximize", "minimize"],
            objectives=["accuracy", "context_tokens"],
            search_space=ex.RAG_SPACE,
            sampler={"type": "random", "seed": 2},
        )
        # Optuna's state stays with the client; runs and the registry go to the server.
        assert study.info.storage == f"sqlite:///{(client_home / 'tuning.db').resolve()}"
        summary = study.optimize(ex.rag_settings, n_trials=6)
        assert summary.counts == {"COMPLETE": 6}
        assert [s.name for s in tu.list_studies()] == ["remote-rag"]
        assert tu.get_study_info("remote-rag").run_id == study.run_id
        with pytest.raises(NotFound):
            tu.summary("nope")
        with pytest.raises(Conflict):
            tu.create_study("remote-rag", directions="maximize", objectives="accuracy")

        # The server computes the same summary from the same runs.
        with Client(home=server_home) as local:
            assert Tuning(local).summary("remote-rag") == tu.summary("remote-rag")
            runs = local.search_runs(parent_run_id=study.run_id).runs
            assert len(runs) == 6

        # The raw API, as the UI sees it.
        base = f"{srv.url}/api/v1/tuning/studies"
        listed = httpx.get(base).json()["studies"]
        assert [s["name"] for s in listed] == ["remote-rag"]
        body = httpx.get(f"{base}/remote-rag/summary").json()
        assert body["study"]["objectives"] == ["accuracy", "context_tokens"]
        assert len(body["trials"]) == 6
        assert [p["number"] for p in body["pareto_front"]] == [
            p.number for p in summary.pareto_front
        ]
        missing = httpx.get(f"{base}/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
        bad = httpx.get(f"{base}/..%2Fx/summary")
        assert bad.status_code in (400, 404)
        bad_body = httpx.post(
            base,
            json={"name": "x", "experiment_id": "e", "directions": ["up"], "objectives": ["a"]},
        )
        assert (
            bad_body.status_code == 400 and bad_body.json()["error"]["code"] == "INVALID_ARGUMENT"
        )
        assert httpx.delete(f"{base}/remote-rag").status_code == 204
        assert httpx.get(f"{base}/remote-rag").status_code == 404


# ---------------------------------------------------------------------- CLI


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "220"})


def test_cli_run_show_list(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "cost.yaml"
    spec.write_text(
        "name: cli-cost\n"
        "directions: [maximize, minimize]\n"
        "objectives: [accuracy, context_tokens]\n"
        "objective: opsloop.tuning.examples:rag_settings\n"
        "sampler: {type: random, seed: 0}\n"
        "space:\n"
        "  prompt_version: [qa@2, qa@3]\n"
        "  temperature: {type: float, low: 0.0, high: 1.0}\n"
        "  top_k: {type: int, low: 1, high: 5}\n"
        "  chunk_size: [8, 16]\n"
    )
    res = cli("run", str(spec), "-n", "5", "--home", str(home))
    assert res.exit_code == 0, res.output
    assert "Pareto front" in res.output and "cli-cost" in res.output

    res = cli("show", "cli-cost", "--json", "--home", str(home))
    assert res.exit_code == 0, res.output
    data: dict[str, Any] = json.loads(res.stdout)
    assert data["counts"] == {"COMPLETE": 5}
    assert "trials" not in data and data["pareto_front"]

    res = cli("show", "cli-cost", "--trials", "--home", str(home))
    assert res.exit_code == 0, res.output
    assert "Trials" in res.output and "COMPLETE" in res.output

    # Running again with a higher target continues the same study.
    res = cli("run", str(spec), "-n", "7", "--json", "--home", str(home))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["counts"] == {"COMPLETE": 7}

    res = cli("list", "--json", "--home", str(home))
    assert [s["name"] for s in json.loads(res.stdout)] == ["cli-cost"]
    assert "cli-cost" in cli("list", "--home", str(home)).output

    # A single objective shows its best trial.
    quad = tmp_path / "quad.yaml"
    quad.write_text(
        "direction: minimize\nspace: {x: {type: float, low: -10, high: 10}, y: [0, 1]}\n"
    )
    res = cli(
        "run", str(quad), "-o", "opsloop.tuning.examples:quadratic", "-n", "3", "--home", str(home)
    )
    assert res.exit_code == 0, res.output
    assert "Best trial" in res.output
    assert [s["name"] for s in json.loads(cli("list", "--json", "--home", str(home)).stdout)] == [
        "cli-cost",
        "quad",
    ]


def test_cli_errors_are_clean(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("space: {x: {type: float, low: 2, high: 1}}\n")
    res = cli("run", str(spec), "-o", "opsloop.tuning.examples:quadratic", "--home", str(home))
    assert res.exit_code == 1
    assert (
        "error [INVALID_ARGUMENT]: search space: space.x: low (2) is greater than high (1)"
        in res.stderr
    )
    spec.write_text("space: {x: {type: float, low: 0, high: 1}}\n")
    res = cli("run", str(spec), "--home", str(home))
    assert res.exit_code == 1 and "no objective" in res.stderr
    res = cli("run", str(spec), "-o", "no_such_module_xyz:f", "--home", str(home))
    assert res.exit_code == 1 and "cannot import objective module" in res.stderr
    res = cli("run", str(spec), "-o", "opsloop.tuning.examples:nothing", "--home", str(home))
    assert res.exit_code == 1 and "has no function 'nothing'" in res.stderr
    res = cli("show", "missing", "--home", str(home))
    assert res.exit_code == 1 and "error [NOT_FOUND]" in res.stderr
    assert "No studies yet" in cli("list", "--home", str(home)).output
