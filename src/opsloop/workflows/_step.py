"""Declaring steps and workflows in Python: ``@step`` and ``@workflow``.

Calling a step inside a ``@workflow`` function does not run it: it records a
node of the graph and returns an ``Output`` standing for its result, which
later steps take as an input. Outside a workflow a step is the plain function.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from opsloop.workflows._errors import WorkflowDefinitionError

__all__ = ["Graph", "Node", "Output", "Step", "Workflow", "step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")

_BUILDING: contextvars.ContextVar[Graph | None] = contextvars.ContextVar(
    "opsloop_workflow_graph", default=None
)


@dataclass(frozen=True)
class Output:
    """A step's result inside a workflow definition (resolved when the workflow runs)."""

    node: str


@dataclass
class Node:
    """One call of a step in a workflow: its name, the step, its arguments (values or ``Output``)."""

    name: str
    step: Step[..., Any]
    args: dict[str, Any]

    @property
    def upstream(self) -> list[str]:
        return sorted({v.node for v in _outputs_in(self.args)})


def _outputs_in(v: Any) -> list[Output]:
    if isinstance(v, Output):
        return [v]
    if isinstance(v, (list, tuple)):
        return [o for x in v for o in _outputs_in(x)]
    if isinstance(v, dict):
        return [o for x in v.values() for o in _outputs_in(x)]
    return []


@dataclass
class Graph:
    """The steps of one workflow run in call order (which is a topological order)."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    result: Any = None

    def add(self, s: Step[..., Any], args: dict[str, Any]) -> Output:
        name, n = s.name, 2
        while name in self.nodes:
            name, n = f"{s.name}-{n}", n + 1
        for o in _outputs_in(args):
            if o.node not in self.nodes:
                raise WorkflowDefinitionError(
                    f"step {name!r} takes an output of unknown {o.node!r}"
                )
        self.nodes[name] = Node(name, s, args)
        return Output(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": [
                {"name": n.name, "step": n.step.ref, "upstream": n.upstream}
                for n in self.nodes.values()
            ],
        }


def _load_step(ref: str) -> Step[..., Any]:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, Step):
        return obj
    if callable(obj):  # a plain function made a step (YAML workflows)
        return Step(obj)
    raise WorkflowDefinitionError(f"{ref} is not a step")


class Step(Generic[P, R]):
    """A function declared as a workflow step, with its retry, timeout and cache options.

    ``external`` names the parameters that read data from outside (a URL, a
    table): ``{"url": 3600}`` lets a cached result be reused for at most an
    hour. ``cache=False`` always runs the step. ``uses`` lists more functions
    or modules whose code belongs in the cache key (reached in ways the code
    walk cannot see, such as ``getattr`` by name).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float | None = None,
        cache: bool = True,
        external: Mapping[str, float] | None = None,
        uses: tuple[Any, ...] = (),
    ) -> None:
        if retries < 0 or backoff < 0 or (timeout is not None and timeout <= 0):
            raise WorkflowDefinitionError("retries and backoff must be >= 0, timeout > 0")
        self.fn = fn
        self.__opsloop_step_fn__ = fn
        self.name = name or fn.__name__
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.cache = cache
        self.signature = inspect.signature(fn)
        self.external = dict(external or {})
        for p in self.external:
            if p not in self.signature.parameters:
                raise WorkflowDefinitionError(f"external {p!r} is not a parameter of {self.name}")
        self.uses = uses
        self.ref = f"{fn.__module__}:{fn.__qualname__}"
        functools.update_wrapper(self, fn)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_load_step, (self.ref,))

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as e:
            raise WorkflowDefinitionError(f"step {self.name}: {e}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        graph = _BUILDING.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add(self, self.bind(*args, **kwargs))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Step({self.ref})"


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff: float = 0.5,
    backoff_max: float = 30.0,
    timeout: float | None = None,
    cache: bool = True,
    external: Mapping[str, float] | None = None,
    uses: tuple[Any, ...] = (),
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(fn: Any = None, /, **options: Any) -> Any:
    """Declare a workflow step: ``@step`` or ``@step(retries=2, timeout=60, external={"url": 3600})``."""
    if fn is not None:
        return Step(fn)
    return lambda f: Step(f, **options)


class Workflow:
    """A function of parameters that calls steps; ``Workflows(client).run(wf, params)`` runs it."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.ref = f"{fn.__module__}:{fn.__qualname__}"
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def build(self, params: Mapping[str, Any] | None = None) -> Graph:
        """The graph for these parameters (the function runs once, calling no step)."""
        try:
            bound = self.signature.bind(**dict(params or {}))
        except TypeError as e:
            raise WorkflowDefinitionError(f"workflow {self.name}: {e}") from None
        bound.apply_defaults()
        graph = Graph(self.name)
        token = _BUILDING.set(graph)
        try:
            graph.result = self.fn(**bound.arguments)
        finally:
            _BUILDING.reset(token)
        if not graph.nodes:
            raise WorkflowDefinitionError(f"workflow {self.name} calls no step")
        return graph

    def params_of(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        bound = self.signature.bind(**dict(params or {}))
        bound.apply_defaults()
        return dict(bound.arguments)

    def __repr__(self) -> str:
        return f"Workflow({self.ref})"


def workflow(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Declare a workflow: a function whose body calls steps, wiring outputs to inputs."""
    if fn is not None:
        return Workflow(fn, name=name)
    return lambda f: Workflow(f, name=name)
