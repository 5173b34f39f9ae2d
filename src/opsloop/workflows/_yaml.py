"""Workflows declared in YAML: steps named by ``module:function``, wired by ``${...}`` references.

.. code-block:: yaml

    name: demo
    params: {rows: 100}
    steps:
      - name: load
        uses: mypkg.steps:load          # a @step, or a plain function (made a step)
        with: {rows: "${params.rows}"}
      - name: train
        uses: mypkg.steps:train
        with: {data: "${steps.load}", alpha: 0.5}
        retries: 2
        timeout: 600
    returns: train
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union

from opsloop.core import load_ref
from opsloop.workflows._errors import WorkflowDefinitionError
from opsloop.workflows._step import Graph, Output, Step

__all__ = ["YamlWorkflow", "load_yaml_workflow"]

_REF = re.compile(r"^\$\{(params|steps)\.([A-Za-z_][\w\-]*)\}$")
_STEP_KEYS = {"name", "uses", "with", "retries", "backoff", "timeout", "cache", "external"}


class YamlWorkflow:
    def __init__(self, doc: Mapping[str, Any], ref: str) -> None:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("steps"), list):
            raise WorkflowDefinitionError("a workflow file needs a list of 'steps'")
        self.doc = doc
        self.name = str(doc.get("name") or Path(ref).stem)
        self.ref = ref
        self.defaults = dict(doc.get("params") or {})
        self.steps: list[tuple[str, Step[..., Any], dict[str, Any]]] = []
        for i, raw in enumerate(doc["steps"]):
            if not isinstance(raw, Mapping) or "uses" not in raw:
                raise WorkflowDefinitionError(f"step {i} needs 'uses: module:function'")
            unknown = set(raw) - _STEP_KEYS
            if unknown:
                raise WorkflowDefinitionError(f"step {i}: unknown keys {sorted(unknown)}")
            try:
                fn = load_ref(str(raw["uses"]))
            except (ImportError, AttributeError) as e:
                raise WorkflowDefinitionError(f"step {i}: cannot load {raw['uses']}: {e}") from None
            opts = {
                k: raw[k]
                for k in ("retries", "backoff", "timeout", "cache", "external")
                if k in raw
            }
            base = fn if isinstance(fn, Step) else Step(fn)
            s = Step(
                base.fn,
                name=str(raw.get("name") or base.name),
                **{
                    "retries": base.retries,
                    "backoff": base.backoff,
                    "timeout": base.timeout,
                    "cache": base.cache,
                    "external": base.external,
                    "uses": base.uses,
                    **opts,
                },
            )
            self.steps.append((s.name, s, dict(raw.get("with") or {})))

    def params_of(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        extra = set(params or {}) - set(self.defaults)
        if extra:
            raise WorkflowDefinitionError(f"workflow {self.name}: unknown params {sorted(extra)}")
        return {**self.defaults, **dict(params or {})}

    def build(self, params: Mapping[str, Any] | None = None) -> Graph:
        values = self.params_of(params)
        graph = Graph(self.name)
        outs: dict[str, Output] = {}

        def resolve(v: Any) -> Any:
            if isinstance(v, str):
                m = _REF.match(v)
                if m and m.group(1) == "params":
                    if m.group(2) not in values:
                        raise WorkflowDefinitionError(f"unknown parameter in {v}")
                    return values[m.group(2)]
                if m:
                    if m.group(2) not in outs:
                        raise WorkflowDefinitionError(f"{v} names no earlier step")
                    return outs[m.group(2)]
            if isinstance(v, list):
                return [resolve(x) for x in v]
            if isinstance(v, dict):
                return {k: resolve(x) for k, x in v.items()}
            return v

        for name, s, args in self.steps:
            values_in = {k: _coerce(s, k, resolve(v)) for k, v in args.items()}
            outs[name] = graph.add(s, s.bind(**values_in))
        ret = self.doc.get("returns")
        graph.result = outs[str(ret)] if ret in outs else outs[self.steps[-1][0]]
        return graph


def _coerce(s: Step[..., Any], param: str, value: Any) -> Any:
    """YAML gives strings: a parameter annotated ``Path`` gets a ``Path`` (hashed by content)."""
    if not isinstance(value, str):
        return value
    try:
        hints = typing.get_type_hints(s.fn)
    except Exception:
        return value
    hint = hints.get(param)
    if hint is Path or (
        typing.get_origin(hint) in (Union, UnionType) and Path in typing.get_args(hint)
    ):
        return Path(value)
    return value


def load_yaml_workflow(path: str | Path) -> YamlWorkflow:
    import yaml  # lazy: only YAML workflows need it

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise WorkflowDefinitionError(f"cannot read workflow file {p}: {e}") from None
    return YamlWorkflow(doc, str(p.resolve()))
