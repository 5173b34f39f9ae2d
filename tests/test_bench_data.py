"""Benchmark data without a data folder: the hub (when ``datasets`` imports), the home's copy,
the excerpt shipped in the package, and the message when none of them can help.

The hub itself is out of reach here: a test double stands in for ``datasets``
(a module whose ``load_dataset`` fails like a dead network, or answers rows),
and ``HF_ENDPOINT`` points the reachability probe at a real local socket.
"""

from __future__ import annotations

import importlib.machinery
import json
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop.errors import NotFound
from opsloop.evaluation.benchmarks import _data
from opsloop.evaluation.benchmarks._data import EXCERPTS_DIR, load_task_data
from opsloop.evaluation.benchmarks._runner import _prepare
from opsloop.evaluation.benchmarks._task import list_tasks, load_task

ARC_HUB_ROWS = [  # the hub's layout of ARC: a flat question, choices as two lists
    {
        "id": "MCAS_2000_4_6",
        "question": "Which technology was developed most recently?",
        "choices": {
            "text": ["cellular telephone", "television", "refrigerator", "airplane"],
            "label": ["A", "B", "C", "D"],
        },
        "answerKey": "A",
    },
    {
        "id": "Mercury_7179953",
        "question": "Which tool is used to measure mass?",
        "choices": {"text": ["ruler", "balance", "thermometer"], "label": ["1", "2", "3"]},
        "answerKey": "2",
    },
]


@pytest.fixture
def no_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OPSLOOP_BENCHDATA and no ../shared/benchdata beside the code: a pip user's machine."""
    monkeypatch.delenv("OPSLOOP_BENCHDATA", raising=False)
    monkeypatch.setattr(_data, "_REPO_ROOT", tmp_path / "site-packages" / "x")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def reachable_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``HF_ENDPOINT`` on a real listening socket, so the reachability probe passes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{s.getsockname()[1]}")
        yield


def fake_datasets(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[tuple[Any, ...]]:
    """Install a ``datasets`` test double; returns the calls its ``load_dataset`` gets."""
    calls: list[tuple[Any, ...]] = []
    mod = types.ModuleType("datasets")
    mod.__spec__ = importlib.machinery.ModuleSpec("datasets", None)

    def load_dataset(path: str, name: str | None = None, **kw: Any) -> Any:
        calls.append((path, name, kw.get("split")))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    mod.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", mod)
    return calls


def test_every_task_names_a_hub_dataset_and_ships_an_excerpt() -> None:
    for spec in list_tasks():
        assert spec.hub is not None and spec.hub.path and spec.hub.split, spec.name
        rows = (EXCERPTS_DIR / f"{spec.name}.jsonl").read_text().splitlines()
        assert 12 <= len(rows) <= 20 and all(json.loads(r) for r in rows)
        assert spec.name in (EXCERPTS_DIR / "README.md").read_text()


@pytest.mark.usefixtures("no_data_folder")
def test_offline_without_datasets_the_excerpt_serves_small_limits_and_the_error_says_what_to_do(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # not importable
    spec = load_task("piqa")
    got = load_task_data(spec, None, home=home, limit=12)
    assert got.origin == "excerpt" and len(got.records) == 16
    with pytest.raises(NotFound) as info:
        load_task_data(spec, None, home=home, limit=None)
    assert info.value.message == (
        "task 'piqa' has no data here (no data folder is set): put piqa.jsonl in a folder and "
        "pass --data-dir FOLDER (Python: data_dir=FOLDER) or set OPSLOOP_BENCHDATA=FOLDER; or "
        "let opsloop download baber/piqa from the Hugging Face hub (needs `pip install "
        "datasets` and network access; now: the `datasets` package is not installed (pip "
        "install datasets)); or run on the 16 records shipped with opsloop: --limit 16 or less"
    )


@pytest.mark.usefixtures("no_data_folder", "reachable_hub")
def test_a_failing_hub_is_tried_once_then_falls_back_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_datasets(monkeypatch, ConnectionError("Name or service not known"))
    spec = load_task("winogrande")
    assert load_task_data(spec, None, home=home, limit=5).origin == "excerpt"
    assert calls == [("allenai/winogrande", "winogrande_xl", "validation")]
    with pytest.raises(NotFound, match=r"now: loading it failed: ConnectionError: Name or serv"):
        load_task_data(spec, None, home=home, limit=100)
    assert len(calls) == 2
    # Switched off by the hub's own variable: not even tried.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="now: HF_HUB_OFFLINE is set"):
        load_task_data(spec, None, home=home, limit=100)
    assert len(calls) == 2


@pytest.mark.usefixtures("no_data_folder", "reachable_hub")
def test_hub_rows_are_kept_in_the_home_and_read_with_the_hubs_own_templates(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_datasets(monkeypatch, ARC_HUB_ROWS)
    spec = load_task("arc_easy")
    prep = _prepare(spec, None, None, None, None, home=home, explicit_dir=False)
    assert prep.data == "hub" and calls == [("allenai/ai2_arc", "ARC-Easy", "test")]
    docs = [d for _, d in prep.docs]
    assert [prep.spec.gold_index(d, prep.spec.choices(d)) for d in docs] == [0, 1]
    assert prep.spec.text(docs[1]) == "Question: Which tool is used to measure mass?\nAnswer:"
    kept = home / "cache" / "benchdata" / "arc_easy.jsonl"
    assert [json.loads(x) for x in kept.read_text().splitlines()] == ARC_HUB_ROWS
    again = _prepare(spec, None, None, None, None, home=home, explicit_dir=False)
    assert again.data == "hub-cache" and len(calls) == 1  # no second download
    # A named data folder wins, and one that lacks the file is an error, not a download.
    with pytest.raises(NotFound, match="does not exist"):
        _prepare(spec, home / "nowhere", None, None, None, home=home, explicit_dir=True)


@pytest.mark.slow
@pytest.mark.usefixtures("no_data_folder")
def test_bench_run_piqa_limit_12_runs_with_no_data_folder(
    home: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    from opsloop.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ["--home", str(home), "bench", "run", "--model", "local:smollm2", "--tasks", "piqa"]
    base += ["--cache-dir", str(model_cache)]
    ok = CliRunner().invoke(app, [*base, "--limit", "12", "--json"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout[ok.stdout.index("{") :])
    assert body["tasks"]["piqa"]["n"] == 12 and body["tasks"]["piqa"]["data"] == "excerpt"
    assert 0.0 <= body["tasks"]["piqa"]["metrics"]["acc"] <= 1.0
    full = CliRunner().invoke(app, base)
    assert full.exit_code == 1 and "Traceback" not in full.output
    assert full.output.strip().startswith("error [NOT_FOUND]: task 'piqa' has no data here")
    assert "--data-dir FOLDER" in full.output and "--limit 16 or less" in full.output
