"""What running steps need besides the state: models, embedders, indexes, prompts, tools, tracer.

A ``RunContext`` is shared by every invocation of a pipeline (so a model is
loaded once), and is safe to share between threads: each cache fills under a
lock. Per-invocation data lives in a ``Run``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument, NotFound, PipelineInvalid
from opsloop.pipelines._parsing import validate
from opsloop.prompts import Prompts
from opsloop.retrieval import Embedder, Indexes, VectorIndex

if TYPE_CHECKING:
    from opsloop.tracing import Span, Tracer
    from opsloop.tracking import Tracking

__all__ = ["ModelCall", "Run", "RunContext", "Tool"]

PROMPT_CACHE_S = 30.0  # a moved prompt label reaches a long-running pipeline within this


class Tool:
    """Base class of pipeline tools; subclasses set the three fields and implement ``__call__``."""

    name: str = "tool"
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}

    def __call__(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this tool; tools that cannot be saved raise ``PipelineInvalid``."""
        raise PipelineInvalid(
            f"tool {self.name!r} ({type(self).__name__}) cannot be written to a pipeline spec"
        )

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` checked against ``parameters``; ``InvalidArgument`` naming the problem."""
        if not isinstance(args, Mapping):
            raise InvalidArgument(f"tool {self.name!r} takes an object of arguments")
        problems = validate(dict(args), self.parameters)
        if problems:
            raise InvalidArgument(
                f"tool {self.name!r}: bad arguments: {'; '.join(problems)}",
                details={"tool": self.name, "errors": problems},
            )
        return dict(args)

    def bind(self, ctx: RunContext) -> Tool:
        """The tool ready for one pipeline's context (tools that need models or indexes use it)."""
        return self


class RunContext:
    """Models by spec, the embedder, vector indexes, registry prompts and tools for pipelines.

    ``providers``: ``{spec: object with .chat()}`` used instead of resolving a
    spec with ``opsloop.llm.get_provider`` (a model loaded already, a test
    upstream). ``client``: the ``opsloop.Client`` (or ``Context``) for registry
    prompts, ``models:/`` providers and document collections (default: a
    context of its own, made on first use and closed by ``close()``). ``home``: where vector
    indexes live (default: the client's home; for a remote client without ``home``, its
    server's indexes, searched over REST). ``tracer``: where spans go (default: the ``opsloop.tracing``
    default tracer).
    """

    def __init__(
        self,
        *,
        providers: Mapping[str, Any] | None = None,
        client: Tracking | Context | HasContext | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        device: str | None = None,
        tracer: Tracer | None = None,
        tools: Mapping[str, Tool] | None = None,
    ) -> None:
        self._models: dict[str, Any] = dict(providers or {})
        self._client = client
        self._owned: Context | None = None
        self._prompt_room: Prompts | None = None
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._home = None if home is None else Path(home)
        self.device = device
        self.tracer = tracer
        self.tools: dict[str, Tool] = dict(tools or {})
        self._embedders: dict[str, Any] = {}
        self._indexes: dict[str, Any] = {}
        self._prompts: dict[str, tuple[float, Any]] = {}
        self._lock = threading.RLock()

    # -- shared objects --------------------------------------------------------------

    @property
    def context(self) -> Context:
        """The context of the client given, or one made (and owned) on first use."""
        if self._client is not None:
            return context_of(self._client)
        with self._lock:
            if self._owned is None:
                self._owned = Context()
            return self._owned

    @property
    def client(self) -> Tracking:
        """The run-logging client of ``context`` (the ``opsloop.Client`` given, if one was)."""
        from opsloop.tracking import Tracking  # lazy: loads sqlalchemy and httpx

        return self.context.room(Tracking)

    @property
    def home(self) -> Path:
        if self._home is not None:
            return self._home
        return Path(self.context.settings.home)

    def model(self, spec: Any) -> Any:
        """A chat model for ``spec`` (a provider spec, or an object with ``.chat``), loaded once."""
        if spec is not None and not isinstance(spec, str):
            if not callable(getattr(spec, "chat", None)):
                raise InvalidArgument(f"{type(spec).__name__} is not a chat model (no .chat())")
            return spec
        key = spec or ""
        with self._lock:
            m = self._models.get(key)
            if m is None:
                from opsloop.llm import get_provider  # lazy: loads the registry (sqlalchemy)

                kw: dict[str, Any] = {"cache_dir": self.cache_dir, "device": self.device}
                if self._client is not None:
                    kw["client"] = context_of(self._client)
                m = get_provider(spec, **kw) if spec else get_provider(**kw)
                self._models[key] = m
            return m

    def embedder(self, spec: str | None) -> Any:
        """The query embedder (``None``: the bundled MiniLM), loaded once."""
        key = spec or ""
        with self._lock:
            e = self._embedders.get(key)
            if e is None:
                e = Embedder(spec or "local:minilm", cache_dir=self.cache_dir, device=self.device)
                self._embedders[key] = e
            return e

    def index(self, name: str) -> Any:
        with self._lock:
            idx = self._indexes.get(name)
            if idx is None and self._home is None and self.context.is_remote:
                # A remote client: the index lives on its server, searched over REST.
                idx = self.context.room(Indexes).open(name, create=False)
                self._indexes[name] = idx
            if idx is None:
                if name not in VectorIndex.list(home=self.home):
                    raise NotFound(
                        f"vector index {name!r} does not exist under {self.home}",
                        details={"index": name},
                    )
                idx = VectorIndex.open(name, home=self.home)
                self._indexes[name] = idx
            return idx

    def prompt(self, uri: str) -> Any:
        """A registry prompt version (re-read after ``PROMPT_CACHE_S``, so moved labels apply)."""
        now = time.monotonic()
        with self._lock:
            hit = self._prompts.get(uri)
            if hit is not None and now - hit[0] < PROMPT_CACHE_S:
                return hit[1]
        pv = self._prompt_client().get(uri)
        with self._lock:
            self._prompts[uri] = (now, pv)
        return pv

    def _prompt_client(self) -> Prompts:
        with self._lock:
            if self._prompt_room is None:
                self._prompt_room = self.context.room(Prompts)
            return self._prompt_room

    def tool(self, name: str) -> Tool:
        t = self.tools.get(name)
        if t is None:
            raise InvalidArgument(
                f"no tool named {name!r}; this pipeline has {sorted(self.tools)}",
                details={"tool": name},
            )
        return t.bind(self)

    def close(self) -> None:
        """Close what this context made itself (a context of its own)."""
        with self._lock:
            owned, self._owned = self._owned, None
            self._prompt_room = None
        if owned is not None:
            owned.close()


@dataclass
class ModelCall:
    """One model call of a run: what a parse step needs to ask the same model again."""

    model: Any
    messages: list[dict[str, str]]
    params: dict[str, Any]


@dataclass
class Run:
    """One invocation: its state, the step running, the model calls made so far."""

    ctx: RunContext
    state: dict[str, Any]
    pipeline_model: Any = None
    first_input: str | None = None
    last_key: str | None = None
    calls: dict[str, ModelCall] = field(default_factory=dict)
    span: Span | None = None
    on_event: Callable[[str, dict[str, Any]], None] | None = None
