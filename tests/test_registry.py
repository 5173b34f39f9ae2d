"""Registry contract: embedded and remote, on SQLite and PostgreSQL.

Every test runs against the four combinations; lineage rows the datasets room
would write are inserted straight into ``run_inputs`` through its table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import opsloop
from opsloop.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from opsloop.registry import Registry, load_model
from opsloop.registry.flavors import save_pyfunc
from opsloop.store import Database
from tests.conftest import BackendEnv


@dataclass
class Env:
    client: opsloop.Client
    reg: Registry
    db_url: str  # the database the registry writes to (the server's, when remote)
    tmp: Path


@pytest.fixture
def env(backend: BackendEnv) -> Env:
    """The registry on each of the four backends (the shared ``backend`` fixture)."""
    reg = Registry(backend.client)
    assert reg.is_remote == backend.remote
    return Env(backend.client, reg, backend.db_url, backend.tmp)


def saved_model(tmp: Path, scale: float = 2.0, name: str | None = None) -> Path:
    """A small pyfunc model folder (cheap to save and load)."""
    return save_pyfunc(
        tmp / (name or f"m-{uuid.uuid4().hex[:8]}"),
        "tests.test_flavors:ScaleModel",
        config={"scale": scale},
        input_example=[{"x": 1.0}],
        output_example=[2.0],
    )


# ---------------------------------------------------------------- versions


def test_versions_from_path_and_from_run_artifacts(env: Env) -> None:
    reg, c = env.reg, env.client
    folder = saved_model(env.tmp, 3.0)
    v1 = reg.register("scaler", folder, description="from a path", tags={"stage": "dev"})
    assert (v1.name, v1.version, v1.flavor) == ("scaler", 1, "pyfunc")
    assert v1.description == "from a path" and v1.tags == {"stage": "dev"}
    assert v1.source == str(folder.resolve()) and v1.source_run_id is None
    assert set(v1.files) == {"opsloop-model.json"}
    assert v1.files["opsloop-model.json"].digest.startswith("sha256:")
    assert v1.signature == {
        "inputs": [{"name": "x", "type": "double"}],
        "outputs": [{"name": "prediction", "type": "double"}],
    }

    run = c.create_run(experiment_name="train", params={"scale": 3})
    c.log_artifacts(run.id, folder, "model")
    v2 = reg.register("scaler", f"runs:/{run.id}/model")
    assert v2.version == 2 and v2.source_run_id == run.id
    assert v2.source == f"runs:/{run.id}/model"
    # Same content, same blobs: a version is a manifest of digests.
    assert v2.files == v1.files

    # A single artifact file (raw, with its flavor named) becomes a one-file version.
    c.log_text(run.id, "not really skops", "single/model.skops")
    one = reg.register("sk", f"runs:/{run.id}/single/model.skops", flavor="sklearn")
    assert set(one.files) == {"model.skops", "opsloop-model.json"}
    assert one.metadata["model_file"] == "model.skops" and one.source_run_id == run.id
    c.log_text(run.id, "{}", "raw/adapter_config.json")
    with pytest.raises(InvalidArgument, match="safetensors"):
        reg.register(
            "adapter",
            f"runs:/{run.id}/raw",
            flavor="peft",
            options={"base_model": "models:/scaler/1"},
        )

    model = reg.get_model("scaler")
    assert (model.latest_version, model.version_count, model.kind) == (2, 2, "model")
    assert [v.version for v in reg.list_versions("scaler")] == [2, 1]
    assert reg.get_version("scaler", "latest").version == 2
    assert reg.get_version("scaler", 1) == v1

    # Files come back byte for byte; the model loads from the registry and predicts.
    dest = reg.download("scaler", 2, env.tmp / "dl")
    assert (dest / "opsloop-model.json").read_bytes() == (
        folder / "opsloop-model.json"
    ).read_bytes()
    loaded = load_model("models:/scaler/2", client=c, cache_dir=env.tmp / "cache")
    assert loaded.predict([{"x": 1.5}, {"x": -1.0}]) == [4.5, -3.0]
    assert loaded.version is not None and loaded.version.id == v2.id


def test_register_errors_leave_nothing_behind(env: Env) -> None:
    reg, c = env.reg, env.client
    with pytest.raises(InvalidArgument):
        reg.register("bad/name", saved_model(env.tmp))
    with pytest.raises(InvalidArgument, match="neither a file nor a folder"):
        reg.register("m", env.tmp / "nope")
    raw = env.tmp / "raw"
    raw.mkdir()
    (raw / "weights.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(InvalidArgument, match="name their flavor"):
        reg.register("m", raw)
    with pytest.raises(InvalidArgument, match="unknown model flavor"):
        reg.register("m", raw, flavor="onnx-magic")
    with pytest.raises(InvalidArgument, match=r"exactly one \.skops"):
        reg.register("m", raw, flavor="sklearn")
    with pytest.raises(NotFound):
        reg.register("m", "runs:/0123456789abcdef0123456789abcdef/model")
    run = c.create_run(experiment_name="e")
    with pytest.raises(NotFound, match="no artifacts"):
        reg.register("m", f"runs:/{run.id}/model")
    with pytest.raises(InvalidArgument):
        reg.register("m", saved_model(env.tmp), kind="spaceship")
    # None of the failures created the model.
    with pytest.raises(NotFound):
        reg.get_model("m")
    assert reg.list_models() == []

    reg.create_model("m", description="d")
    with pytest.raises(AlreadyExists):
        reg.create_model("m")
    with pytest.raises(NotFound):
        reg.get_version("m", 1)
    with pytest.raises(InvalidArgument):
        reg.get_version("m", 0)
    with pytest.raises(InvalidArgument):
        reg.get_version("m", "first")


# ---------------------------------------------------------------- aliases


def test_aliases_set_move_resolve_delete(env: Env) -> None:
    reg = env.reg
    folder = saved_model(env.tmp)
    for _ in range(3):
        reg.register("m", folder)
    a = reg.set_alias("m", "champion", 1)
    assert (a.alias, a.version) == ("champion", 1)
    reg.set_alias("m", "challenger", 3)
    assert reg.resolve("models:/m@champion").version == 1
    moved = reg.set_alias("m", "champion", 2)
    assert moved.version == 2 and moved.updated_by == reg.actor
    assert reg.resolve("models:/m@champion").version == 2
    assert reg.resolve("models:/m/1").version == 1
    assert reg.resolve("models:/m").version == 3
    assert reg.resolve("models:/m/latest").version == 3
    assert reg.get_model("m").aliases == {"challenger": 3, "champion": 2}
    assert reg.get_version("m", 2).aliases == ["champion"]
    assert [(x.alias, x.version) for x in reg.list_aliases("m")] == [
        ("challenger", 3),
        ("champion", 2),
    ]

    for bad in ("latest", "1st", "", "a b", "x" * 200):
        with pytest.raises(InvalidArgument):
            reg.set_alias("m", bad, 1)
    with pytest.raises(NotFound):
        reg.set_alias("m", "prod", 9)
    with pytest.raises(InvalidArgument):
        reg.resolve("runs:/abc")
    reg.delete_alias("m", "challenger")
    with pytest.raises(NotFound, match="no alias"):
        reg.resolve("models:/m@challenger")
    with pytest.raises(NotFound):
        reg.delete_alias("m", "challenger")

    # Deleting a version takes its aliases with it, and says so in the history.
    reg.delete_version("m", 2)
    with pytest.raises(NotFound):
        reg.resolve("models:/m@champion")
    actions = [(e.action, e.version) for e in reg.history("m", limit=2)]
    assert actions == [("version_deleted", 2), ("alias_deleted", 2)]
    assert reg.register("m", folder).version == 4  # numbers are never reused


# ---------------------------------------------------------------- tags, descriptions, history


def test_tags_descriptions_and_history(env: Env) -> None:
    reg = env.reg
    reg.create_model("m", description="first", tags={"team": "risk"})
    reg.register("m", saved_model(env.tmp))
    reg.update_model("m", description="second")
    reg.set_model_tag("m", "team", "fraud")
    reg.set_model_tag("m", "tier", 1)
    reg.delete_model_tag("m", "tier")
    reg.update_version("m", 1, description="v1 notes")
    reg.set_version_tag("m", 1, "validated", "yes")
    reg.set_version_tag("m", 1, "temp", "x")
    reg.delete_version_tag("m", 1, "temp")
    reg.set_alias("m", "production", 1)
    reg.update_card("m", 1, fields={"intended_use": "scoring"})

    m = reg.get_model("m")
    assert (m.description, m.tags) == ("second", {"team": "fraud"})
    v = reg.get_version("m", 1)
    assert (v.description, v.tags) == ("v1 notes", {"validated": "yes"})
    with pytest.raises(NotFound):
        reg.delete_model_tag("m", "nope")
    with pytest.raises(InvalidArgument):
        reg.set_model_tag("m", "../bad", "x")

    events = reg.history("m")
    assert [e.action for e in reversed(events)] == [
        "model_created",
        "version_created",
        "model_description_set",
        "model_tag_set",
        "model_tag_set",
        "model_tag_deleted",
        "version_description_set",
        "version_tag_set",
        "version_tag_set",
        "version_tag_deleted",
        "alias_set",
        "card_edited",
    ]
    assert all(e.actor == reg.actor and e.actor for e in events)
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    assert events[-3].detail == {"old": "first", "new": "second"}
    assert events[1].detail == {"alias": "production", "version": 1, "previous_version": None}
    assert [e.action for e in reg.history("m", version=1)][:2] == ["card_edited", "alias_set"]
    assert len(reg.history("m", limit=3)) == 3

    # The history outlives the model.
    reg.delete_model("m")
    with pytest.raises(NotFound):
        reg.get_model("m")
    after = reg.history("m")
    assert after[0].action == "model_deleted" and len(after) == len(events) + 1
    with pytest.raises(NotFound):
        reg.history("never-registered")


def test_rename_moves_everything_and_old_uris_resolve_until_reused(env: Env) -> None:
    reg = env.reg
    reg.create_model("old", description="d", tags={"team": "risk"})
    reg.register("old", saved_model(env.tmp, 3.0), tags={"validated": "yes"})
    reg.set_alias("old", "champion", 1)
    reg.create_model("taken")

    with pytest.raises(AlreadyExists):
        reg.rename_model("old", "taken")
    with pytest.raises(NotFound):
        reg.rename_model("never-registered", "x")
    with pytest.raises(InvalidArgument):
        reg.rename_model("old", "../bad")
    reg.create_model("a-prompt", kind="prompt")
    with pytest.raises(InvalidArgument):
        reg.rename_model("a-prompt", "other-prompt")
    assert reg.get_model("old").name == "old"  # refused renames changed nothing

    m = reg.rename_model("old", "new")
    assert (m.name, m.description, m.tags) == ("new", "d", {"team": "risk"})
    assert (m.aliases, m.latest_version, m.version_count) == ({"champion": 1}, 1, 1)
    v = reg.get_version("new", 1)
    assert (v.name, v.tags, v.aliases) == ("new", {"validated": "yes"}, ["champion"])
    with pytest.raises(NotFound):
        reg.get_model("old")
    # The history follows the model; the old name's ends with the rename.
    actions = [e.action for e in reg.history("new")]
    assert actions == ["model_renamed", "alias_set", "version_created", "model_created"]
    assert reg.history("old")[0].detail == {"from": "old", "to": "new"}

    # URIs stored under the old name (deployments, gates, jobs) still resolve, and load.
    for uri in ("models:/old@champion", "models:/old/1", "models:/old", "models:/old/latest"):
        got = reg.resolve(uri)
        assert (got.name, got.version) == ("new", 1), uri
    assert load_model("models:/old@champion", client=env.client).predict([{"x": 2.0}]) == [6.0]
    with pytest.raises(NotFound):
        reg.resolve("models:/old/2")

    # Renamed again: the oldest name follows it.
    reg.rename_model("new", "newer")
    assert reg.resolve("models:/old@champion").name == "newer"
    assert reg.resolve("models:/new/1").name == "newer"

    # Registering the old name again ends its redirect, also once that model is gone.
    reg.create_model("old")
    with pytest.raises(NotFound):
        reg.resolve("models:/old/1")
    reg.delete_model("old")
    with pytest.raises(NotFound):
        reg.resolve("models:/old/1")
    assert reg.resolve("models:/new/1").name == "newer"
    # A renamed model may take a name back.
    assert reg.rename_model("newer", "new").name == "new"
    assert reg.resolve("models:/new@champion").name == "new"


# ---------------------------------------------------------------- cards and lineage


def _insert_dataset_version(db_url: str, name: str, version: int, run_id: str, context: str) -> str:
    """What the datasets room records when a run reads a dataset version."""
    import sqlalchemy as sa

    from opsloop.datasets._tables import dataset_versions, datasets, run_inputs

    db = Database(db_url)
    try:
        with db.write() as conn:
            ds = conn.execute(sa.select(datasets.c.id).where(datasets.c.name == name)).scalar()
            if ds is None:
                ds = uuid.uuid4().hex
                conn.execute(
                    datasets.insert().values(
                        id=ds,
                        name=name,
                        kind="tabular",
                        description="",
                        created_at=1,
                        updated_at=1,
                        created_by="t",
                    )
                )
            dvid = f"{ds[:8]}-{version}-{uuid.uuid4().hex[:8]}"
            conn.execute(
                dataset_versions.insert().values(
                    id=dvid,
                    dataset_id=ds,
                    version=version,
                    content_digest="sha256:" + "0" * 64,
                    message="",
                    format="parquet",
                    row_count=100 * version,
                    size_bytes=10,
                    schema_json={},
                    profile_json={},
                    sample_json=[],
                    status="valid",
                    storage_json={},
                    derivation="",
                    created_at=1,
                    created_by="t",
                )
            )
            conn.execute(
                run_inputs.insert().values(
                    run_id=run_id, dataset_version_id=dvid, context=context, created_at=1
                )
            )
    finally:
        db.dispose()
    return dvid


def test_card_generated_from_lineage_and_editable(env: Env) -> None:
    reg, c = env.reg, env.client
    run = c.create_run(experiment_name="fraud", params={"n_estimators": 50, "max_depth": 6})
    c.log_metrics(run.id, {"f1": 0.91, "auc": 0.97}, synchronous=True)
    dv = _insert_dataset_version(env.db_url, "transactions", 3, run.id, "train")
    c.log_artifacts(run.id, saved_model(env.tmp), "model")
    reg.register("fraud", f"runs:/{run.id}/model", description="RF on transactions")

    card = reg.get_card("fraud", 1)
    g = card.generated
    assert g["params"] == {"max_depth": "6", "n_estimators": "50"}
    assert g["metrics"] == {"auc": 0.97, "f1": 0.91}
    assert g["run"]["id"] == run.id and g["run"]["experiment"] == "fraud"
    assert [(d["dataset_name"], d["version"], d["context"]) for d in g["training_data"]] == [
        ("transactions", 3, "train")
    ]
    assert g["training_data"][0]["dataset_version_id"] == dv
    assert not card.custom_markdown
    for text in (
        "# fraud v1",
        "RF on transactions",
        "| n_estimators | 50 |",
        "| f1 | 0.91 |",
        "transactions v3",
    ):
        assert text in card.markdown

    edited = reg.update_card(
        "fraud", 1, fields={"intended_use": "Flag card fraud.", "owners": ["ana", "bo"]}
    )
    assert edited.fields == {"intended_use": "Flag card fraud.", "owners": ["ana", "bo"]}
    assert "## Intended use\n\nFlag card fraud." in edited.markdown and "ana, bo" in edited.markdown
    assert edited.updated_by == reg.actor
    cleared = reg.update_card("fraud", 1, fields={"owners": None})
    assert cleared.fields == {"intended_use": "Flag card fraud."}
    custom = reg.update_card("fraud", 1, markdown="# My own card\n")
    assert custom.custom_markdown and custom.markdown == "# My own card\n"
    back = reg.update_card("fraud", 1, markdown="")
    assert not back.custom_markdown and "Flag card fraud." in back.markdown
    with pytest.raises(InvalidArgument):
        reg.update_card("fraud", 1, fields={"colour": "red"})

    # Metrics logged after registration show up when the card is regenerated.
    c.log_metrics(run.id, {"f1": 0.93}, synchronous=True)
    assert reg.get_card("fraud", 1).generated["metrics"]["f1"] == 0.91
    fresh = reg.update_card("fraud", 1, regenerate=True)
    assert fresh.generated["metrics"]["f1"] == 0.93
    assert fresh.fields == {"intended_use": "Flag card fraud."}
    assert reg.history("fraud", limit=1)[0].action == "card_regenerated"


def test_lineage_both_ways(env: Env) -> None:
    reg, c = env.reg, env.client
    folder = saved_model(env.tmp)
    run_a = c.create_run(experiment_name="lin", name="train-a")
    run_b = c.create_run(experiment_name="lin", name="train-b")
    dv_train = _insert_dataset_version(env.db_url, "clicks", 1, run_a.id, "train")
    dv_eval = _insert_dataset_version(env.db_url, "clicks-eval", 1, run_a.id, "eval")
    # run_b reads the same training version.
    import sqlalchemy as sa

    from opsloop.datasets._tables import run_inputs

    db = Database(env.db_url)
    with db.write() as conn:
        conn.execute(
            sa.insert(run_inputs).values(
                run_id=run_b.id, dataset_version_id=dv_train, context="train", created_at=2
            )
        )
    db.dispose()
    for run in (run_a, run_b):
        c.log_artifacts(run.id, folder, "model")
    reg.register("ctr", f"runs:/{run_a.id}/model")
    reg.register("ctr", f"runs:/{run_b.id}/model")
    reg.register("ctr", folder)  # no run: no lineage
    reg.set_alias("ctr", "champion", 2)

    up = reg.lineage("ctr", 1)
    assert up.run is not None and up.run.run_id == run_a.id and up.run.name == "train-a"
    assert {(d.dataset_name, d.context) for d in up.datasets} == {
        ("clicks", "train"),
        ("clicks-eval", "eval"),
    }
    assert reg.lineage("ctr", 3).run is None and reg.lineage("ctr", 3).datasets == []

    down = reg.dataset_lineage(dv_train)
    assert down.dataset.dataset_name == "clicks" and down.dataset.row_count == 100
    assert [r.run_id for r in down.runs] == [run_a.id, run_b.id]
    assert [(m.name, m.version) for m in down.model_versions] == [("ctr", 1), ("ctr", 2)]
    assert down.runs[1].model_versions[0].aliases == ["champion"]
    assert [(m.name, m.version) for m in reg.dataset_lineage(dv_eval).model_versions] == [
        ("ctr", 1)
    ]
    with pytest.raises(NotFound):
        reg.dataset_lineage("no-such-version")


# ---------------------------------------------------------------- deletes


def test_delete_model_and_adapter_base_protection(env: Env) -> None:
    reg = env.reg
    reg.register("m", saved_model(env.tmp))
    reg.set_alias("m", "champion", 1)
    reg.delete_model("m")
    with pytest.raises(NotFound):
        reg.resolve("models:/m@champion")
    assert reg.list_models() == []
    # The name can be registered again, and numbering starts over for the new model.
    assert reg.register("m", saved_model(env.tmp)).version == 1
    with pytest.raises(NotFound):
        reg.delete_version("m", 5)
    with pytest.raises(NotFound):
        reg.delete_model("other")

    # Raw files with a flavor: registering checks the files, it does not load them.
    base = env.tmp / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"not really weights")
    reg.register("base", base, flavor="transformers", options={"model_id": "tiny"})
    reg.set_alias("base", "champion", 1)
    adapter = env.tmp / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora")
    with pytest.raises(InvalidArgument, match="base_model"):
        reg.register("lora", adapter, flavor="peft")
    with pytest.raises(InvalidArgument, match="does not resolve"):
        reg.register("lora", adapter, flavor="peft", options={"base_model": "models:/base/7"})
    with pytest.raises(InvalidArgument, match="adapters need a transformers model"):
        reg.register("lora", adapter, flavor="peft", options={"base_model": "models:/m/1"})
    ad = reg.register(
        "lora", adapter, flavor="peft", options={"base_model": "models:/base@champion"}
    )
    # The alias is pinned to the exact version the adapter was trained on.
    assert ad.metadata["base_model"] == "models:/base/1"
    assert reg.lineage("lora", 1).base_model is not None
    assert reg.lineage("lora", 1).base_model.version == 1  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        reg.delete_version("base", 1)
    with pytest.raises(Conflict):
        reg.delete_model("base")
    reg.delete_model("lora")
    reg.delete_model("base")
