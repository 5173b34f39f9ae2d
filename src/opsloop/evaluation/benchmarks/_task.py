"""Task definitions: a YAML file per benchmark, parsed and checked into a ``TaskSpec``.

Templates are Jinja2, rendered in an immutable sandbox (a task file cannot
reach Python internals). ``doc_to_text`` and ``doc_to_continuation`` are
*templates* (``"Question: {{question}}\\nAnswer:"``); ``doc_to_choice``,
``doc_to_target`` and ``doc_to_contexts`` are *expressions* evaluated against
the record (``endings``, ``choices.label.index(answerKey)``, ``[sol1, sol2]``),
so they can yield lists and numbers. ``doc_to_choice`` may also be a YAML list
of templates.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidArgument, NotFound

__all__ = [
    "TASKS_DIR",
    "HubSource",
    "Normalization",
    "TaskSpec",
    "list_tasks",
    "load_task",
    "parse_task",
]

TASKS_DIR = Path(__file__).parent / "tasks"
OUTPUT_TYPES = ("multiple_choice", "generate_until")
MC_METRICS = ("acc", "acc_norm")
GEN_METRICS = ("exact_match",)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KEYS = {
    "name",
    "description",
    "source",
    "split",
    "fewshot_source",
    "fewshot_split",
    "output_type",
    "doc_to_text",
    "doc_to_choice",
    "doc_to_target",
    "doc_to_contexts",
    "doc_to_continuation",
    "target_delimiter",
    "fewshot_delimiter",
    "num_fewshot",
    "metrics",
    "normalization",
    "until",
    "max_gen_toks",
    "published_with",
    "hub",
}
_HUB_KEYS = {"path", "name", "split", "doc_to_text", "doc_to_choice", "doc_to_target"}


@dataclass(frozen=True)
class HubSource:
    """The task's standard dataset on the Hugging Face hub (``datasets.load_dataset`` arguments).

    ``overrides``: templates that replace the task's own for records read from
    the hub, where the hub's copy lays its fields out differently (ARC).
    """

    path: str
    split: str
    name: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Normalization:
    """How exact match compares a generated answer with the target.

    ``number``: take the number after ``answer_prefix`` (``####``) when there
    is one, else the last number in the text, without ``,``/``$`` and
    trailing zeros; the SQuAD-style switches apply to other text.
    """

    lowercase: bool = True
    strip_punctuation: bool = True
    strip_articles: bool = True
    number: bool = False
    answer_prefix: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task, as its YAML file declares it."""

    name: str
    source: str
    output_type: str
    doc_to_text: str | None = None
    doc_to_choice: str | list[str] | None = None
    doc_to_target: str | None = None
    doc_to_contexts: str | None = None
    doc_to_continuation: str | None = None
    description: str = ""
    split: str | None = None
    fewshot_source: str | None = None
    fewshot_split: str | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = 0
    metrics: tuple[str, ...] = ()
    normalization: Normalization = field(default_factory=Normalization)
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    published_with: str = ""
    path: str | None = None
    hub: HubSource | None = None

    @property
    def partial(self) -> bool:
        """Partial scoring: one shared continuation scored after each choice's own context."""
        return self.doc_to_contexts is not None

    # ------------------------------------------------------------------ rendering

    def text(self, doc: dict[str, Any]) -> str:
        return _render(
            self.name, "doc_to_text", _need(self.name, "doc_to_text", self.doc_to_text), doc
        )

    def choices(self, doc: dict[str, Any]) -> list[str]:
        spec = self.doc_to_choice
        if isinstance(spec, list):
            return [_render(self.name, "doc_to_choice", t, doc) for t in spec]
        value = _evaluate(self.name, "doc_to_choice", _need(self.name, "doc_to_choice", spec), doc)
        return _as_str_list(self.name, "doc_to_choice", value)

    def contexts(self, doc: dict[str, Any]) -> list[str]:
        value = _evaluate(
            self.name,
            "doc_to_contexts",
            _need(self.name, "doc_to_contexts", self.doc_to_contexts),
            doc,
        )
        return _as_str_list(self.name, "doc_to_contexts", value)

    def continuation(self, doc: dict[str, Any]) -> str:
        return _render(
            self.name,
            "doc_to_continuation",
            _need(self.name, "doc_to_continuation", self.doc_to_continuation),
            doc,
        )

    def target(self, doc: dict[str, Any]) -> Any:
        return _evaluate(
            self.name, "doc_to_target", _need(self.name, "doc_to_target", self.doc_to_target), doc
        )

    def gold_index(self, doc: dict[str, Any], choices: list[str]) -> int:
        """The index of the right choice (the target may be an index or the choice's text)."""
        t = self.target(doc)
        if isinstance(t, bool) or not isinstance(t, int | str):
            raise InvalidArgument(
                f"task {self.name!r}: doc_to_target gave {t!r}; a multiple-choice target is an "
                "index or a choice's text",
                details={"task": self.name},
            )
        if isinstance(t, str):
            if t in choices:
                return choices.index(t)
            if not t.strip().lstrip("-").isdigit():
                raise InvalidArgument(
                    f"task {self.name!r}: target {t!r} is not one of the choices {choices}",
                    details={"task": self.name},
                )
            t = int(t)
        if not 0 <= t < len(choices):
            raise InvalidArgument(
                f"task {self.name!r}: target index {t} is outside the {len(choices)} choices",
                details={"task": self.name},
            )
        return t


def _need(task: str, what: str, value: str | None) -> str:
    if value is None:
        raise InvalidArgument(f"task {task!r} defines no {what}", details={"task": task})
    return value


# ---------------------------------------------------------------------- Jinja


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters["regex_replace"] = lambda s, pattern, repl="": re.sub(pattern, repl, str(s))
    return env


@functools.lru_cache(maxsize=512)
def _template(source: str) -> Any:
    return _env().from_string(source)


@functools.lru_cache(maxsize=512)
def _expression(source: str) -> Any:
    return _env().compile_expression(source, undefined_to_none=False)


def _render(task: str, what: str, source: str, doc: dict[str, Any]) -> str:
    try:
        return str(_template(source).render(**doc))
    except Exception as exc:  # jinja raises many types; all mean "this template fails here"
        raise InvalidArgument(
            f"task {task!r}: {what} failed on a record: {type(exc).__name__}: {exc}",
            details={"task": task, "field": what},
        ) from None


def _evaluate(task: str, what: str, source: str, doc: dict[str, Any]) -> Any:
    try:
        return _expression(source)(**doc)
    except Exception as exc:
        raise InvalidArgument(
            f"task {task!r}: {what} failed on a record: {type(exc).__name__}: {exc}",
            details={"task": task, "field": what},
        ) from None


def _as_str_list(task: str, what: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidArgument(
            f"task {task!r}: {what} must give a non-empty list, got {type(value).__name__}",
            details={"task": task, "field": what},
        )
    return [str(v) for v in value]


# ---------------------------------------------------------------------- parsing


def _bad(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"task definition {where}: {message}", details={"task": where})


def _check_syntax(where: str, key: str, source: str, *, expression: bool) -> None:
    from jinja2 import TemplateSyntaxError

    try:
        if expression:
            _expression(source)
        else:
            _template(source)
    except TemplateSyntaxError as exc:
        raise _bad(
            where, f"{key} is not a valid Jinja {'expression' if expression else 'template'}: {exc}"
        ) from None


def parse_task(data: Any, *, where: str = "<task>") -> TaskSpec:
    """A ``TaskSpec`` from the mapping a YAML task file holds; ``InvalidArgument`` naming the field."""
    if not isinstance(data, dict):
        raise _bad(where, "must be a mapping of fields")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _bad(where, f"unknown field(s) {unknown}; known fields: {sorted(_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(where, "'name' must be a lowercase name (letters, digits, _ . -)")
    where = f"{name!r}" if where == "<task>" else f"{where} ({name!r})"
    for key in ("source", "output_type"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _bad(where, f"'{key}' is required and must be a string")
    out_type = data["output_type"]
    if out_type not in OUTPUT_TYPES:
        raise _bad(where, f"output_type must be one of {list(OUTPUT_TYPES)}, got {out_type!r}")
    strings = (
        "description", "split", "fewshot_source", "fewshot_split", "doc_to_text",
        "doc_to_target", "doc_to_contexts", "doc_to_continuation", "target_delimiter",
        "fewshot_delimiter", "published_with",
    )  # fmt: skip
    for key in strings:
        if key in data and data[key] is not None and not isinstance(data[key], str):
            raise _bad(where, f"'{key}' must be a string")
    if data.get("doc_to_target") is None:
        raise _bad(where, "'doc_to_target' is required")
    choice = data.get("doc_to_choice")
    partial = data.get("doc_to_contexts") is not None
    if out_type == "multiple_choice":
        if partial:
            if data.get("doc_to_continuation") is None or choice is not None:
                raise _bad(
                    where,
                    "partial scoring takes doc_to_contexts and doc_to_continuation, not doc_to_choice",
                )
        else:
            if data.get("doc_to_text") is None or choice is None:
                raise _bad(where, "a multiple_choice task needs doc_to_text and doc_to_choice")
            if not isinstance(choice, str) and not (
                isinstance(choice, list) and choice and all(isinstance(c, str) for c in choice)
            ):
                raise _bad(where, "doc_to_choice must be an expression or a list of templates")
    else:
        if data.get("doc_to_text") is None or choice is not None or partial:
            raise _bad(where, "a generate_until task needs doc_to_text and no choices")
    for key, expr in (
        ("doc_to_text", False),
        ("doc_to_continuation", False),
        ("doc_to_target", True),
        ("doc_to_contexts", True),
    ):
        if data.get(key) is not None:
            _check_syntax(where, key, data[key], expression=expr)
    if isinstance(choice, str):
        _check_syntax(where, "doc_to_choice", choice, expression=True)
    elif isinstance(choice, list):
        for c in choice:
            _check_syntax(where, "doc_to_choice", c, expression=False)
    nf = data.get("num_fewshot", 0)
    if isinstance(nf, bool) or not isinstance(nf, int) or not 0 <= nf <= 64:
        raise _bad(where, "num_fewshot must be an integer in 0..64")
    allowed = MC_METRICS if out_type == "multiple_choice" else GEN_METRICS
    metrics = data.get("metrics") or list(allowed)
    if not isinstance(metrics, list) or not all(m in allowed for m in metrics):
        raise _bad(where, f"metrics must be a list drawn from {list(allowed)}")
    until = data.get("until") or []
    if not isinstance(until, list) or not all(isinstance(u, str) and u for u in until):
        raise _bad(where, "until must be a list of non-empty stop strings")
    mgt = data.get("max_gen_toks", 256)
    if isinstance(mgt, bool) or not isinstance(mgt, int) or not 1 <= mgt <= 4096:
        raise _bad(where, "max_gen_toks must be an integer in 1..4096")
    norm = data.get("normalization") or {}
    fields = set(Normalization.__dataclass_fields__)
    if not isinstance(norm, dict) or set(norm) - fields:
        raise _bad(where, f"normalization must be a mapping with keys from {sorted(fields)}")
    for k, v in norm.items():
        if k == "answer_prefix":
            if v is not None and not isinstance(v, str):
                raise _bad(where, "normalization.answer_prefix must be a string")
        elif not isinstance(v, bool):
            raise _bad(where, f"normalization.{k} must be true or false")
    return TaskSpec(
        hub=_parse_hub(where, data.get("hub")),
        name=name,
        source=data["source"],
        output_type=out_type,
        doc_to_text=data.get("doc_to_text"),
        doc_to_choice=choice,
        doc_to_target=data["doc_to_target"],
        doc_to_contexts=data.get("doc_to_contexts"),
        doc_to_continuation=data.get("doc_to_continuation"),
        description=data.get("description") or "",
        split=data.get("split"),
        fewshot_source=data.get("fewshot_source"),
        fewshot_split=data.get("fewshot_split"),
        target_delimiter=data.get("target_delimiter", " ") or "",
        fewshot_delimiter=data.get("fewshot_delimiter", "\n\n") or "",
        num_fewshot=nf,
        metrics=tuple(metrics),
        normalization=Normalization(**norm),
        until=tuple(until),
        max_gen_toks=mgt,
        published_with=data.get("published_with") or "",
    )


def _parse_hub(where: str, hub: Any) -> HubSource | None:
    if hub is None:
        return None
    if not isinstance(hub, dict) or set(hub) - _HUB_KEYS:
        raise _bad(where, f"hub must be a mapping with keys from {sorted(_HUB_KEYS)}")
    if not all(isinstance(v, str) and v for v in hub.values()):
        raise _bad(where, "hub values must be non-empty strings")
    if "path" not in hub or "split" not in hub:
        raise _bad(where, "hub needs 'path' (the dataset id) and 'split'")
    overrides = {k: v for k, v in hub.items() if k.startswith("doc_to_")}
    for key, text in overrides.items():
        _check_syntax(where, f"hub.{key}", text, expression=key != "doc_to_text")
    return HubSource(hub["path"], hub["split"], hub.get("name"), overrides)


def _load_yaml(path: Path) -> TaskSpec:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidArgument(
            f"task definition {path.name} is not valid YAML: {exc}",
            details={"task": path.name},
        ) from None
    spec = parse_task(data, where=path.name)
    return TaskSpec(**{**spec.__dict__, "path": str(path)})


def list_tasks() -> list[TaskSpec]:
    """The tasks opsloop ships, by name."""
    return [_load_yaml(p) for p in sorted(TASKS_DIR.glob("*.yaml"))]


def load_task(name_or_path: str | Path) -> TaskSpec:
    """A shipped task by name (``hellaswag``) or any task YAML file by path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise NotFound(f"task file {path} does not exist", details={"task": text})
        return _load_yaml(path)
    path = TASKS_DIR / f"{text}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))
        raise NotFound(
            f"no benchmark task named {text!r}; shipped tasks: {', '.join(names)}",
            details={"task": text},
        )
    return _load_yaml(path)
