"""Workflow runs: child runs and lineage, retries with backoff, timeouts, resume, YAML, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opsloop import Client
from opsloop.tracking import RunStatus
from opsloop.workflows import StepFailed, Workflows, step, workflow

STATE: dict[str, Path] = {}


def _bump(name: str) -> int:
    f = STATE["dir"] / name
    n = int(f.read_text()) + 1 if f.exists() else 1
    f.write_text(str(n))
    return n


@step
def make(n: int) -> list[int]:
    _bump("make")
    return list(range(n))


@step(retries=3, backoff=0.01)
def flaky(xs: list[int]) -> int:
    if _bump("flaky") < 3:
        raise ConnectionError("upstream hiccup")
    return sum(xs)


@step
def gated(total: int) -> int:
    _bump("gated")
    if (STATE["dir"] / "broken").exists():
        raise RuntimeError("gate is broken")
    return total * 10


@step(timeout=0.5, retries=1, backoff=0.01)
def slow(x: int) -> int:
    time.sleep(float((STATE["dir"] / "sleep").read_text()))
    return x


@workflow
def chain(n: int = 4):
    return {"final": gated(flaky(make(n))), "first": make(n)}


@workflow
def sleepy(x: int = 1):
    return slow(x)


@pytest.fixture
def wf(client: Client, tmp_path: Path) -> Workflows:
    STATE["dir"] = tmp_path
    return Workflows(client)


def _count(name: str) -> int:
    f = STATE["dir"] / name
    return int(f.read_text()) if f.exists() else 0


def test_retries_are_attempts_and_runs_have_lineage(wf: Workflows) -> None:
    res = wf.run(chain, {"n": 4})
    assert res.outputs == {"final": 60, "first": [0, 1, 2, 3]}
    assert [s.name for s in res.steps] == ["make", "flaky", "gated", "make-2"]
    assert res.step("flaky").attempts == 3 and _count("flaky") == 3
    shown = wf.show(res.run_id)
    parent = shown["run"]
    assert parent["status"] == "FINISHED" and parent["tags"]["opsloop.workflow.role"] == "workflow"
    steps = {s["name"]: s for s in shown["steps"]}
    assert all(s["status"] == "FINISHED" for s in steps.values())
    errors = [a.get("error") for a in steps["flaky"]["attempts"]]
    assert errors[:2] == ["ConnectionError: upstream hiccup"] * 2 and errors[2] is None
    # lineage: gated's input is flaky's output, by digest and producing run
    assert steps["gated"]["inputs"]["flaky"] == {
        "digest": steps["flaky"]["digest"],
        "run_id": steps["flaky"]["run_id"],
    }
    assert [n["name"] for n in shown["dag"]["nodes"]] == ["make", "flaky", "gated", "make-2"]
    # identical calls inside one workflow share the cache (make-2 is a hit on make's entry)
    assert res.step("make-2").status == "cached" and _count("make") == 1
    # outputs are content-addressed artifacts of the step runs
    assert wf.output(res.run_id, "gated") == 60
    assert steps["gated"]["digest"].startswith("sha256:")


def test_failed_workflow_resumes_from_its_failed_step(wf: Workflows) -> None:
    (STATE["dir"] / "broken").write_text("")
    with pytest.raises(StepFailed) as info:
        wf.run(chain, {"n": 3})
    result = info.value.result
    assert [s.status for s in result.steps] == ["ran", "ran", "failed", "skipped"]
    run_id = result.run_id
    assert wf.tracking.get_run(run_id).status == RunStatus.FAILED
    assert info.value.details["step"] == "gated"
    wf.cache.drop([result.step("make").key, result.step("flaky").key])  # resume needs no cache
    (STATE["dir"] / "broken").unlink()
    before = (_count("make"), _count("flaky"))
    res = wf.resume(run_id)
    assert res.run_id == run_id and res.outputs["final"] == 30
    assert [s.status for s in res.steps] == ["resumed", "resumed", "ran", "ran"]
    # finished steps were not run again (make-2 had not run, and its cache entry was dropped)
    assert (_count("make"), _count("flaky")) == (before[0] + 1, before[1])
    assert wf.tracking.get_run(run_id).status == RunStatus.FINISHED
    assert _count("gated") == 2  # the failed attempt and the resumed one


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_timeouts_stop_attempts(wf: Workflows, executor: str) -> None:
    (STATE["dir"] / "sleep").write_text("3")
    t0 = time.perf_counter()
    with pytest.raises(StepFailed) as info:
        wf.run(sleepy, {"x": 2}, executor=executor)
    assert time.perf_counter() - t0 < 2.5  # two attempts of 0.5 s, not 3 s each
    s = info.value.result.step("slow")
    assert s.attempts == 2 and "StepTimeout" in s.error
    (STATE["dir"] / "sleep").write_text("0")
    assert wf.run(sleepy, {"x": 2}, executor=executor).outputs["return"] == 2


def test_process_executor_gives_the_same_results_and_cache(wf: Workflows) -> None:
    a = wf.run(chain, {"n": 5}, executor="process")
    assert a.outputs["final"] == 100
    b = wf.run(chain, {"n": 5}, executor="inline")
    assert b.cache_hits == 4 and b.outputs == a.outputs


def test_yaml_workflow(wf: Workflows, tmp_path: Path) -> None:
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        "name: yaml-chain\n"
        "params: {n: 3}\n"
        "steps:\n"
        "  - {name: data, uses: 'tests.test_workflows_runs:make', with: {n: '${params.n}'}}\n"
        "  - name: total\n"
        "    uses: 'tests.test_workflows_runs:flaky'\n"
        "    with: {xs: '${steps.data}'}\n"
        "    retries: 3\n"
        "    backoff: 0\n"
    )
    res = wf.run(str(spec), {"n": 4})
    assert res.outputs["return"] == 6 and res.workflow == "yaml-chain"
    assert wf.run(str(spec), {"n": 4}).cache_hits == 2
    runs = wf.list_runs("yaml-chain")
    assert len(runs) == 2 and json.loads(runs[0].tags["opsloop.workflow.dag"])["nodes"][1][
        "upstream"
    ] == ["data"]


def test_shipped_tabular_workflow_trains_gates_and_deploys(client: Client, home: Path) -> None:
    from opsloop.workflows.shipped import tabular

    wf = Workflows(client)
    res = wf.run(tabular, {"name": "clf", "store": str(home), "rows": 300})
    assert res.outputs["metrics"]["accuracy"] > 0.7 and res.outputs["deploy"]["moved"]
    assert client.registry.get_version_by_alias("clf", "champion").version == 1
    # an unchanged rerun trains nothing; a gate it cannot pass registers but does not deploy
    again = wf.run(tabular, {"name": "clf", "store": str(home), "rows": 300, "min_accuracy": 0.99})
    status = {s.name: s.status for s in again.steps}
    assert status["train"] == status["evaluate"] == "cached" and status["register"] == "ran"
    assert again.outputs["version"]["version"] == 2 and not again.outputs["deploy"]["moved"]
    assert client.registry.get_version_by_alias("clf", "champion").version == 1


def test_remote_client_runs_with_the_servers_cache(tmp_path: Path) -> None:
    from opsloop.settings import Settings
    from tests.conftest import live_server

    STATE["dir"] = tmp_path
    settings = Settings(home=tmp_path / "home")
    with live_server(settings) as srv, Client(srv.url) as remote:
        wf = Workflows(remote)
        first = wf.run(chain, {"n": 6})
        assert first.outputs["final"] == 150 and wf.cache.count() == 3
        assert wf.run(chain, {"n": 6}).cache_hits == 4
        shown = wf.show(first.run_id)
        assert [s["cache"] for s in shown["steps"]] == ["miss", "miss", "miss", "hit"]
        wf.emit("monitoring.alert", "a-1")  # no trigger: recorded for none
        assert wf.events() == []
    with Client(settings=settings) as local:  # the same store, embedded: the same cache
        assert Workflows(local).run(chain, {"n": 6}).cache_hits == 4
