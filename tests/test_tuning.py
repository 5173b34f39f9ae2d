"""Tuning studies end to end: real scikit-learn objectives, every trial a child run, Pareto fronts, pruning."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.errors import AlreadyExists, Conflict, InvalidArgument
from opsloop.tuning import Categorical, Float, Int, Trial, TrialPruned, Tuning
from opsloop.tuning import examples as ex
from opsloop.tuning._pareto import dominates

pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("quiet_optuna")


def children(client: Client, parent_run_id: str) -> list[Any]:
    runs = client.search_runs(parent_run_id=parent_run_id, max_results=1000).runs
    return sorted(runs, key=lambda r: int(r.tags["opsloop.tuning.trial"]))


# ---------------------------------------------------------------------- single objective


def test_sklearn_study_finds_a_good_config_and_logs_every_trial(client: Client) -> None:
    space = {
        "model": Categorical(["rf", "logreg"]),
        "n_estimators": Int(5, 20),
        "max_depth": Int(1, 4),
        "C": Float(1e-4, 10.0, log=True),
    }
    study = Tuning(client).create_study(
        "cancer",
        directions="maximize",
        objectives="f1",
        search_space=space,
        sampler={"type": "tpe", "seed": 0, "n_startup_trials": 4},
        experiment="tuning-tests",
    )
    summary = study.optimize(ex.tabular, n_trials=8)

    assert summary.counts == {"COMPLETE": 8}
    f1s = [t.values[0] for t in summary.trials if t.values]
    assert len(f1s) == 8
    assert study.best_value == max(f1s)
    assert study.best_value > 0.95  # a good config on breast cancer
    assert set(study.best_params) == set(space)

    # Every trial is a child run of the study's run, with params, metrics, state and number.
    runs = children(client, study.run_id)
    assert [int(r.tags["opsloop.tuning.trial"]) for r in runs] == list(range(8))
    for r, t in zip(runs, summary.trials, strict=True):
        assert r.status == "FINISHED"
        assert r.experiment_id == study.experiment_id
        assert r.tags["opsloop.tuning.state"] == "COMPLETE"
        assert r.tags["opsloop.tuning.role"] == "trial"
        assert r.tags["opsloop.tuning.study"] == "cancer"
        assert set(r.params) == set(space)
        assert r.params["model"] == t.params["model"]
        assert {"f1", "train_seconds", "latency_ms"} <= set(r.metrics)
        assert r.metrics["f1"].value == pytest.approx(t.values[0])
        assert r.metrics["train_seconds"].value > 0
        assert t.run_id == r.id

    # The parent run holds the study config, its outcome, and the charts.
    parent = client.get_run(study.run_id)
    assert parent.status == "FINISHED"
    assert parent.parent_run_id is None
    assert parent.params == {"directions": "maximize", "objectives": "f1"}
    assert parent.tags["opsloop.tuning.role"] == "study"
    assert parent.tags["opsloop.tuning.sampler"] == "TPESampler"
    assert parent.tags["opsloop.tuning.n_trials"] == "8"
    best = summary.best[0]
    assert parent.tags["opsloop.tuning.best_trial"] == str(best.number)
    assert parent.tags["opsloop.tuning.best_run_id"] == best.run_id
    assert json.loads(parent.tags["opsloop.tuning.best_params"]) == best.params
    assert parent.metrics["best/f1"].value == pytest.approx(study.best_value)
    assert parent.metrics["trials/complete"].value == 8
    paths = {a.path for a in client.list_artifacts(study.run_id, "tuning")}
    assert paths == {"tuning/space.json", "tuning/summary.json", "tuning/history.svg"}
    saved = json.loads(client.read_artifact(study.run_id, "tuning/summary.json"))
    assert saved["best"][0]["number"] == best.number
    assert json.loads(client.read_artifact(study.run_id, "tuning/space.json"))["C"]["log"] is True
    ET.fromstring(client.read_artifact(study.run_id, "tuning/history.svg"))


def test_running_again_continues_the_study_to_its_target(home: Path) -> None:
    with Client(home=home) as c1:
        s1 = Tuning(c1).create_study("quad", directions="minimize", search_space=ex.QUADRATIC_SPACE)
        assert s1.optimize(ex.quadratic, n_trials=4).counts == {"COMPLETE": 4}
    with Client(home=home) as c2:  # a new process would do the same
        s2 = Tuning(c2).create_study("quad", directions="minimize", search_space=ex.QUADRATIC_SPACE)
        assert s2.run_id == s1.run_id
        assert s2.optimize(ex.quadratic, n_trials=4).counts == {"COMPLETE": 4}  # already there
        assert s2.optimize(ex.quadratic, n_trials=6).counts == {"COMPLETE": 6}
        assert len(children(c2, s2.run_id)) == 6
        # load_study finds it by name with what it was created with.
        s3 = Tuning(c2).load_study("quad")
        assert (s3.directions, s3.objectives, s3.space) == (
            ["minimize"],
            ["value"],
            ex.QUADRATIC_SPACE,
        )
        assert [s.name for s in Tuning(c2).list_studies()] == ["quad"]


def test_a_study_keeps_what_it_optimises(client: Client) -> None:
    tu = Tuning(client)
    tu.create_study("s", directions=["maximize", "minimize"], objectives=["f1", "train_seconds"])
    with pytest.raises(Conflict, match="maximize f1, minimize train_seconds"):
        tu.create_study("s", directions="maximize", objectives="f1")
    with pytest.raises(AlreadyExists):
        tu.create_study(
            "s",
            directions=["maximize", "minimize"],
            objectives=["f1", "train_seconds"],
            load_if_exists=False,
        )
    with pytest.raises(InvalidArgument, match="study name"):
        tu.create_study("../etc", directions="maximize")
    with pytest.raises(InvalidArgument, match="one metric per direction"):
        tu.create_study("t", directions=["maximize", "minimize"], objectives=["f1"])


# ---------------------------------------------------------------------- multi-objective


def _check_front(front: list[Any], complete: list[Any], dirs: list[str]) -> None:
    front_numbers = {p.number for p in front}
    assert front_numbers
    for p in front:  # nothing dominates a front point ...
        assert not any(dominates(t.values, p.values, dirs) for t in complete), p
    for t in complete:  # ... and every other complete trial is dominated by one
        if t.number not in front_numbers:
            assert any(dominates(p.values, t.values, dirs) for p in front), t


def test_llm_settings_multi_objective_pareto_front(client: Client) -> None:
    dirs = ["maximize", "minimize"]
    study = Tuning(client).create_study(
        "rag",
        directions=dirs,
        objectives=["accuracy", "context_tokens"],
        search_space=ex.RAG_SPACE,
        sampler={"type": "tpe", "seed": 1},
    )
    summary = study.optimize(ex.rag_settings, n_trials=24)
    complete = [t for t in summary.trials if t.state == "COMPLETE"]
    assert len(complete) == 24
    front = study.pareto_front()
    _check_front(front, complete, dirs)
    assert front == summary.pareto_front
    assert [p.values[0] for p in front] == sorted(p.values[0] for p in front)
    # The best accuracy found is a sensible setting: it never reads one chunk only.
    top = max(front, key=lambda p: p.values[0])
    assert top.values[0] >= 0.75
    assert set(top.params) == {"prompt_version", "temperature", "top_k", "chunk_size"}

    parent = client.get_run(study.run_id)
    assert parent.tags["opsloop.tuning.pareto_size"] == str(len(front))
    saved = json.loads(client.read_artifact(study.run_id, "tuning/pareto_front.json"))
    assert [p["number"] for p in saved] == [p.number for p in front]
    svg = ET.fromstring(client.read_artifact(study.run_id, "tuning/pareto_front.svg"))
    assert len([c for c in svg.iter() if c.get("class") == "pareto"]) == len(front)
    with pytest.raises(InvalidArgument, match="pareto_front"):
        _ = study.best_trial


def test_training_time_from_a_timer_is_an_objective(client: Client) -> None:
    study = Tuning(client).create_study(
        "cost",
        directions=["maximize", "minimize"],
        objectives=["f1", "train_seconds"],
        search_space={"model": Categorical(["logreg"]), "C": Float(1e-3, 10.0, log=True)},
        sampler={"type": "random", "seed": 0},
    )
    summary = study.optimize(ex.tabular, n_trials=4)
    assert summary.counts == {"COMPLETE": 4}
    for r, t in zip(children(client, study.run_id), summary.trials, strict=True):
        # The objective returned only f1; train_seconds came from trial.timer.
        assert t.values[1] == pytest.approx(r.metrics["train_seconds"].value)
        assert r.metrics["train_seconds"].count == 1  # logged once, not again as an objective
    _check_front(summary.pareto_front, summary.trials, ["maximize", "minimize"])


# ---------------------------------------------------------------------- pruning and failures


def _curve(trial: Trial) -> float:
    # A learning curve whose level is set by x: far from 3 is clearly worse at every step.
    level = 1.0 / (1.0 + (trial.params["x"] - 3.0) ** 2)
    value = 0.0
    for step in range(10):
        value = level * (step + 1) / 10
        trial.report(value, step)
        if trial.should_prune():
            raise TrialPruned()
    return value


def test_median_pruner_prunes_and_marks_pruned_trials(client: Client) -> None:
    study = Tuning(client).create_study(
        "pruned",
        directions="maximize",
        objectives="score",
        search_space={"x": Float(0.0, 10.0)},
        sampler={"type": "random", "seed": 3},
        pruner={"type": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    )
    summary = study.optimize(_curve, n_trials=14)
    assert summary.counts.get("PRUNED", 0) >= 3
    assert summary.counts["COMPLETE"] + summary.counts["PRUNED"] == 14
    runs = {int(r.tags["opsloop.tuning.trial"]): r for r in children(client, study.run_id)}
    for t in summary.trials:
        run = runs[t.number]
        hist = client.get_metric_history(run.id, "intermediate/score")
        assert run.tags["opsloop.tuning.state"] == t.state
        assert run.status == "FINISHED"
        if t.state == "PRUNED":
            assert len(hist) < 10
            assert hist.steps == list(range(len(hist)))
            assert t.last_step == len(hist) - 1
            assert "score" not in run.metrics and t.values is None
        else:
            assert len(hist) == 10
            assert run.metrics["score"].value == pytest.approx(hist.values[-1])
    assert client.get_run(study.run_id).metrics["trials/pruned"].value == summary.counts["PRUNED"]


def test_a_failing_objective_fails_its_trial_and_the_study_run(client: Client) -> None:
    tu = Tuning(client)
    study = tu.create_study("fails", directions="minimize", search_space=ex.QUADRATIC_SPACE)

    def objective(trial: Trial) -> float:
        if trial.number == 1:
            raise ValueError("diverged")
        return ex.quadratic(trial)

    with pytest.raises(ValueError, match="diverged"):
        study.optimize(objective, n_trials=3)
    runs = children(client, study.run_id)
    assert [r.status for r in runs] == ["FINISHED", "FAILED"]
    assert runs[1].tags["opsloop.tuning.state"] == "FAIL"
    assert runs[1].tags["opsloop.tuning.error"] == "ValueError: diverged"
    assert client.get_run(study.run_id).status == "FAILED"

    # With catch, a failure is recorded and the study goes on; it counts towards n_trials.
    summary = study.optimize(objective, n_trials=4, catch=(ValueError,))
    assert summary.counts == {"COMPLETE": 3, "FAIL": 1}
    assert client.get_run(study.run_id).status == "FINISHED"


def test_nan_is_a_failed_trial_and_a_wrong_return_is_an_error(client: Client) -> None:
    tu = Tuning(client)
    study = tu.create_study("nan", directions="minimize", search_space=ex.QUADRATIC_SPACE)
    summary = study.optimize(lambda t: math.nan if t.number == 0 else ex.quadratic(t), n_trials=2)
    assert summary.counts == {"FAIL": 1, "COMPLETE": 1}
    run0 = children(client, study.run_id)[0]
    assert (run0.status, run0.tags["opsloop.tuning.error"]) == ("FAILED", "objective returned NaN")

    multi = tu.create_study("pair", directions=["maximize", "minimize"], objectives=["a", "b"])
    # Each failed trial counts towards n_trials, so each call asks for one more.
    with pytest.raises(InvalidArgument, match="returned 1 value"):
        multi.optimize(lambda t: 1.0, n_trials=1)
    with pytest.raises(InvalidArgument, match="no value for b"):
        multi.optimize(lambda t: {"a": 1.0}, n_trials=2)
    with pytest.raises(InvalidArgument, match="expected a number"):
        multi.optimize(lambda t: ("x", 1.0), n_trials=3)
    assert multi.summary().counts == {"FAIL": 3}
    with pytest.raises(InvalidArgument, match="backend"):
        multi.optimize(lambda t: (1.0, 1.0), n_trials=1, backend="spark")
    with pytest.raises(InvalidArgument, match="callable"):
        multi.optimize("nope", n_trials=1)  # type: ignore[arg-type]


def test_define_by_run_params_are_logged(client: Client) -> None:
    study = Tuning(client).create_study(
        "dbr", directions="minimize", search_space={"x": Float(-1, 1)}
    )

    def objective(trial: Trial) -> float:
        layers = trial.suggest_int("layers", 1, 3)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        return trial.params["x"] ** 2 + layers + (act == "tanh")

    summary = study.optimize(objective, n_trials=3)
    for r, t in zip(children(client, study.run_id), summary.trials, strict=True):
        assert set(r.params) == {"x", "layers", "act"}
        assert t.params["layers"] == int(r.params["layers"])


# ---------------------------------------------------------------------- storage and backends


def test_memory_storage_and_the_storage_file(client: Client, home: Path) -> None:
    tu = Tuning(client)
    mem = tu.create_study(
        "mem", directions="minimize", search_space=ex.QUADRATIC_SPACE, storage="memory"
    )
    assert mem.optimize(ex.quadratic, n_trials=3).counts == {"COMPLETE": 3}
    with pytest.raises(InvalidArgument, match="persistent"):
        mem.optimize(ex.quadratic, n_trials=4, backend="processes")
    disk = tu.create_study("disk", directions="minimize", search_space=ex.QUADRATIC_SPACE)
    disk.optimize(ex.quadratic, n_trials=1)
    assert (home / "tuning.db").is_file()
    assert disk.info.storage == f"sqlite:///{(home / 'tuning.db').resolve()}"
    # Optuna's tables live in their own file: opsloop's database has none of them.
    import sqlalchemy as sa

    names = sa.inspect(client.context.database.engine).get_table_names()
    assert "tuning_studies" in names and "trials" not in names and "studies" not in names


@pytest.mark.slow
def test_processes_backend_runs_trials_in_other_processes(client: Client) -> None:
    import os

    study = Tuning(client).create_study(
        "procs", directions="minimize", search_space=ex.QUADRATIC_SPACE
    )
    summary = study.optimize(ex.quadratic, n_trials=6, n_jobs=2, backend="processes")
    assert summary.counts == {"COMPLETE": 6}
    owners = {r.tags["opsloop.tuning.owner"] for r in children(client, study.run_id)}
    pids = {int(o.split(":")[1]) for o in owners}
    assert len(pids) == 2 and os.getpid() not in pids
    with pytest.raises(InvalidArgument, match="module level"):
        study.optimize(lambda t: 1.0, n_trials=8, n_jobs=2, backend="processes")


def test_threads_share_one_study(client: Client) -> None:
    study = Tuning(client).create_study(
        "threads", directions="minimize", search_space=ex.QUADRATIC_SPACE
    )
    summary = study.optimize(ex.quadratic, n_trials=8, n_jobs=2)
    assert summary.counts == {"COMPLETE": 8}
    assert sorted(t.number for t in summary.trials) == list(range(8))


@pytest.mark.postgres
def test_postgresql_storage_in_its_own_schema(pg_url: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    with Client(pg_url, home=tmp_path) as c:
        study = Tuning(c).create_study("pg", directions="minimize", search_space=ex.QUADRATIC_SPACE)
        assert "schema opsloop_tuning" in study.info.storage
        assert study.optimize(ex.quadratic, n_trials=3).counts == {"COMPLETE": 3}
        again = Tuning(c).create_study("pg", directions="minimize", search_space=ex.QUADRATIC_SPACE)
        assert again.optimize(ex.quadratic, n_trials=5).counts == {"COMPLETE": 5}
    eng = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        insp = sa.inspect(eng)
        assert {"studies", "trials"} <= set(insp.get_table_names(schema="opsloop_tuning"))
        public = set(insp.get_table_names())
        assert "tuning_studies" in public and "trials" not in public
    finally:
        eng.dispose()


def test_timeout_stops_a_study_without_a_trial_count(client: Client) -> None:
    import time

    study = Tuning(client).create_study(
        "timed", directions="minimize", search_space=ex.QUADRATIC_SPACE
    )

    def slow(trial: Trial) -> float:
        time.sleep(0.05)
        return ex.quadratic(trial)

    t0 = time.monotonic()
    summary = study.optimize(slow, timeout=0.6)
    assert time.monotonic() - t0 < 5
    assert 1 <= summary.counts["COMPLETE"] <= 12
    assert client.get_run(study.run_id).status == "FINISHED"
