"""``Pipeline``: a list of named steps over a state dict, declared in Python or YAML.

Python::

    qa = Pipeline(
        [
            PromptStep("prompt", "Answer briefly: {{ question }}"),
            LLMStep("answer", "local:smollm2", max_tokens=48),
        ],
        name="qa",
    )
    qa({"question": "What is BM25?"})        # {"answer": "..."}

YAML (``Pipeline.from_yaml(path_or_text)``)::

    name: qa
    inputs: [question]
    outputs: [answer]
    steps:
      - {name: prompt, type: prompt, template: "Answer briefly: {{ question }}"}
      - {name: answer, type: llm, model: "local:smollm2", max_tokens: 48}

Every invocation is a trace: a ``chain`` span for the pipeline (the root, or
a child of the span open where it is called) and one span per step.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.pipelines._context import Run, RunContext, Tool
from opsloop.pipelines._rag import rag_parts
from opsloop.pipelines._saving import write_pipeline_folder
from opsloop.pipelines._step_spec import step_from_dict
from opsloop.pipelines._steps import Step
from opsloop.pipelines._template import check_path, get_path
from opsloop.pipelines._tools import FunctionTool, LocalCorpusSearch, as_tools
from opsloop.registry.flavors import ColumnSpec, Signature
from opsloop.tracing import current_span, span, start_trace

if TYPE_CHECKING:
    from opsloop.registry.entities import ModelVersion

__all__ = ["KnowledgeBaseQA", "Pipeline", "PipelineResult", "tool_from_dict"]

SPEC_VERSION = 1
_TOP_FIELDS = (
    "opsloop_pipeline",
    "name",
    "description",
    "model",
    "inputs",
    "outputs",
    "tools",
    "steps",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_INPUT_TYPES = ("string", "long", "double", "boolean")


@dataclass
class PipelineResult:
    """One invocation: the declared ``outputs``, the whole ``state``, and its ``trace_id``."""

    outputs: dict[str, Any]
    state: dict[str, Any]
    trace_id: str | None


class Pipeline:
    """Steps run in order over one state; ``invoke(inputs) -> outputs`` (also ``pipeline(inputs)``).

    ``inputs``: names (or ``{name: type}``, types string/long/double/boolean)
    the caller gives; default: every state root a step reads that no earlier
    step writes. ``outputs``: state paths to return (a list, or
    ``{output name: path}``); default: the last step's output. ``tools``: Tool
    objects, ``WebSearch`` backends or functions the tool and agent steps may
    call. ``model``: the provider spec of llm/agent steps that name none.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        name: str = "pipeline",
        inputs: Sequence[str] | Mapping[str, str] | None = None,
        outputs: Sequence[str] | Mapping[str, str] | None = None,
        tools: Sequence[Any] | Mapping[str, Any] | None = None,
        model: Any = None,
        description: str = "",
        context: RunContext | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise PipelineInvalid(
                f"pipeline name {name!r} must be 1-128 letters, digits, '.', '_' or '-'",
                details={"field": "name"},
            )
        if isinstance(steps, Step) or not isinstance(steps, Sequence) or not steps:
            raise PipelineInvalid(
                "a pipeline needs a non-empty list of steps", details={"field": "steps"}
            )
        for i, s in enumerate(steps):
            if not isinstance(s, Step):
                raise PipelineInvalid(
                    f"steps[{i}] is a {type(s).__name__}, not a pipeline step", details={"step": i}
                )
        self.name = name
        self.description = description
        self.steps = list(steps)
        self.model = model
        self.tools: dict[str, Tool] = as_tools(tools)
        self.input_types = self._check_inputs(inputs)
        self.inputs = list(self.input_types)
        self.outputs = self._check_outputs(outputs)
        self._context = context

    # -- checking --------------------------------------------------------------------

    def _check_inputs(self, inputs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
        written: set[str] = set()
        names: list[str] = []
        keys = [s.output_key for s in self.steps]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise PipelineInvalid(
                f"two steps write the same output {dup[0]!r}; give one an output_key",
                details={"step": dup[0], "field": "name"},
            )
        for i, s in enumerate(self.steps):
            for root in s.reads():
                if root not in written and root not in names:
                    names.append(root)
            written.add(s.output_key)
            if i == 0 and s.uses_default_input():
                raise PipelineInvalid(
                    f"step {s.name!r} is first, so it needs an explicit input",
                    details={"step": s.name, "field": "input"},
                )
            for t in s.tools_used():
                if t not in self.tools:
                    raise PipelineInvalid(
                        f"step {s.name!r} uses tool {t!r}, which the pipeline does not declare "
                        f"(tools: {sorted(self.tools)})",
                        details={"step": s.name, "field": "tool"},
                    )
        if inputs is None:
            return {n: "string" for n in names}
        if isinstance(inputs, str):
            raise PipelineInvalid("inputs must be a list of names", details={"field": "inputs"})
        declared = dict(inputs) if isinstance(inputs, Mapping) else {n: "string" for n in inputs}
        for n, t in declared.items():
            if not isinstance(n, str) or not re.match(r"^[A-Za-z_]\w{0,63}$", n):
                raise PipelineInvalid(f"input name {n!r} is not valid", details={"field": "inputs"})
            if t not in _INPUT_TYPES:
                raise PipelineInvalid(
                    f"input {n!r}: type must be one of {', '.join(_INPUT_TYPES)}, got {t!r}",
                    details={"field": "inputs", "input": n},
                )
            if n in written:
                raise PipelineInvalid(
                    f"input {n!r} has the name of a step output",
                    details={"field": "inputs", "input": n},
                )
        # Each read must be an input or an earlier step's output.
        known = set(declared)
        for s in self.steps:
            for root in s.reads():
                if root not in known:
                    raise PipelineInvalid(
                        f"step {s.name!r} reads {root!r}, which is neither an input "
                        f"({sorted(declared)}) nor the output of an earlier step",
                        details={"step": s.name, "field": "input", "missing": root},
                    )
            known.add(s.output_key)
        return declared

    def _check_outputs(self, outputs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
        if outputs is None:
            last = self.steps[-1].output_key
            return {last: last}
        if isinstance(outputs, str):
            raise PipelineInvalid(
                "outputs must be a list of state paths", details={"field": "outputs"}
            )
        pairs = (
            dict(outputs)
            if isinstance(outputs, Mapping)
            else {str(p).split(".")[-1]: str(p) for p in outputs}
        )
        known = set(self.inputs) | {s.output_key for s in self.steps}
        for out_name, path in pairs.items():
            try:
                check_path(path)
            except InvalidArgument as exc:
                raise PipelineInvalid(
                    f"output {out_name!r}: {exc.message}", details={"field": "outputs"}
                ) from None
            if path.split(".")[0] not in known:
                raise PipelineInvalid(
                    f"output {out_name!r} reads {path!r}, which no step writes",
                    details={"field": "outputs", "output": out_name},
                )
        return pairs

    # -- context ---------------------------------------------------------------------

    @property
    def context(self) -> RunContext:
        """Where models, indexes, prompts and tools come from (made on first use)."""
        if self._context is None:
            self._context = RunContext()
        ctx = self._context
        for n, t in self.tools.items():
            ctx.tools.setdefault(n, t)
        return ctx

    @context.setter
    def context(self, ctx: RunContext) -> None:
        self._context = ctx

    def configure(self, **kwargs: Any) -> Pipeline:
        """Use a new ``RunContext(**kwargs)`` (providers, client, cache_dir, home, tracer); returns self."""
        self._context = RunContext(**kwargs)
        return self

    # -- running ---------------------------------------------------------------------

    def _check_call(self, inputs: Any) -> dict[str, Any]:
        if not isinstance(inputs, Mapping):
            raise InvalidArgument(f"pipeline {self.name!r} takes a dict of inputs {self.inputs}")
        missing = [n for n in self.inputs if n not in inputs]
        extra = [k for k in inputs if k not in self.input_types]
        if missing or extra:
            raise InvalidArgument(
                f"pipeline {self.name!r} takes inputs {self.inputs}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else ""),
                details={"missing": missing, "unknown": extra, "expected": self.inputs},
            )
        return dict(inputs)

    def run(self, inputs: Mapping[str, Any], **trace: Any) -> PipelineResult:
        """Run every step; the outputs, the final state and the trace id.

        ``trace``: trace-level fields for a new trace (``user_id``,
        ``session_id``, ``tags``, ``deployment_id``).
        """
        state = self._check_call(inputs)
        ctx = self.context
        attrs = {"opsloop.pipeline.name": self.name}
        if current_span() is None:
            root = start_trace(
                self.name, kind="chain", inputs=state, tracer=ctx.tracer, attributes=attrs, **trace
            )
        else:
            root = span(self.name, "chain", inputs=state, attributes=attrs)
        with root:
            run = Run(
                ctx,
                state,
                pipeline_model=self.model,
                first_input=self.inputs[0] if self.inputs else None,
            )
            for i, step in enumerate(self.steps):
                with span(
                    step.name,
                    step.span_kind,
                    attributes={
                        "opsloop.pipeline.step_type": step.type,
                        "opsloop.pipeline.step_index": i,
                    },
                ) as sp:
                    run.span = sp
                    if sp.inputs is None:
                        sp.set_input({r: state.get(r) for r in step.reads()} or None)
                    out = step.run(run)
                    sp.set_output(out)
                state[step.output_key] = out
                run.last_key = step.output_key
            outputs = {n: get_path(state, p) for n, p in self.outputs.items()}
            root.set_output(outputs)
        return PipelineResult(outputs, state, root.trace_id)

    def invoke(self, inputs: Mapping[str, Any], **trace: Any) -> dict[str, Any]:
        """The declared outputs for one set of inputs."""
        return self.run(inputs, **trace).outputs

    __call__ = invoke

    # -- declaration forms ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (``PipelineInvalid`` when a step holds an unsaveable object)."""
        if self.model is not None and not isinstance(self.model, str):
            raise PipelineInvalid(
                "the pipeline model is an object; saved pipelines name models by spec"
            )
        d: dict[str, Any] = {"opsloop_pipeline": SPEC_VERSION, "name": self.name}
        if self.description:
            d["description"] = self.description
        if self.model is not None:
            d["model"] = self.model
        d["inputs"] = (
            self.inputs
            if all(t == "string" for t in self.input_types.values())
            else dict(self.input_types)
        )
        d["outputs"] = (
            [p for p in self.outputs.values()]
            if all(n == p.split(".")[-1] for n, p in self.outputs.items())
            else dict(self.outputs)
        )
        if self.tools:
            d["tools"] = [t.to_dict() for t in self.tools.values()]
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100))

    @classmethod
    def from_dict(
        cls,
        spec: Any,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        context: RunContext | None = None,
    ) -> Pipeline:
        """A pipeline from its dict form; ``PipelineInvalid`` naming the step and field."""
        if not isinstance(spec, Mapping):
            raise PipelineInvalid(
                "a pipeline spec is a mapping with name, inputs, outputs and steps"
            )
        extra = sorted(set(spec) - set(_TOP_FIELDS))
        if extra:
            raise PipelineInvalid(
                f"unknown top-level field {extra[0]!r} (fields: {', '.join(_TOP_FIELDS)})",
                details={"field": extra[0]},
            )
        ver = spec.get("opsloop_pipeline", SPEC_VERSION)
        if not isinstance(ver, int) or ver > SPEC_VERSION:
            raise PipelineInvalid(
                f"spec format {ver!r} is newer than this opsloop understands ({SPEC_VERSION})",
                details={"field": "opsloop_pipeline"},
            )
        steps_raw = spec.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise PipelineInvalid("'steps' must be a non-empty list", details={"field": "steps"})
        tools_raw = spec.get("tools") or []
        if not isinstance(tools_raw, list):
            raise PipelineInvalid("'tools' must be a list", details={"field": "tools"})
        base = None if base_dir is None else Path(base_dir)
        tools = [
            tool_from_dict(t, base_dir=base, where=f"tools[{i}]") for i, t in enumerate(tools_raw)
        ]
        steps = [step_from_dict(s, i) for i, s in enumerate(steps_raw)]
        names = [s.name for s in steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PipelineInvalid(
                f"two steps are named {dup[0]!r}", details={"step": dup[0], "field": "name"}
            )
        for f, types in (("inputs", (list, dict)), ("outputs", (list, dict))):
            v = spec.get(f)
            if v is not None and not isinstance(v, types):
                raise PipelineInvalid(f"{f!r} must be a list (or a mapping)", details={"field": f})
        model = spec.get("model")
        if model is not None and not isinstance(model, str):
            raise PipelineInvalid(
                "'model' must be a provider spec string", details={"field": "model"}
            )
        return cls(
            steps,
            name=str(spec.get("name", "pipeline")),
            inputs=spec.get("inputs"),
            outputs=spec.get("outputs"),
            tools=tools,
            model=model,
            description=str(spec.get("description", "")),
            context=context,
        )

    @classmethod
    def from_yaml(
        cls, source: str | os.PathLike[str], *, context: RunContext | None = None
    ) -> Pipeline:
        """A pipeline from a YAML file path or YAML text (relative tool paths: from the file's folder)."""
        import yaml

        base: Path | None = None
        text: str
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
        ):
            p = Path(source)
            if not p.is_file():
                raise PipelineInvalid(f"pipeline file {p} does not exist", details={"path": str(p)})
            text, base = p.read_text(encoding="utf-8"), p.resolve().parent
        else:
            text = str(source)
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = (
                f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            )
            problem = getattr(exc, "problem", None) or str(exc)
            raise PipelineInvalid(f"the pipeline YAML is not valid{where}: {problem}") from None
        return cls.from_dict(spec, base_dir=base, context=context)

    # -- registry --------------------------------------------------------------------

    def signature(self) -> Signature:
        """Inputs as typed columns; outputs as string columns where they are text-like."""
        return Signature([ColumnSpec(n, t) for n, t in self.input_types.items()], [])

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """A saved-model folder (flavor ``pipeline``): ``pipeline.yaml`` plus the descriptor."""
        return write_pipeline_folder(path, self, overwrite=overwrite)

    def register(
        self,
        client: Any,
        name: str,
        *,
        alias: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """A new version of registry entry ``name`` (kind ``pipeline``); ``alias`` set on it."""
        from opsloop.registry import Registry  # lazy: loads sqlalchemy and httpx

        reg = Registry(client)
        with tempfile.TemporaryDirectory(prefix="opsloop-pipeline-") as tmp:
            folder = self.save(Path(tmp) / "pipeline")
            mv = reg.register(
                name, folder, flavor="pipeline", kind="pipeline", description=description, tags=tags
            )
        if alias is not None:
            reg.set_alias(name, alias, mv.version)
            mv = reg.get_version(name, mv.version)
        return mv

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={[s.name for s in self.steps]})"


class KnowledgeBaseQA(Tool):
    """Answer a question from a vector index with citations (runs ``rag_qa``)."""

    def __init__(
        self,
        index: str,
        *,
        provider: Any = "local:smollm2",
        k: int = 4,
        name: str = "knowledge_base",
        max_tokens: int = 128,
    ) -> None:
        self.index = index
        self.provider = provider
        self.k = k
        self.name = name
        self.max_tokens = max_tokens
        self.description = "Answer a question from the knowledge base, citing the passages used."
        self.parameters = {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        }
        self._pipeline: Pipeline | None = None
        self._ctx: RunContext | None = None

    def bind(self, ctx: RunContext) -> Tool:
        self._ctx = ctx
        return self

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        question = str(kwargs["question"])
        if self._pipeline is None:
            self._pipeline = Pipeline(
                **rag_parts(self.index, self.provider, self.k, max_tokens=self.max_tokens),
                name="rag_qa",
            )
            if self._ctx is not None:
                self._pipeline.context = self._ctx
        result: dict[str, Any] = self._pipeline.invoke({"question": question})
        return result

    def to_dict(self) -> dict[str, Any]:
        if not isinstance(self.provider, str):
            return super().to_dict()
        return {
            "name": self.name,
            "type": "knowledge_base",
            "index": self.index,
            "provider": self.provider,
            "k": self.k,
            "max_tokens": self.max_tokens,
        }


_TOOL_FIELDS: dict[str, set[str]] = {
    "local_search": {"name", "type", "path", "collection", "k", "passage_chars"},
    "knowledge_base": {"name", "type", "index", "provider", "k", "max_tokens"},
    "python": {"name", "type", "function", "description", "parameters"},
}


def tool_from_dict(d: Any, *, base_dir: Path | None = None, where: str = "tools") -> Tool:
    """A tool from its YAML form (``type``: local_search, knowledge_base, python)."""
    if not isinstance(d, Mapping):
        raise PipelineInvalid(f"{where}: each tool is an object with name and type")
    name = d.get("name")
    typ = d.get("type")
    if not isinstance(name, str) or not name:
        raise PipelineInvalid(f"{where}: a tool needs a 'name'", details={"field": "name"})
    if typ not in _TOOL_FIELDS:
        raise PipelineInvalid(
            f"tool {name!r}: field 'type' must be one of {', '.join(sorted(_TOOL_FIELDS))}, got {typ!r}",
            details={"tool": name, "field": "type"},
        )
    extra = sorted(set(d) - _TOOL_FIELDS[typ])
    if extra:
        raise PipelineInvalid(
            f"tool {name!r}: unknown field(s) {extra} for type {typ!r}",
            details={"tool": name, "field": extra[0]},
        )
    k = d.get("k", 3)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise PipelineInvalid(
            f"tool {name!r}: field 'k' must be an integer in 1..100, got {k!r}",
            details={"tool": name, "field": "k"},
        )
    if typ == "local_search":
        path, coll = d.get("path"), d.get("collection")
        if (path is None) == (coll is None):
            raise PipelineInvalid(
                f"tool {name!r}: give exactly one of 'path' or 'collection'",
                details={"tool": name, "field": "path"},
            )
        if path is not None:
            p = Path(str(path))
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            return LocalCorpusSearch(
                p, name=name, k=k, passage_chars=int(d.get("passage_chars", 800))
            )
        return LocalCorpusSearch(collection=str(coll), name=name, k=k)
    if typ == "knowledge_base":
        index = d.get("index")
        if not isinstance(index, str) or not index:
            raise PipelineInvalid(
                f"tool {name!r}: field 'index' must name a vector index",
                details={"tool": name, "field": "index"},
            )
        return KnowledgeBaseQA(
            index,
            provider=str(d.get("provider", "local:smollm2")),
            k=k,
            name=name,
            max_tokens=int(d.get("max_tokens", 128)),
        )
    fn = d.get("function")
    if not isinstance(fn, str):
        raise PipelineInvalid(
            f"tool {name!r}: field 'function' must be 'package.module:function'",
            details={"tool": name, "field": "function"},
        )
    params = d.get("parameters")
    if params is not None and not isinstance(params, Mapping):
        raise PipelineInvalid(
            f"tool {name!r}: field 'parameters' must be a JSON schema object",
            details={"tool": name, "field": "parameters"},
        )
    return FunctionTool(fn, name=name, description=str(d.get("description", "")), parameters=params)
