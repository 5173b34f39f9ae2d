"""What a new user sees in the first hour: help that reads as written, tables that fit the
terminal, bad arguments named before anything loads, and only opsloop's own output.

Everything here runs the real command line (Typer's runner, or a real process where the
output of other libraries' loggers and progress bars matters).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from opsloop.cli import app
from opsloop.core.cli import Col, fit_table, markdown_help
from tests._procs import child_env


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("OPSLOOP_"):
            monkeypatch.delenv(key)


def cli(*args: str, width: int = 120, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        app,
        [str(a) for a in args],
        env={"COLUMNS": str(width), **(env or {})},
        terminal_width=width,
    )


# ---------------------------------------------------------------- help


def test_help_keeps_placeholders_in_angle_brackets() -> None:
    root = cli("--help").output
    assert "<home>/secrets.json" in root
    assert "<home>/secrets.json" in cli("secrets", "--help").output
    assert "<home>/cache/models" in cli("llm", "chat", "--help").output


@pytest.mark.parametrize(
    ("command", "examples"),
    [
        (["db", "current"], ["opsloop db current", "opsloop db current --json"]),
        (["experiments", "list"], ["opsloop experiments list", "opsloop experiments list --all"]),
        (["tune", "show"], ["opsloop tune show iris-rf", "opsloop tune show iris-rf --trials"]),
    ],
)
def test_help_examples_stay_one_per_line(command: list[str], examples: list[str]) -> None:
    text = cli(*command, "--help").output
    lines = [line.strip() for line in text.splitlines()]
    for example in examples:
        # Each example starts its own line, and no line holds two of them.
        assert any(line.startswith(example) for line in lines), (example, text)
    assert not [line for line in lines if line.count("opsloop ") > 1], text


def test_markdown_help_fences_indented_blocks_and_leaves_code_alone() -> None:
    text = markdown_help(
        """First line with <home>.

        Examples:

            opsloop x <name>
            opsloop y

        Then `<kept>` and <escaped>.
        """
    )
    assert text == (
        "First line with \\<home\\>.\n\nExamples:\n\n```\nopsloop x <name>\nopsloop y\n```\n\n"
        "Then `<kept>` and \\<escaped\\>."
    )


# ---------------------------------------------------------------- tables fit the terminal

LONG = {
    "experiment": "churn-weekly-retraining-experiment",
    "run": "gbdt-depth8-lr0.05-seed17-v2",
    "model": "quickstart-classifier-with-a-rather-long-name",
    "dataset": "support-tickets-english-2026-q4-cleaned-v2",
    "prompt": "customer-support-answer-with-citations-v2",
    "trace": "answer-customer-question-with-retrieval",
    "study": "iris-random-forest-depth-and-trees-study",
    "evaluation": "qa-exact-match-evaluation-of-the-baseline",
    "index": "opsloop-documentation-minilm-index-v2",
}
WORDY = "A description long enough to need wrapping in any terminal: " + "words " * 20


def _answer(x: dict[str, object]) -> str:
    return str(x["question"])


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with one long-named thing of every kind a list command shows."""
    import numpy as np

    import opsloop
    from opsloop.deployments import Deployments
    from opsloop.evaluation import evaluate
    from opsloop.registry.flavors import save_pyfunc
    from opsloop.retrieval import VectorIndex
    from opsloop.tuning import Tuning
    from opsloop.tuning import examples as ex

    home = tmp_path_factory.mktemp("first-hour-home")
    tmp = tmp_path_factory.mktemp("first-hour-files")
    ids: dict[str, str] = {}
    with opsloop.Client(home=home) as c:
        exp = c.create_experiment(LONG["experiment"], description=WORDY)
        run = c.create_run(
            exp.id,
            name=LONG["run"],
            params={"learning_rate": "0.05", "max_depth": "8", "n_estimators": "300"},
            metrics={"val_f1": 0.91, "val_accuracy": 0.93, "val_loss": 0.2},
        )
        c.set_terminated(run.id)
        ids["run"] = run.id
        ids["experiment_id"] = exp.id
        folder = save_pyfunc(tmp / "m", "tests.test_flavors:ScaleModel", config={"scale": 2})
        c.registry.register(LONG["model"], folder, description=WORDY)
        c.registry.set_alias(LONG["model"], "champion", 1)
        csv = tmp / "tickets.csv"
        csv.write_text("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(5)))
        c.datasets.create(LONG["dataset"], str(csv), message=WORDY, description=WORDY)
        c.prompts.create(LONG["prompt"], "Answer {{ question }} with citations.", message=WORDY)
        dep = Deployments(c).register(
            name=LONG["model"],
            model_uri=f"models:/{LONG['model']}/1",
            model_name=LONG["model"],
            url="http://127.0.0.1:65001",
            version=1,
        )
        ids["deployment"] = dep.id
        with c.tracing.start_trace(LONG["trace"]) as span:
            ids["trace"] = span.trace_id
        c.tracing.flush()
        Tuning(c).create_study(
            LONG["study"], directions="minimize", search_space=ex.QUADRATIC_SPACE
        )
        res = evaluate(
            _answer,
            [
                {"id": "1", "question": "a", "answer": "a"},
                {"id": "2", "question": "b", "answer": "c"},
            ],
            metrics="exact_match",
            name=LONG["evaluation"],
            client=c,
            n_bootstrap=20,
        )
        ids["evaluation"] = res.run_id
    with VectorIndex.open(LONG["index"], home=home) as idx:
        idx.add(["a", "b"], np.eye(2, 4, dtype="float32"))
    return {"home": home, "ids": ids}


# (command, keys): "@x" an id (whole, on one line, at every width); "x" a name (whole on
# one line at 120 columns; at 80, when a long name and an id cannot share a line, the name
# may fold onto more lines, every character kept).
LISTS: list[tuple[list[str], list[str]]] = [
    (["models", "list"], ["model"]),
    (["models", "versions", LONG["model"]], []),
    (["runs", "list", "--experiment", LONG["experiment"]], ["run", "@run"]),
    (["experiments", "list"], ["experiment", "@experiment_id"]),
    (["datasets", "list"], ["dataset"]),
    (["datasets", "versions", LONG["dataset"]], []),
    (["prompts", "list"], ["prompt"]),
    (["prompts", "versions", LONG["prompt"]], []),
    (["deployments", "list"], ["model", "@deployment"]),
    (["traces", "list"], ["trace", "@trace"]),
    (["tune", "list"], ["study"]),
    (["eval", "list"], ["evaluation", "@evaluation"]),
    (["index", "list"], ["index"]),
    (["traces", "prices", "list"], []),
    (["bench", "tasks"], []),
    (["llm", "models"], []),
]
NO_HOME = {("bench", "tasks"), ("llm", "models")}


def _folded(lines: list[str], value: str) -> str:
    """The text of the cell that starts with ``value``'s beginning, its folded lines joined."""
    for n, line in enumerate(lines):
        at = line.find(value[:8])
        if at < 0:
            continue
        end = line.find("│", at)
        end = len(line) if end < 0 else end
        text = first = line[at:end].strip()
        for more in lines[n + 1 :]:
            piece = more[at:end].strip()
            if len(text) >= len(value) or not piece or "─" in more:
                break
            text += piece
            if len(piece) < len(first):
                break
        return text
    return ""


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize(("command", "keys"), LISTS, ids=[" ".join(c[:2]) for c, _ in LISTS])
def test_list_tables_fit_and_never_cut_names_or_ids(
    filled: dict[str, Any], command: list[str], keys: list[str], width: int
) -> None:
    home = [] if tuple(command[:2]) in NO_HOME else ["--home", filled["home"]]
    result = cli(*command, *home, width=width)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) > 3, result.output
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, result.output
    assert "…" not in result.output, result.output
    for key in keys:
        value = filled["ids"][key[1:]] if key.startswith("@") else LONG[key]
        if key.startswith("@") or width == 120:
            assert any(value in line for line in lines), (value, result.output)
        else:
            assert _folded(lines, value) == value, (value, result.output)


def _render(table: Any, width: int) -> list[str]:
    from rich.console import Console

    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text().splitlines()


def test_fit_table_drops_the_most_droppable_first_and_says_so() -> None:
    cols = [
        Col("name", key=True),
        Col("kept", drop=0),
        Col("second", drop=1),
        Col("first", drop=2),
    ]
    row = ["N" * 30, "K" * 12, "S" * 20, "F" * 20]
    wide = "\n".join(_render(fit_table(cols, [row], width=120), 120))
    assert all(c * n in wide for c, n in (("N", 30), ("K", 12), ("S", 20), ("F", 20)))
    assert "not shown" not in wide
    # 60 columns: "first" goes, "second" and "kept" wrap, the name stays whole.
    narrow = _render(fit_table(cols, [row], width=60), 60)
    text = "\n".join(narrow)
    assert all(len(line) <= 60 for line in narrow)
    assert "N" * 30 in text and text.count("K") == 12 and text.count("S") == 20
    assert "F" not in text and "not shown (terminal too narrow): first" in text
    # 48 columns: "second" goes too; "kept" (drop=0) wraps but stays.
    tight = "\n".join(_render(fit_table(cols, [row], width=48), 48))
    assert "N" * 30 in tight and tight.count("K") == 12 and "S" not in tight
    assert "first, second" in tight.replace("\n", " ") or "second, first" in tight


def test_fit_table_folds_a_key_rather_than_crop_it_when_nothing_else_can_give() -> None:
    cols = [Col("ID", key=True), Col("Name", key=True)]
    lines = _render(fit_table(cols, [["x" * 40, "y" * 60]], width=80), 80)
    text = "\n".join(lines)
    assert all(len(line) <= 80 for line in lines)
    assert "x" * 40 in text  # the narrower key (the id) stays whole on one line
    assert text.count("y") == 60  # the name is folded onto more lines, every character kept


# ---------------------------------------------------------------- arguments checked first


@pytest.fixture(scope="module")
def checked_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("first-hour-args")
    rows = root / "rows.jsonl"
    rows.write_text('{"id": "1", "question": "1+1", "answer": "2"}\n')
    spec = root / "space.yaml"
    spec.write_text("space:\n  x: {type: float, low: 0, high: 1}\n")
    (root / "empty").mkdir()
    home = root / "home"
    made = cli("datasets", "create", "qa", rows, "--home", home)
    assert made.exit_code == 0, made.output
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("# A\n\nSome text.\n")
    made = cli("datasets", "create", "docs", root / "docs", "--home", home)
    assert made.exit_code == 0, made.output
    return {"home": home, "rows": rows, "spec": spec, "empty": root / "empty", "root": root}


# (arguments, error code, what the message must name); {x} are checked_home's paths.
BAD_ARGS: list[tuple[list[str], str, str]] = [
    # The typo: named before the (missing) benchmark data is looked at.
    (["bench", "run", "-m", "local:smollm3", "-t", "arc_easy", "--data-dir", "{empty}"],
     "INVALID_ARGUMENT", "smollm3"),
    (["bench", "run", "-m", "models:/nope@prod", "-t", "arc_easy", "--data-dir", "{empty}"],
     "NOT_FOUND", "nope"),
    (["bench", "run", "-m", "./no-such-folder", "-t", "arc_easy"], "INVALID_ARGUMENT",
     "no-such-folder"),
    (["bench", "run", "-m", "local:smollm2", "-t", "arc_easyy"], "NOT_FOUND", "arc_easyy"),
    (["select", "-c", "local:smollm3", "--rows", "{rows}", "-d", "fresh"], "INVALID_ARGUMENT",
     "smollm3"),
    (["select", "-c", "models:/nope@prod", "--rows", "{rows}", "-d", "fresh"], "NOT_FOUND",
     "nope"),
    (["select", "-c", "local:smollm2", "--rows", "{root}/missing.jsonl"], "INVALID_ARGUMENT",
     "missing.jsonl"),
    (["select", "-c", "local:smollm2", "--rows", "{rows}", "-m", "exact_matchh"], "NOT_FOUND",
     "exact_matchh"),
    (["eval", "run", "--candidate", "local:smollm3", "--dataset", "qa@1", "--metric",
      "exact_match"], "INVALID_ARGUMENT", "smollm3"),
    (["eval", "run", "--candidate", "local:smollm2", "--dataset", "qa@7", "--metric",
      "exact_match"], "NOT_FOUND", "7"),
    (["eval", "run", "--candidate", "local:smollm2", "--dataset", "qa@1", "--metric",
      "exact_matchh"], "NOT_FOUND", "exact_matchh"),
    (["tune", "run", "{root}/missing.yaml", "-o", "x:y"], "INVALID_ARGUMENT", "missing.yaml"),
    (["tune", "run", "{spec}", "-o", "no_such_module:f", "-n", "1"], "INVALID_ARGUMENT",
     "no_such_module"),
    (["index", "build", "ix", "-c", "nosuch@1"], "NOT_FOUND", "nosuch"),
    (["index", "build", "ix", "-c", "qa@1"], "INVALID_ARGUMENT", "qa@1"),
    (["index", "build", "ix", "-c", "docs@1", "--embedder", "local:minilmx"],
     "INVALID_ARGUMENT", "minilmx"),
    (["datasets", "create", "fresh", "{root}/missing.csv"], "INVALID_ARGUMENT", "missing.csv"),
    (["datasets", "create", "fresh", "{rows}", "--rules", "{root}/rules.yaml"],
     "INVALID_ARGUMENT", "rules.yaml"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "named"), BAD_ARGS, ids=[" ".join(a[:3]) for a, _, _ in BAD_ARGS]
)
def test_bad_arguments_are_named_before_anything_loads(
    checked_home: dict[str, Path], args: list[str], code: str, named: str
) -> None:
    paths = {k: str(v) for k, v in checked_home.items()}
    result = cli(*[a.format(**paths) for a in args], "--home", checked_home["home"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error [")]
    assert len(errors) == 1 and errors[0].startswith(f"error [{code}]: "), result.output
    assert named in errors[0], result.output
    assert "Traceback" not in result.output
    # Nothing was stored on the way to the error: still just the fixture's datasets, no runs.
    import opsloop

    with opsloop.Client(home=checked_home["home"]) as c:
        assert sorted(d.name for d in c.datasets.list()) == ["docs", "qa"]
        assert not [e for e in c.list_experiments() if e.name != "Default" and (e.run_count or 0)]


# ---------------------------------------------------------------- only opsloop's own output

_FOREIGN = re.compile(
    r"^\[[IWE] \d{4}-\d\d-\d\d"  # Optuna's log lines
    r"|Loading weights|it/s\]|s/it\]|\d+%\|"  # tqdm and transformers' bars
    r"|^(INFO|WARNING|DEBUG)\b|Warning: |warnings\.warn|^\s*warn\("  # loggers, Python warnings
)


def _opsloop(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process (other libraries' handlers and all)."""
    return subprocess.run(
        [sys.executable, "-m", "opsloop.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(COLUMNS="120"),
        timeout=timeout,
    )


def _foreign(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if _FOREIGN.search(ln)]


def test_quickstart_prints_only_its_own_lines(tmp_path: Path) -> None:
    proc = _opsloop(
        "quickstart", "--home", str(tmp_path), "--trials", "2", "--tuning-trials", "3",
        "--no-llm", "--no-serve",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Best runs of 2" in proc.stdout and "Pareto front" in proc.stdout
    assert not _foreign(proc), proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_tune_run_is_quiet_and_verbose_shows_optuna(tmp_path: Path) -> None:
    spec = tmp_path / "space.yaml"
    spec.write_text(
        "space:\n  x: {type: float, low: -5, high: 5}\n  y: {type: float, low: -5, high: 5}\n"
    )
    args = ["--home", str(tmp_path / "h"), "tune", "run", str(spec), "-n", "3"]
    quiet = _opsloop(*args[2:], "-o", "opsloop.tuning.examples:quadratic", *args[:2])
    assert quiet.returncode == 0, quiet.stderr
    assert not _foreign(quiet) and quiet.stderr.strip() == "", quiet.stdout + quiet.stderr
    loud = _opsloop("--verbose", *args, "-o", "opsloop.tuning.examples:quadratic", "--name", "v")
    assert loud.returncode == 0, loud.stderr
    assert any("Trial 0 finished" in ln for ln in _foreign(loud)), loud.stderr


def test_an_llm_command_prints_only_its_own_lines(tmp_path: Path) -> None:
    """``index build`` loads the bundled MiniLM through transformers, whose loading bar
    ("Loading weights: 100%|...") and log lines used to land between opsloop's own."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# opsloop\n\nopsloop tracks runs and serves models.\n")
    home = str(tmp_path / "h")
    made = _opsloop("datasets", "create", "docs", str(docs), "--home", home)
    assert made.returncode == 0 and not _foreign(made), made.stdout + made.stderr
    built = _opsloop("index", "build", "ix", "-c", "docs@1", "--home", home)
    assert built.returncode == 0, built.stderr
    assert "ix: 1 vectors" in built.stdout
    assert not _foreign(built) and built.stderr.strip() == "", built.stdout + built.stderr


# ---------------------------------------------------------------- progress


def test_tune_run_shows_a_progress_bar_of_trials(tmp_path: Path) -> None:
    spec = tmp_path / "space.yaml"
    spec.write_text(
        "space:\n  x: {type: float, low: -5, high: 5}\n  y: {type: float, low: -5, high: 5}\n"
    )
    result = cli(
        "tune", "run", spec, "-o", "opsloop.tuning.examples:quadratic", "-n", "4",
        "--home", tmp_path / "h", env={"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = re.findall(r"trials.*?(\d)/4", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.output))
    counts = [int(n) for n in frames]
    assert counts and counts[0] == 0 and counts[-1] == 4 and counts == sorted(counts), counts


FORCED_TERMINAL = {"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1"}


def _plain(output: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "\n")


def test_eval_run_and_datasets_create_show_progress(tmp_path: Path) -> None:
    from opsloop.registry.flavors import save_pyfunc

    csv = tmp_path / "nums.csv"
    csv.write_text("id,x,y\n" + "".join(f"{i},{i},{2 * i}\n" for i in range(40)))
    model = save_pyfunc(tmp_path / "m", "tests.test_flavors:ScaleModel", config={"scale": 2})
    home = tmp_path / "h"
    made = cli("datasets", "create", "nums", csv, "--home", home, env=FORCED_TERMINAL)
    assert made.exit_code == 0, made.output
    rows = [
        int(n.replace(",", ""))
        for n in re.findall(r"reading nums\.csv.*?([\d,]+) rows", _plain(made.output))
    ]
    assert rows and rows[-1] == 40 and rows == sorted(rows), rows
    ran = cli(
        "eval", "run", "--candidate", model, "--dataset", "nums@1", "--metric", "mae",
        "--target", "y", "--input", "x", "--home", home, env=FORCED_TERMINAL,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    done = [int(n) for n in re.findall(r"evaluating.*?(\d+)/(?:40|\?)", _plain(ran.output))]
    assert done and done[-1] == 40 and done == sorted(done), done
