"""Search spaces in code and YAML, study specs, samplers/pruners by name, Pareto fronts and charts."""

from __future__ import annotations

import itertools
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from opsloop.errors import InvalidArgument
from opsloop.tuning import (
    Categorical,
    Float,
    Int,
    check_space,
    llm_space,
    load_space,
    load_study_spec,
    space_to_dict,
)
from opsloop.tuning._pareto import dominates, history_svg, non_dominated, pareto_svg
from opsloop.tuning._spec import make_pruner, make_sampler

GOOD_YAML = """
# a comment
lr: {type: float, low: 1e-4, high: 0.1, log: true}
depth: {type: int, low: 2, high: 12}
momentum: {type: float, low: 0.0, high: 0.9, step: 0.1}
model: [rf, gb]
prompt_version: {type: categorical, choices: ["qa@1", "qa@2"]}
"""


def _write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_yaml_space_parses_to_the_code_form(tmp_path: Path) -> None:
    space = load_space(_write(tmp_path, GOOD_YAML))
    assert space == {
        "lr": Float(1e-4, 0.1, log=True),
        "depth": Int(2, 12),
        "momentum": Float(0.0, 0.9, step=0.1),
        "model": Categorical(["rf", "gb"]),
        "prompt_version": Categorical(["qa@1", "qa@2"]),
    }
    # The JSON form reads back to the same space (what the registry stores).
    assert check_space(space_to_dict(space)) == space
    # And a JSON file works the same.
    import json

    assert load_space(_write(tmp_path, json.dumps(space_to_dict(space)), "s.json")) == space


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("lr: {type: float, low: 1, high: 0.5}", "space.lr", "greater than high"),
        ("lr: {type: float, low: 0, high: 1, log: true}", "space.lr", "low > 0"),
        ("lr: {type: flot, low: 0, high: 1}", "space.lr.type", "unknown type 'flot'"),
        ("lr: {low: 0, high: 1}", "space.lr", "missing 'type'"),
        ("lr: {type: float, high: 1}", "space.lr", "needs 'low'"),
        ("lr: {type: float, low: abc, high: 1}", "space.lr.low", "not a number"),
        ("lr: {type: float, low: 0, high: .inf}", "space.lr.high", "finite"),
        ("lr: {type: float, low: 0, high: 1, lg: true}", "space.lr", "unknown field(s) lg"),
        ("depth: {type: int, low: 1.5, high: 4}", "space.depth.low", "integer"),
        ("depth: {type: int, low: 1, high: 4, step: 0}", "space.depth.step", ">= 1"),
        ("model: []", "space.model.choices", "non-empty"),
        ("model: [a, a]", "space.model.choices", "must not repeat"),
        ("model: [[1, 2]]", "space.model.choices[0]", "strings, numbers"),
        ("model: {type: categorical}", "space.model", "needs 'choices'"),
        ("model: 3", "space.model", "expected a dimension"),
        ("- a\n- b", "space", "mapping of parameter names"),
    ],
)
def test_bad_spaces_get_a_clear_error_naming_the_entry(
    tmp_path: Path, text: str, path: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as ei:
        load_space(_write(tmp_path, text))
    assert ei.value.details["path"] == path
    assert words in ei.value.message
    assert ei.value.code == "INVALID_ARGUMENT"


def test_unreadable_files_and_broken_yaml(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_space(tmp_path / "missing.yaml")
    with pytest.raises(InvalidArgument, match=r"not valid YAML \(line 2") as ei:
        load_space(_write(tmp_path, "lr: {type: float\ndepth: [1, 2"))
    assert ei.value.details["line"] == 2
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        load_space(_write(tmp_path, "{nope", "s.json"))


def test_code_spaces_are_checked_too() -> None:
    with pytest.raises(InvalidArgument, match="low > 0"):
        check_space({"lr": Float(0, 1, log=True)})
    with pytest.raises(InvalidArgument, match="parameter names"):
        check_space({"": Int(1, 2)})
    with pytest.raises(InvalidArgument, match="log"):
        check_space({"n": Int(0, 10, log=True)})


def test_study_spec(tmp_path: Path) -> None:
    spec = load_study_spec(
        _write(
            tmp_path,
            "name: s1\ndirections: [maximize, minimize]\nobjectives: [f1, train_seconds]\n"
            "objective: opsloop.tuning.examples:tabular\nn_trials: 7\n"
            "sampler: {type: tpe, seed: 3}\npruner: {type: median, n_warmup_steps: 2}\n"
            "space:\n  depth: {type: int, low: 1, high: 3}\n",
        )
    )
    assert spec.name == "s1"
    assert spec.directions == ["maximize", "minimize"]
    assert spec.objectives == ["f1", "train_seconds"]
    assert spec.n_trials == 7
    assert spec.space == {"depth": Int(1, 3)}
    assert type(make_sampler(spec.sampler)).__name__ == "TPESampler"
    assert type(make_pruner(spec.pruner)).__name__ == "MedianPruner"
    # A bare space maximises "value".
    bare = load_study_spec(_write(tmp_path, "x: {type: float, low: 0, high: 1}"))
    assert (bare.directions, bare.objectives) == (["maximize"], ["value"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("directions: [up]\nspace: {x: [1, 2]}", "not 'maximize' or 'minimize'"),
        (
            "directions: [maximize, minimize]\nobjectives: [f1]\nspace: {x: [1]}",
            "one metric per direction",
        ),
        ("space: {x: [1]}\nn_trial: 3", "unknown study spec key(s): n_trial"),
        ("space: {x: [1]}\nn_trials: 0", "positive integer"),
        ("space: {x: [1]}\nsampler: annealing", "unknown sampler 'annealing'"),
        ("space: {x: [1]}\npruner: {type: median, warmup: 2}", "bad pruner settings"),
        ("space: {x: [1]}\nobjectives: ['bad key!']", "may only hold"),
    ],
)
def test_bad_study_specs(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        load_study_spec(_write(tmp_path, text))
    assert words in ei.value.message


def test_llm_space_holds_the_usual_settings() -> None:
    space = llm_space(prompt_versions=["qa@1", "qa@2"], top_k=(1, 8))
    assert space["prompt_version"] == Categorical(["qa@1", "qa@2"])
    assert space["temperature"] == Float(0.0, 1.2)
    assert space["top_k"] == Int(1, 8)
    assert space["chunk_size"] == Categorical([256, 512, 1024])
    assert "temperature" not in llm_space(temperature=None)


# ---------------------------------------------------------------------- Pareto


def _brute_front(points: list[list[float]], dirs: list[str]) -> list[int]:
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, dirs) for j, q in enumerate(points) if j != i)
    ]


def test_non_dominated_matches_the_definition_on_random_points() -> None:
    rng = random.Random(7)
    for dirs in (["maximize", "minimize"], ["minimize", "minimize", "maximize"], ["maximize"]):
        for _ in range(40):
            # Few distinct values, so ties and duplicates are common.
            pts = [[float(rng.randint(0, 5)) for _ in dirs] for _ in range(rng.randint(0, 25))]
            assert non_dominated(pts, dirs) == _brute_front(pts, dirs)


def test_dominates() -> None:
    d = ["maximize", "minimize"]
    assert dominates([0.9, 1.0], [0.8, 1.0], d)
    assert dominates([0.9, 0.5], [0.8, 1.0], d)
    assert not dominates([0.9, 1.0], [0.9, 1.0], d)  # equal: neither dominates
    assert not dominates([0.9, 2.0], [0.8, 1.0], d)  # a trade-off


def test_charts_are_well_formed_svg() -> None:
    d = ["maximize", "minimize"]
    pts = [(i, [a, b]) for i, (a, b) in enumerate(itertools.product([0.1, 0.5, 0.9], [1.0, 3.0]))]
    svg = pareto_svg(pts, d, ["f1", "seconds"])
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    front = [c for c in root.iter() if c.get("class") == "pareto"]
    # Only (0.9, 1.0) is non-dominated among this grid.
    assert len(front) == 1
    assert "trial 4" in "".join(front[0].itertext())
    assert "1 of 6 trials" in svg
    ET.fromstring(pareto_svg([], d, ["a", "b"]))
    hist = ET.fromstring(history_svg([(0, 3.0), (1, 1.0), (2, 2.0)], "minimize", "loss"))
    assert len([c for c in hist.iter() if c.tag.endswith("circle")]) == 3
    with pytest.raises(ValueError):
        pareto_svg(pts, ["maximize"], ["f1"])


# ---------------------------------------------------------------------- storage, imports, surface


def test_storage_follows_opsloops_database(tmp_path: Path) -> None:
    from opsloop.settings import Settings
    from opsloop.tuning._storage import resolve_storage

    home = tmp_path / "h"
    default = resolve_storage(Settings(home=home))
    assert (default.kind, default.url) == ("sqlite", f"sqlite:///{(home / 'tuning.db').resolve()}")
    custom = resolve_storage(Settings(home=home, database_url=f"sqlite:///{tmp_path}/ops.db"))
    assert custom.url == f"sqlite:///{(tmp_path / 'ops-tuning.db').resolve()}"
    pg = resolve_storage(Settings(home=home, database_url="postgresql://u:secret@db:5432/ops"))
    assert pg.kind == "postgresql" and pg.shared_across_machines
    assert pg.url.startswith("postgresql+psycopg://u:secret@")
    assert "secret" not in pg.display and "schema opsloop_tuning" in pg.display
    remote = resolve_storage(Settings(home=home, tracking_uri="http://server:5000"))
    assert remote.url == default.url  # Optuna's state stays with the client
    assert resolve_storage(Settings(home=home), "memory").kind == "memory"
    assert resolve_storage(Settings(home=home), tmp_path / "x.db").url.endswith("/x.db")
    with pytest.raises(InvalidArgument, match="in-memory SQLite"):
        resolve_storage(Settings(home=home), "sqlite:///:memory:")


def test_importing_tuning_and_serving_its_api_do_not_import_optuna(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import opsloop.tuning, opsloop.tuning.api\n"
        "from opsloop.server import create_app\n"
        "from opsloop.settings import Settings\n"
        f"create_app(Settings(home={str(tmp_path)!r}))\n"
        "print(json.dumps([m for m in ('optuna', 'ray', 'sklearn', 'yaml') if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_public_surface() -> None:
    import opsloop.tuning as t

    assert sorted(t.__all__) == sorted(
        [
            "Categorical", "Float", "Int", "ParetoPoint", "SearchSpace", "Study", "StudyInfo",
            "StudySpec", "StudySummary", "Timer", "Trial", "TrialInfo", "TrialPruned", "Tuning",
            "check_space", "create_study", "list_studies", "llm_space", "load_space", "load_study",
            "load_study_spec", "space_to_dict", "SvgCanvas", "non_dominated",
        ]
    )  # fmt: skip
    for name in t.__all__:
        assert getattr(t, name) is not None
    assert t.Study.__module__ == "opsloop.tuning._study"
