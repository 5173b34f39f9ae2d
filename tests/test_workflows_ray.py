"""Workflow steps as tasks on a real (local) Ray cluster: the same results and the same cache."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.workflows import StepFailed, Workflows, step, workflow

ray = pytest.importorskip("ray")


@step
def square_all(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@step
def where(tag: str) -> str:
    return f"{tag}:{os.getpid()}"


@step(retries=1, backoff=0)
def fails(x: int) -> int:
    raise ValueError(f"bad value {x}")


@workflow
def squares(n: int = 5):
    return {"sum": square_all(list(range(n))), "pid": where("w")}


@workflow
def failing(x: int = 1):
    return fails(x)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local one-CPU Ray cluster for this module; its workers import this tree's code."""
    before = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    paths = os.pathsep.join(str(Path(p).resolve()) for p in sys.path if p and Path(p).is_dir())
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = before


@pytest.mark.slow
def test_ray_executor_same_results_and_cache(ray_cluster: Any, home: Path) -> None:
    with Client(home=home) as client:
        wf = Workflows(client)
        on_ray = wf.run(squares, {"n": 5}, executor="ray")
        assert on_ray.outputs["sum"] == [0, 1, 4, 9, 16]
        assert int(on_ray.outputs["pid"].split(":")[1]) != os.getpid()  # ran in a Ray worker
        assert wf.show(on_ray.run_id)["run"]["tags"]["opsloop.workflow.executor"] == "ray"
        inline = wf.run(squares, {"n": 5}, executor="inline")
        assert inline.cache_hits == 2 and inline.outputs == on_ray.outputs
        with pytest.raises(StepFailed) as info:
            wf.run(failing, {"x": 7}, executor="ray")
        s = info.value.result.step("fails")
        assert s.attempts == 2 and "ValueError: bad value 7" in s.error
