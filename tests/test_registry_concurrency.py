"""Aliases move atomically and version numbers stay sequential under concurrent writers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop.registry import Registry
from opsloop.registry.flavors import save_pyfunc
from tests.conftest import backend_env


@pytest.fixture(params=["embedded-sqlite", "remote-sqlite", "embedded-postgres"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param.endswith("postgres"):
        request.applymarker(pytest.mark.postgres)
    with backend_env(request.param, tmp_path) as env:
        yield Registry(env.client)


def test_alias_is_never_missing_while_movers_move_it(reg: Registry, tmp_path: Path) -> None:
    folder = save_pyfunc(tmp_path / "m", "tests.test_flavors:ScaleModel", config={"scale": 1})
    versions = [reg.register("m", folder).version for _ in range(3)]
    reg.set_alias("m", "champion", 1)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []
    moves = [0]
    count = threading.Lock()

    def mover(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while not stop.is_set():
                reg.set_alias("m", "champion", rnd.choice(versions))
                with count:
                    moves[0] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(reg.resolve("models:/m@champion").version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:3]
    assert moves[0] > 5 and len(seen) > 20
    assert set(seen) <= set(versions)
    events = [e for e in reg.history("m", limit=10_000) if e.action == "alias_set"]
    assert len(events) == moves[0] + 1  # every move recorded, with its version


def test_concurrent_registrations_get_distinct_sequential_numbers(
    reg: Registry, tmp_path: Path
) -> None:
    folder = save_pyfunc(tmp_path / "m", "tests.test_flavors:ScaleModel", config={"scale": 1})
    got: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            for _ in range(3):
                got.append(reg.register("race", folder).version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert sorted(got) == list(range(1, 13))
    assert reg.get_model("race").version_count == 12
