"""Study specs read from YAML or JSON, and samplers and pruners named by a string or mapping.

A study spec (what ``opsloop tune run spec.yaml`` reads)::

    name: iris-rf                      # optional: the CLI can name it
    experiment: iris                   # optional: defaults to the study name
    directions: [maximize, minimize]   # or direction: maximize
    objectives: [f1, train_seconds]    # metric names, one per direction
    objective: mypkg.train:objective   # optional: the CLI's --objective wins
    n_trials: 40
    sampler: {type: tpe, seed: 0}      # tpe | random | nsga2 | qmc | grid | bruteforce
    pruner: {type: median, n_warmup_steps: 2}
    space:
      lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
      model: [rf, gb]
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.tracking import check_key
from opsloop.tuning._space import Categorical, SearchSpace, check_space

DIRECTIONS = ("maximize", "minimize")


def read_document(source: str | os.PathLike[str] | Mapping[str, Any]) -> Any:
    """A parsed YAML or JSON file (``.json`` is read as JSON, anything else as YAML)."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgument(f"search space file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read search space file {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                f"{path} is not valid JSON: {exc}", details={"line": exc.lineno}
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidArgument(
            f"{path} is not valid YAML{where}: {problem}",
            details={"line": mark.line + 1} if mark else None,
        ) from None


def load_space(source: str | Any) -> SearchSpace:
    """Read a search space from a YAML or JSON file.

    The file holds the space mapping itself, or a study spec with a
    ``space:`` key (see ``load_study_spec``).
    """
    doc = read_document(source)
    if isinstance(doc, Mapping) and "space" in doc:
        return check_space(doc["space"])
    return check_space(doc)


def check_directions(directions: Any, objectives: Any) -> tuple[list[str], list[str]]:
    """Directions (``maximize``/``minimize``) and objective names, one per direction."""
    if isinstance(directions, str):
        directions = [directions]
    if not isinstance(directions, Sequence) or not directions:
        raise InvalidArgument("directions must be a non-empty list of 'maximize' or 'minimize'")
    dirs = []
    for d in directions:
        dl = str(getattr(d, "name", d)).lower()
        if dl not in DIRECTIONS:
            raise InvalidArgument(
                f"direction {d!r} is not 'maximize' or 'minimize'", details={"direction": str(d)}
            )
        dirs.append(dl)
    if objectives is None:
        objectives = ["value"] if len(dirs) == 1 else [f"value_{i}" for i in range(len(dirs))]
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, Sequence) or len(objectives) != len(dirs):
        raise InvalidArgument(
            f"objectives must name one metric per direction ({len(dirs)}), got {objectives!r}"
        )
    names = [check_key("objective", o) for o in objectives]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"objective names must differ, got {names!r}")
    return dirs, names


@dataclass
class StudySpec:
    """Everything a YAML spec can say about a study."""

    space: SearchSpace
    directions: list[str]
    objectives: list[str]
    name: str | None = None
    experiment: str | None = None
    objective: str | None = None
    n_trials: int | None = None
    timeout: float | None = None
    sampler: Any = None
    pruner: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


_SPEC_KEYS = {
    "name",
    "experiment",
    "direction",
    "directions",
    "objectives",
    "objective",
    "n_trials",
    "timeout",
    "sampler",
    "pruner",
    "space",
}


def load_study_spec(source: str | os.PathLike[str] | Mapping[str, Any]) -> StudySpec:
    """Read and check a study spec; a file holding only a space maximises ``value``."""
    doc = read_document(source)
    if not isinstance(doc, Mapping):
        raise InvalidArgument(f"a study spec must be a mapping, got {type(doc).__name__}")
    if "space" not in doc:
        return StudySpec(space=check_space(doc), directions=["maximize"], objectives=["value"])
    unknown = set(doc) - _SPEC_KEYS
    if unknown:
        raise InvalidArgument(
            f"unknown study spec key(s): {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(_SPEC_KEYS))})"
        )
    if "direction" in doc and "directions" in doc:
        raise InvalidArgument("give 'direction' or 'directions', not both")
    dirs, objs = check_directions(
        doc.get("directions", doc.get("direction", "maximize")), doc.get("objectives")
    )
    n_trials = doc.get("n_trials")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1
    ):
        raise InvalidArgument(f"n_trials must be a positive integer, got {n_trials!r}")
    timeout = doc.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise InvalidArgument(f"timeout must be a positive number of seconds, got {timeout!r}")
    for key in ("sampler", "pruner"):
        if doc.get(key) is not None:
            (make_sampler if key == "sampler" else make_pruner)(doc[key])  # fail early
    return StudySpec(
        space=check_space(doc["space"]),
        directions=dirs,
        objectives=objs,
        name=doc.get("name"),
        experiment=doc.get("experiment"),
        objective=doc.get("objective"),
        n_trials=n_trials,
        timeout=float(timeout) if timeout is not None else None,
        sampler=doc.get("sampler"),
        pruner=doc.get("pruner"),
    )


# ---------------------------------------------------------------------- samplers, pruners


def _split(kind: str, spec: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec.lower(), {}
    if isinstance(spec, Mapping):
        if "type" not in spec:
            raise InvalidArgument(f"a {kind} mapping needs a 'type'")
        return str(spec["type"]).lower(), {k: v for k, v in spec.items() if k != "type"}
    raise InvalidArgument(f"{kind} must be a name, a mapping with a 'type', or an Optuna {kind}")


def _build(kind: str, name: str, factories: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    factory = factories.get(name)
    if factory is None:
        raise InvalidArgument(
            f"unknown {kind} {name!r} (known: {', '.join(sorted(factories))})",
            details={kind: name},
        )
    from optuna.exceptions import ExperimentalWarning

    try:
        with warnings.catch_warnings():
            # Some samplers and pruners are marked experimental; choosing one is deliberate.
            warnings.simplefilter("ignore", ExperimentalWarning)
            return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"bad {kind} settings for {name!r}: {exc}") from None


def make_sampler(spec: Any, space: SearchSpace | None = None) -> Any:
    """An Optuna sampler from a name (``"tpe"``), a mapping (``{type: tpe, seed: 0}``) or itself."""
    import optuna

    if spec is None or isinstance(spec, optuna.samplers.BaseSampler):
        return spec
    name, kwargs = _split("sampler", spec)
    if name == "grid" and "search_space" not in kwargs:
        if space is None or not all(isinstance(d, Categorical) for d in space.values()):
            raise InvalidArgument("the grid sampler needs a space of categorical dimensions only")
        kwargs["search_space"] = {k: list(d.choices) for k, d in space.items()}  # type: ignore[union-attr]
    s = optuna.samplers
    factories = {
        "tpe": s.TPESampler,
        "random": s.RandomSampler,
        "nsga2": s.NSGAIISampler,
        "nsga3": s.NSGAIIISampler,
        "qmc": s.QMCSampler,
        "grid": s.GridSampler,
        "bruteforce": s.BruteForceSampler,
        "cmaes": s.CmaEsSampler,
        "gp": s.GPSampler,
    }
    return _build("sampler", name, factories, kwargs)


def make_pruner(spec: Any) -> Any:
    """An Optuna pruner from a name (``"median"``), a mapping or itself; ``"none"`` never prunes."""
    import optuna

    if spec is None or isinstance(spec, optuna.pruners.BasePruner):
        return spec
    name, kwargs = _split("pruner", spec)
    p = optuna.pruners
    factories = {
        "median": p.MedianPruner,
        "percentile": p.PercentilePruner,
        "hyperband": p.HyperbandPruner,
        "successive_halving": p.SuccessiveHalvingPruner,
        "threshold": p.ThresholdPruner,
        "patient": p.PatientPruner,
        "wilcoxon": p.WilcoxonPruner,
        "none": p.NopPruner,
        "nop": p.NopPruner,
    }
    if name == "patient" and isinstance(kwargs.get("wrapped_pruner"), (str, Mapping)):
        kwargs["wrapped_pruner"] = make_pruner(kwargs["wrapped_pruner"])
    return _build("pruner", name, factories, kwargs)
