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
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from opsloop.core import HasContext, default_context
from opsloop.errors import InvalidArgument
from opsloop.tracing._normalize import TAGS_KEY
from opsloop.tracing._span import (
    F,
    Span,
    Tracer,
    _current,
    _trace_attrs,
    new_trace_id,
    to_jsonable,
)

_default: Tracer | None = None
_default_lock = threading.Lock()


def get_tracer() -> Tracer:
    """The tracer spans without a parent go to (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from opsloop.tracing._client import Tracing  # cycle: Tracing emits via this module

                _default = default_context().room(Tracing).tracer
    return _default


def configure(tracing: Any = None, *, enabled: bool | None = None) -> None:
    """Send new traces to ``tracing`` (a ``Tracing`` or an ``opsloop.Client``); turn export on/off."""
    global _default
    if tracing is not None:
        from opsloop.tracing._client import Tracing  # cycle: Tracing emits via this module

        if not isinstance(tracing, Tracing) and isinstance(tracing, HasContext):
            tracing = tracing.context.room(Tracing)
        if not isinstance(tracing, Tracing):
            raise InvalidArgument("configure() takes a Tracing or an opsloop.Client")
        with _default_lock:
            _default = tracing.tracer
    if enabled is not None:
        get_tracer().enabled = enabled


def flush() -> int:
    """Write the default tracer's finished spans now; ``FlushError`` if it cannot."""
    return _default.flush() if _default is not None else 0


def span(
    name: str,
    kind: str = "chain",
    *,
    attributes: Mapping[str, Any] | None = None,
    inputs: Any = None,
    tracer: Tracer | None = None,
) -> Span:
    """A span, child of the current one (or the root of a new trace); use it in ``with``."""
    parent = _current.get()
    if parent is not None and (tracer is None or tracer is parent.tracer):
        return Span(
            parent.tracer,
            name,
            kind=kind,
            trace_id=parent.trace_id,
            parent_span_id=parent.span_id,
            attributes=attributes,
            inputs=inputs,
        )
    return Span(
        tracer or get_tracer(),
        name,
        kind=kind,
        trace_id=new_trace_id(),
        parent_span_id=None,
        attributes=attributes,
        inputs=inputs,
    )


def _trace_attributes(
    user_id: str | None,
    session_id: str | None,
    tags: Sequence[str] | None,
    experiment_id: str | None = None,
    deployment_id: str | None = None,
) -> dict[str, Any]:
    a: dict[str, Any] = {}
    if user_id is not None:
        a["user.id"] = str(user_id)
    if session_id is not None:
        a["session.id"] = str(session_id)
    if tags is not None:
        if isinstance(tags, str):
            raise InvalidArgument("tags is a list of strings")
        a[TAGS_KEY] = [str(t) for t in tags]
    if experiment_id is not None:
        a["opsloop.experiment_id"] = str(experiment_id)
    if deployment_id is not None:
        a["opsloop.deployment_id"] = str(deployment_id)
    return a


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
    attrs = _trace_attributes(user_id, session_id, tags, experiment_id, deployment_id)
    attrs.update(attributes or {})
    return Span(
        tracer or get_tracer(),
        name,
        kind=kind,
        trace_id=new_trace_id(),
        parent_span_id=None,
        attributes=attrs,
        inputs=inputs,
    )


@contextlib.contextmanager
def trace_context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] | None = None,
    **attributes: Any,
) -> Iterator[None]:
    """Give every span started inside (and the open one) these user/session ids and attributes."""
    extra = _trace_attributes(user_id, session_id, tags)
    extra.update(attributes)
    cur = _current.get()
    if cur is not None:
        cur.attributes.update(extra)
    token = _trace_attrs.set({**_trace_attrs.get(), **extra})
    try:
        yield
    finally:
        _trace_attrs.reset(token)


# ---------------------------------------------------------------- the decorator


def _bind_inputs(
    sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if sig is None:
        return to_jsonable({"args": args, "kwargs": kwargs})
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return to_jsonable({"args": args, "kwargs": kwargs})
    data = dict(bound.arguments)
    first = next(iter(sig.parameters), None)
    if first in ("self", "cls"):
        data.pop(first, None)
    for p in sig.parameters.values():  # flatten **kwargs into the inputs
        if p.kind is inspect.Parameter.VAR_KEYWORD and p.name in data:
            data.update(data.pop(p.name))
    return to_jsonable(data)


def _collect_output(items: list[Any]) -> Any:
    if items and all(isinstance(i, str) for i in items):
        return "".join(items)  # a streamed text answer reads best as the text
    return items


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
    if isinstance(fn, str):
        name, fn = fn, None
    if kind not in ("llm", "chain", "retriever", "tool", "embedding", "agent", "other"):
        raise InvalidArgument(f"unknown span kind {kind!r}")

    def decorate(f: F) -> F:
        qual = str(getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or "call")
        span_name = name or qual.rsplit("<locals>.", 1)[-1]  # "Class.method", "func"
        try:
            sig: inspect.Signature | None = inspect.signature(f)
        except (TypeError, ValueError):
            sig = None

        def open_span(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
            inputs = _bind_inputs(sig, args, kwargs) if capture_input else None
            return span(span_name, kind, attributes=attributes, inputs=inputs, tracer=tracer)

        if inspect.isasyncgenfunction(f):

            @functools.wraps(f)
            def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                sp = open_span(args, kwargs)  # parent = the span current at the call

                async def run() -> AsyncIterator[Any]:
                    items: list[Any] = []
                    agen = f(*args, **kwargs)
                    try:
                        while True:
                            token = _current.set(sp)
                            try:
                                item = await agen.__anext__()
                            except StopAsyncIteration:
                                break
                            finally:
                                _current.reset(token)
                            if capture_output and len(items) < 10_000:
                                items.append(to_jsonable(item))
                            yield item
                    except BaseException as exc:
                        if not isinstance(exc, GeneratorExit):
                            sp.record_exception(exc)
                        await agen.aclose()
                        raise
                    finally:
                        if capture_output:
                            sp.outputs = _collect_output(items)
                        sp.end()

                return run()

            return agen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with open_span(args, kwargs) as sp:
                    result = await f(*args, **kwargs)
                    if capture_output:
                        sp.outputs = to_jsonable(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(f):

            @functools.wraps(f)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
                sp = open_span(args, kwargs)

                def run() -> Iterator[Any]:
                    items: list[Any] = []
                    gen = f(*args, **kwargs)
                    sent: Any = None
                    result: Any = None  # a generator's return value, passed on
                    try:
                        while True:
                            # Current only while the generator body runs, never while
                            # the consumer runs between items.
                            token = _current.set(sp)
                            try:
                                item = gen.send(sent)
                            except StopIteration as stop:
                                result = stop.value
                                break
                            finally:
                                _current.reset(token)
                            if capture_output and len(items) < 10_000:
                                items.append(to_jsonable(item))
                            sent = yield item
                    except BaseException as exc:
                        if not isinstance(exc, GeneratorExit):
                            sp.record_exception(exc)
                        gen.close()
                        raise
                    finally:
                        if capture_output:
                            sp.outputs = _collect_output(items)
                        sp.end()
                    return result  # type: ignore[no-any-return]

                return run()

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as sp:
                result = f(*args, **kwargs)
                if capture_output:
                    sp.outputs = to_jsonable(result)
                return result

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        if not callable(fn):
            raise InvalidArgument("@trace decorates a function")
        return decorate(fn)
    return decorate
