"""The tracing SDK: ``@trace``, ``span``, ``start_trace``, ``trace_context``, ``record_llm_call``.

Spans go to the default tracer (the ``Tracing`` of the program's default
context, so ``OPSLOOP_TRACKING_URI``/``OPSLOOP_HOME`` apply), or to the tracer of a
``Tracing(client)``; a child span always goes where its parent goes.

For library code (providers, retrievers, pipelines) one line is enough::

    with tracing.span("retrieve", kind="retriever", inputs={"query": q}) as s:
        docs = search(q)
        s.set_output(docs)

    tracing.record_llm_call(model="gpt-4o", input_messages=msgs, output=text,
                            input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                            params={"temperature": 0.2}, provider="openai", duration_s=elapsed)

The emitting itself is in ``_emit`` (which the ``Tracing`` client uses too);
this module adds the default tracer, resolved as
``default_context().room(Tracing).tracer`` on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from opsloop.core import HasContext, default_context
from opsloop.errors import InvalidArgument
from opsloop.tracing import _active, _emit
from opsloop.tracing._emit import trace_context
from opsloop.tracing._span import F, Span, Tracer

if TYPE_CHECKING:
    from opsloop.tracing._client import Tracing

__all__ = [
    "configure",
    "flush",
    "get_tracer",
    "span",
    "start_trace",
    "trace",
    "trace_context",
]


def __getattr__(name: str) -> Any:
    # ``_default``: the chosen tracer, read by code written before it moved to ``_active``.
    if name == "_default":
        return _active.current()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _tracing_class() -> type[Tracing]:
    # ``Tracing`` brings the store (sqlalchemy) and the HTTP client; emitting spans
    # must not load them until the default tracer is first needed.
    from opsloop.tracing._client import Tracing  # lazy: loads sqlalchemy

    return Tracing


def get_tracer() -> Tracer:
    """The tracer spans without a parent go to (created on first use)."""
    tracer = _active.current()
    if tracer is None:
        with _active.lock:
            tracer = _active.current()
            if tracer is None:
                tracer = default_context().room(_tracing_class()).tracer
                _active.set_current(tracer)
    return tracer


def configure(tracing: Any = None, *, enabled: bool | None = None) -> None:
    """Send new traces to ``tracing`` (a ``Tracing`` or an ``opsloop.Client``); turn export on/off."""
    if tracing is not None:
        cls = _tracing_class()
        if not isinstance(tracing, cls) and isinstance(tracing, HasContext):
            tracing = tracing.context.room(cls)
        if not isinstance(tracing, cls):
            raise InvalidArgument("configure() takes a Tracing or an opsloop.Client")
        _active.set_current(tracing.tracer)
    if enabled is not None:
        get_tracer().enabled = enabled


def flush() -> int:
    """Write the default tracer's finished spans now; ``FlushError`` if it cannot."""
    tracer = _active.current()
    return tracer.flush() if tracer is not None else 0


def span(
    name: str,
    kind: str = "chain",
    *,
    attributes: Mapping[str, Any] | None = None,
    inputs: Any = None,
    tracer: Tracer | None = None,
) -> Span:
    """A span, child of the current one (or the root of a new trace); use it in ``with``."""
    return _emit.span(
        name, kind, attributes=attributes, inputs=inputs, tracer=tracer, default=get_tracer
    )


def start_trace(
    name: str,
    *,
    kind: str = "chain",
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] | None = None,
    experiment_id: str | None = None,
    deployment_id: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    inputs: Any = None,
    tracer: Tracer | None = None,
) -> Span:
    """The root span of a new trace (even inside another one), carrying trace-level fields."""
    return _emit.start_trace(
        name,
        kind=kind,
        user_id=user_id,
        session_id=session_id,
        tags=tags,
        experiment_id=experiment_id,
        deployment_id=deployment_id,
        attributes=attributes,
        inputs=inputs,
        tracer=tracer,
        default=get_tracer,
    )


@overload
def trace(fn: F, /) -> F: ...
@overload
def trace(
    fn: str | None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    tracer: Tracer | None = None,
) -> Callable[[F], F]: ...
def trace(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    attributes: Mapping[str, Any] | None = None,
    tracer: Tracer | None = None,
) -> Any:
    """Trace each call of a function: ``@trace``, ``@trace("name")``, ``@trace(kind="tool")``.

    Works on functions, coroutines, generators and async generators. The span
    records the arguments (bound to parameter names, ``self`` left out), the
    return value (for generators: the yielded items, joined when they are all
    strings), and any exception, which marks the span ERROR and is re-raised.
    """
    return _emit.trace(
        fn,
        name=name,
        kind=kind,
        capture_input=capture_input,
        capture_output=capture_output,
        attributes=attributes,
        tracer=tracer,
        default=get_tracer,
    )
