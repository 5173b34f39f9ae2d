"""Run one Markdown page's code blocks top to bottom, as a reader would (used by test_docs_run).

    python tests/_docs_runner.py PAGE.md REPORT.json

Run it in a fresh working folder with ``OPSLOOP_HOME`` set to a fresh home: the test does.
Sybil parses the page; the blocks run in document order:

- ```` ```python ````: executed in one namespace per page (``__name__ == "__main__"``).
- ```` ```bash ```` / ```` ```sh ````: the block is one bash script (``set -euo pipefail``)
  in the page's folder; ``opsloop`` is the environment's entry point. A line that ends
  with `` &`` starts a server in the background: the script waits for its ``--port``
  to accept connections (``waits=PORT,...`` in the info string names ports to wait for
  after the block), and the page's servers are stopped when the page ends.
- ```` ```console ````: every ``$ `` line is a command, run as above; other lines are
  output shown to the reader and not compared.
- Any fence whose info string carries ``file=NAME`` (```` ```yaml file=space.yaml ````):
  its text is written to ``NAME`` in the page's folder, and nothing runs.
- ```` ```text ````, ```` ```json ````, ```` ```yaml ```` (without ``file=``): shown, not run.
- A fence with no language is an error: say what it is.
- ``<!-- skip: next "sketch: WHY" -->`` before a block keeps that block out (a sketch:
  it needs internet, a GPU, a cluster, or runs for long); the reason must start with
  ``sketch:``.

Exit codes other than 0: ``expect=N`` in the info string (```` ```bash expect=1 ````).

The test gives each page a fresh ``OPSLOOP_HOME`` (its converted model weights shared),
and ``OPSLOOP_BENCHDATA`` pointing at the tests' excerpt of the benchmark data
(tests/data/benchdata), the folder a reader points it at.

The report is JSON: one entry per block with its line, kind, status (ok, sketch, shown,
file, fail), seconds and, on failure, the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from unittest import SkipTest

from sybil import Document, Example, Region
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

RUN_LANGS = {"bash", "sh", "console"}
SHOWN_LANGS = {"text", "json", "yaml", "toml", "ini", "html", "csv", "jsonl", "markdown", "md"}
SHELL_TIMEOUT_S = 240.0
PORT_WAIT_S = 120.0
_PORT = re.compile(r"--port[ =](\d+)")
_COMMENT = re.compile(r"\s+#[^'\"]*$")  # a trailing comment (no quotes in it)


class BlockError(AssertionError):
    pass


class Page:
    """What the page's blocks share besides the Python namespace: its folder and servers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.groups: list[int] = []  # process groups of scripts that left servers running
        self.env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")
        src = str(Path(__file__).resolve().parents[1] / "src")
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (src, self.env.get("PYTHONPATH", "")) if p
        )

    def stop_servers(self) -> None:
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 20
        for pgid in self.groups:
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations; keep comments and blank lines out."""
    out: list[str] = []
    cur = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.lstrip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def _wait_for(port: str) -> str:
    return (
        f"for _ in $(seq {int(PORT_WAIT_S * 10)}); do "
        f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done; "
        f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null "
        f"|| {{ echo 'nothing listens on port {port}' >&2; exit 97; }}"
    )


def _shell_script(lines: Iterable[str], waits: Iterable[str] = ()) -> tuple[str, bool]:
    """A bash script for the commands; servers started with `&` are waited for."""
    parts = ["set -euo pipefail"]
    background = False
    for line in lines:
        command = _COMMENT.sub("", line)
        m = _PORT.search(command)
        if command.endswith("&") and not command.endswith("&&"):
            background = True
            if m:
                port = m.group(1)
                parts.append(
                    f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null "
                    f"&& {{ echo 'port {port} is already in use' >&2; exit 98; }}"
                )
        parts.append(line)
        if background and m and command.endswith("&"):
            parts.append(_wait_for(m.group(1)))
    parts.extend(_wait_for(p) for p in waits)
    return "\n".join(parts) + "\n", background


class FenceParser:
    """Every fenced block that is not plain ```python: shell, files, shown text, errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.lexer = FencedCodeBlockLexer(
            language=r"[^\n]*", mapping={"language": "info", "source": "source"}
        )

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            info = str(region.lexemes["info"]).strip()
            if info == "python":
                continue  # sybil's PythonCodeBlockParser runs these
            words = info.split()
            lang = words[0] if words else ""
            attrs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            region.parsed = (lang, attrs, str(region.lexemes["source"]))
            region.evaluator = self.evaluate
            yield region

    def evaluate(self, example: Example) -> None:
        lang, attrs, source = example.parsed
        if "file" in attrs:
            target = self.page.folder / attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source)
            raise _Outcome("file")
        if not lang:
            raise BlockError("a fence without a language: say what it is (```text, ```bash, ...)")
        if lang in SHOWN_LANGS:
            raise _Outcome("shown")
        if lang not in RUN_LANGS:
            raise BlockError(f"unknown block language {lang!r}")
        if lang == "console":
            lines = [ln[2:] for ln in source.splitlines() if ln.startswith("$ ")]
            lines = _logical_lines("\n".join(lines))
        else:
            lines = _logical_lines(source)
        waits = [p for p in attrs.get("waits", "").split(",") if p]
        script, _ = _shell_script(lines, waits)
        expect = int(attrs.get("expect", "0"))
        log = self.page.folder / f".block-{example.line}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.page.folder,
                env=self.page.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=SHELL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = -9
        self.page.groups.append(proc.pid)  # whatever it left running stops with the page
        if rc != expect:
            text = log.read_text(errors="replace")
            raise BlockError(
                f"exit {rc} (expected {expect}) running:\n{script}\n--- output ---\n{text[-6000:]}"
            )


class _Outcome(Exception):
    def __init__(self, status: str) -> None:
        self.status = status


def run_page(page_path: Path, folder: Path) -> list[dict[str, Any]]:
    page = Page(folder)
    document = Document.parse(
        str(page_path), PythonCodeBlockParser(), SkipParser(), FenceParser(page)
    )
    document.namespace["__name__"] = "__main__"
    results: list[dict[str, Any]] = []
    text = page_path.read_text()
    for m in re.finditer(r"<!--\s*skip:(.*?)-->", text):
        if not re.fullmatch(r'\s*next\s+"sketch: [^"]+"\s*', m.group(1)):
            line = text.count("\n", 0, m.start()) + 1
            results.append(
                {
                    "line": line,
                    "kind": "marker",
                    "status": "fail",
                    "seconds": 0.0,
                    "error": 'a skip marker must read <!-- skip: next "sketch: WHY" -->',
                }
            )
    try:
        for example in document:
            region = example.region
            if isinstance(region.parsed, tuple) and len(region.parsed) == 2:
                example.evaluate()  # a skip marker: it applies to the next block
                continue
            kind = "python"
            if isinstance(region.parsed, tuple):
                kind = region.parsed[0] or "bare"
            entry: dict[str, Any] = {"line": example.line, "kind": kind}
            t0 = time.perf_counter()
            try:
                example.evaluate()
                entry["status"] = "ok"
            except SkipTest as exc:
                entry["status"] = "sketch"
                entry["reason"] = str(exc)
            except _Outcome as o:
                entry["status"] = o.status
            except BaseException as exc:
                entry["status"] = "fail"
                if isinstance(exc, BlockError):
                    entry["error"] = str(exc)
                else:
                    entry["error"] = "".join(traceback.format_exception(exc)[-12:])
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            results.append(entry)
            if entry["status"] == "fail":
                break  # later blocks build on this one
    finally:
        page.stop_servers()
    return results


if __name__ == "__main__":
    page_file, report_file = Path(sys.argv[1]), Path(sys.argv[2])
    report = run_page(page_file, Path.cwd())
    report_file.write_text(json.dumps(report, indent=1))
    sys.exit(0)
