"""The emitting functions behind ``opsloop.tracing``'s ``span``, ``start_trace``, ``@trace``
and ``record_llm_call``, given where spans without a parent go.

Each takes ``tracer`` (send there; a child of the current span only if that
span is in the same tracer) and ``default`` (called for the tracer a new
trace goes to when no ``tracer`` is given and there is no current span).
``opsloop.tracing`` binds ``default`` to the program's default tracer
(``_sdk.get_tracer``); a ``Tracing`` client passes its own tracer. This module
knows only the tracer type, never the client, so the client can use it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from opsloop.errors import InvalidArgument
from opsloop.tracing._genai import call_times, llm_attributes, llm_messages
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

__all__ = [
    "DefaultTracer",
    "record_llm_call",
    "span",
    "start_trace",
    "trace",
    "trace_attributes",
    "trace_context",
]

DefaultTracer = Callable[[], Tracer]
"""Where a new trace goes when no tracer is given (called only then)."""


def span(
    name: str,
    kind: str = "chain",
    *,
    attributes: Mapping[str, Any] | None = None,
    inputs: Any = None,
    tracer: Tracer | None = None,
    default: DefaultTracer,
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
        tracer or default(),
        name,
        kind=kind,
        trace_id=new_trace_id(),
        parent_span_id=None,
        attributes=attributes,
        inputs=inputs,
    )


def trace_attributes(
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
    default: DefaultTracer,
) -> Span:
    """The root span of a new trace (even inside another one), carrying trace-level fields."""
    attrs = trace_attributes(user_id, session_id, tags, experiment_id, deployment_id)
    attrs.update(attributes or {})
    return Span(
        tracer or default(),
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
    extra = trace_attributes(user_id, session_id, tags)
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
    default: DefaultTracer,
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
            return span(
                span_name,
                kind,
                attributes=attributes,
                inputs=inputs,
                tracer=tracer,
                default=default,
            )

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


# ---------------------------------------------------------------- model calls


def record_llm_call(
    *,
    model: str,
    input_messages: Any = None,
    output: Any = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    params: Mapping[str, Any] | None = None,
    provider: str | None = None,
    operation: str = "chat",
    response_model: str | None = None,
    response_id: str | None = None,
    finish_reasons: Sequence[str] | None = None,
    cost: float | None = None,
    name: str | None = None,
    duration_s: float | None = None,
    start_time: float | None = None,
    end_time: float | None = None,
    error: BaseException | str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tracer: Tracer | None = None,
    default: DefaultTracer,
) -> Span:
    """Record one model call with GenAI attributes; its cost comes from the price table on storage.

    Inside an open ``llm``/``embedding`` span that has not recorded a call yet
    (``@trace(kind="llm")``), the call is recorded on that span. Otherwise a
    finished child span named ``"{operation} {model}"`` is made, timed by
    ``start_time``/``end_time`` (epoch seconds) or ``duration_s`` (ending now).
    ``cost`` (US dollars) overrides the price table.
    """
    attrs = llm_attributes(
        model=model,
        provider=provider,
        operation=operation,
        params=params,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        response_model=response_model,
        response_id=response_id,
        finish_reasons=finish_reasons,
        cost=cost,
    )
    if attributes:
        attrs.update(attributes)
    cur = _current.get()
    if (
        cur is not None
        and cur.kind in ("llm", "embedding")
        and not cur.llm_recorded
        and (tracer is None or tracer is cur.tracer)
    ):
        target, own = cur, False
    else:
        kind = "embedding" if operation in ("embeddings", "embedding") else "llm"
        target, own = (
            span(name or f"{operation} {model}", kind, tracer=tracer, default=default),
            True,
        )
        start_us, end_us = call_times(start_time, end_time, duration_s)
        target.start_us = start_us
    target.llm_recorded = True
    target.attributes.update(attrs)
    if input_messages is not None:
        target.inputs = llm_messages(input_messages, "user")
    if output is not None:
        target.outputs = (
            llm_messages(output, "assistant") if isinstance(output, str) else to_jsonable(output)
        )
    if error is not None:
        if isinstance(error, BaseException):
            target.record_exception(error)
        else:
            target.set_status("ERROR", str(error))
    if own:
        target.end(end_us)
    return target
