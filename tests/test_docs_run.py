"""Every code block in README.md and docs/*.md runs as written, page by page, top to bottom.

Each page runs in its own process (tests/_docs_runner.py, on Sybil) with a fresh
``OPSLOOP_HOME`` and a fresh working folder: Python blocks share one namespace, shell
blocks run the real ``opsloop`` entry point in that home. Blocks that only sketch are
marked ``<!-- skip: next "sketch: WHY" -->`` and kept out; the runner's docstring has
the conventions. New pages are picked up by the glob.

Converted model weights are the one thing pages share (``<home>/cache/models`` links to
the session's model cache), so a bundled model is converted once per session.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
RUNNER = Path(__file__).with_name("_docs_runner.py")
PAGE_TIMEOUT_S = 540  # a safety net for loaded machines; pages take seconds to a minute


def _run_page(page: Path, tmp_path: Path, model_cache: Path) -> list[dict[str, object]]:
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "models").symlink_to(model_cache, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    env["OPSLOOP_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT)) if p)
    # The benchmark data folder a reader points OPSLOOP_BENCHDATA at: the tests' excerpt.
    env["OPSLOOP_BENCHDATA"] = str(ROOT / "tests" / "data" / "benchdata")
    report = tmp_path / "report.json"
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(page), str(report)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert proc.returncode == 0 and report.exists(), (
        f"the runner failed on {page.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    results: list[dict[str, object]] = json.loads(report.read_text())
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    name = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name
    print(f"{name}: {counts} in {elapsed:.1f} s ({cpu:.1f} s of CPU)")
    return results


@pytest.mark.slow
@pytest.mark.timeout(PAGE_TIMEOUT_S + 60)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_top_to_bottom(page: Path, tmp_path: Path, model_cache: Path) -> None:
    results = _run_page(page, tmp_path, model_cache)
    failures = [r for r in results if r["status"] == "fail"]
    assert not failures, "\n\n".join(
        f"{page.relative_to(ROOT)}:{f['line']} ({f['kind']} block) fails:\n{f['error']}"
        for f in failures
    )
    # Every block was reached: the runner stops at the first failure.
    fences = sum(1 for line in page.read_text().splitlines() if line.lstrip().startswith("```"))
    assert len(results) == fences // 2


def test_runner_catches_a_failing_block(tmp_path: Path, model_cache: Path) -> None:
    """The harness itself: a failing command, a bare fence and a bad marker are reported."""
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n"
        "```bash\nopsloop runs list\n```\n\n"
        '<!-- skip: next "sketch: shows the idea" -->\n```python\nraise SystemExit(3)\n```\n\n'
        "```yaml file=cfg.yaml\na: 1\n```\n\n"
        "```bash\ntest -f cfg.yaml && python -c 'print(1)'\n```\n\n"
        "```python\nassert x == 1\nopen('cfg.yaml').read()\n```\n\n"
        "```bash expect=2\nopsloop runs list --no-such-flag\n```\n\n"
        "```\nbare\n```\n\n```python\nnever = 1\n```\n"
        "<!-- skip: next -->\n"
    )
    results = _run_page(page, tmp_path / "t", model_cache)
    statuses = [(r["kind"], r["status"]) for r in results]
    assert statuses[0] == ("marker", "fail")  # the bare `skip: next` has no reason
    assert statuses[1:] == [
        ("python", "ok"),
        ("bash", "ok"),
        ("python", "sketch"),
        ("yaml", "file"),
        ("bash", "ok"),
        ("python", "ok"),
        ("bash", "ok"),
        ("bare", "fail"),
    ]
    assert "without a language" in str(results[-1]["error"])


def _with_examples(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command paths whose help text has examples."""
    out = []
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        if "Examples:" in (sub.help or ""):
            out.append((*prefix, name))
        out.extend(_with_examples(sub, (*prefix, name)))
    return out


def test_cli_help_keeps_examples_one_per_line() -> None:
    """Every `--help` shows its docstring's examples as written: one command per line."""
    import typer.main
    from typer.testing import CliRunner

    from opsloop.cli import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0
    for path in _with_examples(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        checked += 1
        lines = result.output.split("Examples:", 1)[1].split("╭", 1)[0].splitlines()
        commands = [ln.strip() for ln in lines if ln.strip()]
        assert commands, path
        for line in commands:
            # An example may set environment variables first (NAME=value opsloop ...).
            words = line.split(" ")
            while words and "=" in words[0] and words[0].split("=")[0].isupper():
                words.pop(0)
            line = " ".join(words)
            assert line.startswith("opsloop ") and line.count(" opsloop ") == 0, (path, line)
    assert checked >= 10
