"""``opsloop models ...`` commands on a real home folder (Typer's runner, real SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.registry.cli import app
from opsloop.registry.flavors import save_pyfunc


@pytest.fixture
def run(home: Path) -> Callable[..., str]:
    runner = CliRunner()

    def run_cli(*args: str, ok: bool = True) -> str:
        result = runner.invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result.output

    return run_cli


def test_models_commands_end_to_end(run: Callable[..., str], home: Path, tmp_path: Path) -> None:
    assert "No registered models yet" in run("list")
    folder = save_pyfunc(tmp_path / "m", "tests.test_flavors:ScaleModel", config={"scale": 2})
    with opsloop.Client(home=home) as c:
        r = c.create_run(experiment_name="cli", params={"lr": 0.1})
        c.log_metrics(r.id, {"acc": 0.8}, synchronous=True)
        c.log_artifacts(r.id, folder, "model")

    out = run(
        "register", "scaler", "--from", str(folder), "--tag", "team=ml", "--alias", "champion"
    )
    assert "version 1" in out and "models:/scaler/1" in out and "champion" in out
    out = run("register", "scaler", "--from", f"runs:/{r.id}/model", "--description", "from run")
    assert "version 2" in out
    listed = json.loads(run("list", "--json"))
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("scaler", 2, {"champion": 1})
    ]
    assert "scaler" in run("list")
    assert "champion" in run("show", "scaler")
    versions = json.loads(run("versions", "scaler", "--json"))
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["source_run_id"] == r.id

    assert "@challenger → version 2" in run("alias", "scaler", "challenger", "2")
    run("alias", "scaler", "challenger", "--delete")
    assert "no alias" in run("alias", "scaler", "challenger", "--delete", ok=False)

    card = run("card", "scaler", "2")
    assert "scaler v2" in card and "lr" in card and "acc" in card
    md = tmp_path / "card.md"
    md.write_text("# Hand-written card\n\nUse with care.\n")
    assert "Hand-written card" in run("card", "scaler", "2", "--edit-file", str(md))
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps({"limitations": "Toy model."}))
    edited = json.loads(
        run("card", "scaler", "1", "--edit-file", str(fields), "--field", "owners=ana,bo", "--json")
    )
    assert edited["fields"] == {"limitations": "Toy model.", "owners": ["ana", "bo"]}

    lineage = run("lineage", "scaler", "2")
    assert r.id in lineage and "no dataset versions recorded" in lineage
    assert json.loads(run("lineage", "scaler", "1", "--json"))["run"] is None

    history = json.loads(run("history", "scaler", "--json"))
    assert history[0]["action"] == "card_edited" and history[-1]["action"] == "model_created"
    assert "alias_deleted" in run("history", "scaler")

    dest = tmp_path / "dl"
    run("download", "scaler", "latest", str(dest))
    assert (dest / "opsloop-model.json").is_file()

    assert "Renamed scaler → scaler2 (2 version(s))" in run("rename", "scaler", "scaler2")
    assert json.loads(run("rename", "scaler2", "scaler", "--json"))["name"] == "scaler"
    assert "NOT_FOUND" in run("rename", "nope", "x", ok=False)

    err = run("show", "nope", ok=False)
    assert "NOT_FOUND" in err
    assert "KEY=VALUE" in run("register", "x", "--from", str(folder), "--tag", "oops", ok=False)
