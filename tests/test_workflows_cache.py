"""The workflows room's cache is sound: a mutation suite over a real project on disk.

Each mutation (edit a helper, a helper of a helper, a module constant, a
dependency's version, an input file, a parameter; remove an output artifact)
must re-run exactly the steps it affects (zero stale hits) and every
unchanged rerun must hit; the result is compared with calling the functions
directly each time.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.workflows import Workflows

HELPERS = """
from proj import deep

THRESHOLD = 0

def scale(x):
    return deep.inner(x) * 2 if x >= THRESHOLD else 0

def unused():
    return "not called by any step"
"""
DEEP = """
def inner(x):
    return x + 1
"""
STEPS = """
from pathlib import Path

import fakedep
from opsloop.workflows import step, workflow
from proj import helpers


@step
def prepare(path: Path) -> list[int]:
    return [int(v) for v in path.read_text().split()]


@step
def compute(xs: list[int], factor: int = 1) -> int:
    return sum(helpers.scale(x) for x in xs) * factor + fakedep.VALUE


@workflow
def pipeline(path: str, factor: int = 1):
    return compute(prepare(Path(path)), factor=factor)
"""


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))


def _set_dep_version(site: Path, version: str) -> None:
    for d in site.glob("fakedep-*.dist-info"):
        shutil.rmtree(d)
    info = site / f"fakedep-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakedep\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fakedep\n")
    (info / "RECORD").write_text("fakedep/__init__.py,,\n")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    site = tmp_path / "site"
    _write(root, "proj/__init__.py", "")
    _write(root, "proj/helpers.py", HELPERS)
    _write(root, "proj/deep.py", DEEP)
    _write(root, "proj/steps.py", STEPS)
    _write(site, "fakedep/__init__.py", "VALUE = 1000\n")
    _set_dep_version(site, "1.0")
    (root / "data.txt").write_text("1 2 3")
    sys.path[:0] = [str(root), str(site)]
    try:
        yield root
    finally:
        for p in (str(root), str(site)):
            sys.path.remove(p)
        _forget()


def _forget() -> None:
    for name in [m for m in sys.modules if m in ("proj", "fakedep") or m.startswith("proj.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _fresh_import(root: Path) -> Any:
    """What a new process sees: the files as they are now."""
    _forget()
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache)
    return importlib.import_module("proj.steps")


def _direct(steps: Any, path: Path, factor: int) -> int:
    return steps.compute.fn(steps.prepare.fn(path), factor=factor)


def test_mutation_suite_zero_stale_hits(project: Path, home: Path) -> None:
    data = project / "data.txt"
    stale = hits_expected = hits = 0
    with Client(home=home) as client:
        wf = Workflows(client)

        def run(factor: int = 1, **expect: str) -> None:
            nonlocal stale, hits_expected, hits
            steps = _fresh_import(project)
            res = wf.run(steps.pipeline, {"path": str(data), "factor": factor})
            assert res.outputs["return"] == _direct(steps, data, factor)
            got = {s.name: s.status for s in res.steps}
            for name, want in expect.items():
                if want == "ran" and got[name] == "cached":
                    stale += 1
                if want == "cached":
                    hits_expected += 1
                    hits += got[name] == "cached"
            assert got == expect

        run(prepare="ran", compute="ran")
        run(prepare="cached", compute="cached")  # unchanged rerun, new import
        _write(project, "proj/helpers.py", "\n\n" + HELPERS)  # code moved down: no change
        run(prepare="cached", compute="cached")
        _write(project, "proj/helpers.py", HELPERS.replace("not called", "never called"))
        run(prepare="cached", compute="cached")  # a function no step reaches
        _write(project, "proj/helpers.py", HELPERS.replace("* 2", "* 3"))  # edit a helper
        run(prepare="cached", compute="ran")
        run(prepare="cached", compute="cached")
        _write(project, "proj/deep.py", DEEP.replace("x + 1", "x + 2"))  # a helper's helper
        run(prepare="cached", compute="ran")
        _write(project, "proj/helpers.py", HELPERS.replace("* 2", "* 3").replace("= 0", "= 2"))
        run(prepare="cached", compute="ran")  # a module constant the helper reads
        _set_dep_version(project.parent / "site", "2.0")  # a dependency's version
        run(prepare="cached", compute="ran")
        run(prepare="cached", compute="cached")
        data.write_text("1 2 3 4")  # an input file
        run(prepare="ran", compute="ran")
        run(factor=3, prepare="cached", compute="ran")  # a parameter
        run(factor=3, prepare="cached", compute="cached")

        # Remove an output artifact: its step run purged (the cache entry goes with it) ...
        last = wf.list_runs("pipeline", limit=1)[0]
        made = {s.name: s for s in wf.steps(last.id)}
        client.delete_run(made["prepare"].run_id or "", purge=True)
        run(factor=3, prepare="ran", compute="cached")  # same content: compute still valid
        # ... or its blob lost from the store: read back fails its digest, never a stale hit.
        made = {s.name: s for s in wf.steps(wf.list_runs("pipeline", limit=1)[0].id)}
        blob = made["compute"].digest or ""
        blob_file = next(home.rglob(blob.removeprefix("sha256:")))
        blob_file.unlink()
        run(factor=3, prepare="cached", compute="ran")
    assert stale == 0
    assert hits == hits_expected >= 8


def test_external_inputs_expire_and_cache_off(home: Path) -> None:
    from opsloop.workflows import step, workflow

    class Calls:  # no stable repr: the closure's state is not part of the key
        fetch = always = 0

    calls = Calls()

    @step(external={"url": 0.3})
    def fetch(url: str) -> str:
        calls.fetch += 1
        return f"data from {url}"

    @step(cache=False)
    def always(text: str) -> int:
        calls.always += 1
        return len(text)

    @workflow
    def wf(url: str = "http://example/data"):
        return always(fetch(url))

    import time

    with Client(home=home) as client:
        w = Workflows(client)
        assert w.run(wf).outputs["return"] == len("data from http://example/data")
        r = w.run(wf)
        assert [s.status for s in r.steps] == ["cached", "ran"]
        time.sleep(0.35)
        r = w.run(wf)
        assert [s.status for s in r.steps] == ["ran", "ran"]
    assert (calls.fetch, calls.always) == (2, 3)
