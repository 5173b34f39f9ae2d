"""Spans in user code: the ``Span`` object, the current-span context, and the ``Tracer``.

The current span lives in a ``contextvars.ContextVar``: each thread and each
asyncio task sees its own, so concurrent requests never adopt each other's
spans. (A new thread starts with no current span; ``wrap(fn)`` carries the
caller's context into it.) A finished span is turned into a plain dict,
masked, and handed to its tracer's background exporter; nothing here does I/O
and nothing here imports the database layer.
"""

from __future__ import annotations

import contextvars
import dataclasses
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from opsloop.errors import InvalidArgument
from opsloop.tracing._exporter import SpanExporter, WriteFn
from opsloop.tracing._masking import Masker, MaskFn
from opsloop.tracing._normalize import KINDS, MAX_IO_BYTES, TAGS_KEY, TRUNCATED

if TYPE_CHECKING:
    from opsloop.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "opsloop_current_span", default=None
)
# user.id / session.id / tags set by ``trace_context`` for every span started inside it.
_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})
_trace_attrs: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "opsloop_trace_attrs", default=_NO_ATTRS
)

_mask_fn: MaskFn | None = None
_rand = random.Random()  # ids need uniqueness, not secrecy; getrandbits is what OTel uses
_rand_lock = threading.Lock()


def set_masking(fn: MaskFn | None) -> None:
    """Mask every string in spans with ``fn(text) -> text`` before they leave the process.

    Applies to inputs, outputs, attribute values, events and error messages,
    after the ``trace_mask_patterns`` of the settings; ``None`` removes it.
    """
    global _mask_fn
    if fn is not None and not callable(fn):
        raise InvalidArgument("set_masking needs a function str -> str, or None")
    _mask_fn = fn


def new_trace_id() -> str:
    with _rand_lock:
        return f"{_rand.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    with _rand_lock:
        return f"{_rand.getrandbits(64) or 1:016x}"


def to_jsonable(v: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of ``v``: models and dataclasses as dicts, other objects as repr."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if depth > 10:
        return repr(v)[:1000]
    if isinstance(v, Mapping):
        return {str(k): to_jsonable(x, depth + 1) for k, x in list(v.items())[:1000]}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [to_jsonable(x, depth + 1) for x in list(v)[:1000]]
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    dump = getattr(v, "model_dump", None)
    if callable(dump):  # pydantic models
        try:
            return to_jsonable(dump(mode="json"), depth + 1)
        except Exception:
            return repr(v)[:1000]
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return to_jsonable(dataclasses.asdict(v), depth + 1)
    tolist = getattr(v, "tolist", None)
    if callable(tolist) and getattr(v, "size", 0) <= 10_000:  # numpy arrays and scalars
        try:
            return to_jsonable(tolist(), depth + 1)
        except Exception:
            return repr(v)[:1000]
    return repr(v)[:1000]


def _limit_io(v: Any) -> Any:
    # Cut oversize inputs/outputs here, so a huge prompt is not shipped only to be cut on arrival.
    try:
        text = orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(v)[:1000]
    if len(text) <= MAX_IO_BYTES:
        return v
    return {
        TRUNCATED: True,
        "size": len(text),
        "head": text[: MAX_IO_BYTES - 200].decode(errors="ignore"),
    }


class Tracer:
    """Where finished spans go: a background exporter plus masking and an on/off switch."""

    def __init__(
        self,
        write: WriteFn,
        settings: Settings | None = None,
        *,
        mask_fn: MaskFn | None = None,
        max_batch: int = 5_000,
    ) -> None:
        interval = settings.flush_interval_s if settings is not None else 2.0
        spill = Path(settings.home) / "unflushed" if settings is not None else None
        self.exporter = SpanExporter(
            write, interval_s=interval, max_batch=max_batch, spill_dir=spill
        )
        self._patterns = list(getattr(settings, "trace_mask_patterns", None) or [])
        self._mask_fn = mask_fn
        self._masker_key: tuple[Any, Any] | None = None
        self._masker = Masker(self._patterns)
        self.enabled = True

    def masker(self) -> Masker:
        fn = self._mask_fn or _mask_fn
        key = (fn, self._mask_fn)
        if key != self._masker_key:
            self._masker = Masker(self._patterns, fn)
            self._masker_key = key
        return self._masker

    def export(self, span: Span) -> None:
        if self.enabled:
            self.exporter.add(span.to_dict(self.masker()))

    def flush(self) -> int:
        """Write every finished span now; ``FlushError`` if some could not be written."""
        return self.exporter.flush()

    def close(self) -> None:
        self.exporter.close(flush=True)


class Span:
    """One timed operation. Use as a context manager; ``end()`` if you manage it by hand."""

    __slots__ = (
        "_ended",
        "_p0",
        "_token",
        "attributes",
        "end_us",
        "events",
        "inputs",
        "kind",
        "llm_recorded",
        "name",
        "outputs",
        "parent_span_id",
        "span_id",
        "start_us",
        "status",
        "status_message",
        "trace_id",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        *,
        kind: str = "chain",
        trace_id: str,
        parent_span_id: str | None,
        attributes: Mapping[str, Any] | None = None,
        inputs: Any = None,
        start_us: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgument("a span needs a non-empty name")
        if kind not in KINDS:
            raise InvalidArgument(
                f"span kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}"
            )
        self.tracer = tracer
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = new_span_id()
        self.parent_span_id = parent_span_id
        self.start_us = start_us if start_us is not None else time.time_ns() // 1000
        self._p0 = time.perf_counter_ns()
        self.end_us: int | None = None
        self.status = "UNSET"
        self.status_message: str | None = None
        self.attributes: dict[str, Any] = dict(_trace_attrs.get())
        if attributes:
            self.attributes.update(attributes)
        self.inputs: Any = inputs
        self.outputs: Any = None
        self.events: list[dict[str, Any]] = []
        self.llm_recorded = False
        self._ended = False
        self._token: contextvars.Token[Span | None] | None = None

    # -- recording ----------------------------------------------------------------

    def set_attribute(self, key: str, value: Any) -> Span:
        if not isinstance(key, str) or not key:
            raise InvalidArgument("attribute keys are non-empty strings")
        self.attributes[key] = value
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> Span:
        for k, v in attributes.items():
            self.set_attribute(k, v)
        return self

    def set_input(self, value: Any) -> Span:
        self.inputs = value
        return self

    def set_output(self, value: Any) -> Span:
        self.outputs = value
        return self

    def set_status(self, status: str, message: str | None = None) -> Span:
        s = status.upper()
        if s not in ("UNSET", "OK", "ERROR"):
            raise InvalidArgument("span status is UNSET, OK or ERROR")
        self.status = s
        self.status_message = message
        return self

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span:
        self.events.append(
            {"name": name, "time_us": time.time_ns() // 1000, "attributes": dict(attributes or {})}
        )
        return self

    def record_exception(self, exc: BaseException) -> Span:
        """Mark the span failed and attach the exception as an OTel ``exception`` event."""
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.add_event(
            "exception",
            {
                "exception.type": type(exc).__qualname__,
                "exception.message": str(exc),
                "exception.stacktrace": tb[-8000:],
            },
        )
        self.status = "ERROR"
        self.status_message = f"{type(exc).__qualname__}: {exc}"
        return self

    def end(self, end_us: int | None = None) -> None:
        """Finish the span and queue it for export (a second call does nothing)."""
        if self._ended:
            return
        self._ended = True
        self.end_us = (
            end_us
            if end_us is not None
            else self.start_us + (time.perf_counter_ns() - self._p0) // 1000
        )
        if self.status == "UNSET":
            self.status = "OK"
        self.tracer.export(self)

    # -- context manager ------------------------------------------------------------

    def __enter__(self) -> Span:
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.record_exception(exc)
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context (e.g. a generator moved threads)
                _current.set(None)
            self._token = None
        self.end()

    # -- export ----------------------------------------------------------------------

    def to_dict(self, masker: Masker) -> dict[str, Any]:
        """The span in the batch-ingest form, masked."""
        d: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "start_us": self.start_us,
            "end_us": self.end_us if self.end_us is not None else self.start_us,
            "status": self.status,
            "status_message": self.status_message,
            "attributes": to_jsonable(self.attributes),
            "inputs": _limit_io(to_jsonable(self.inputs)),
            "outputs": _limit_io(to_jsonable(self.outputs)),
            "events": to_jsonable(self.events) if self.events else [],
        }
        if masker:
            for k in ("attributes", "inputs", "outputs", "events"):
                d[k] = masker.value(d[k])
            if d["status_message"]:
                d["status_message"] = masker.text(d["status_message"])
        return d

    def __repr__(self) -> str:
        return f"Span({self.name!r}, kind={self.kind!r}, trace_id={self.trace_id!r}, span_id={self.span_id!r})"


def current_span() -> Span | None:
    """The span open in this thread or task, if any."""
    return _current.get()


def wrap(fn: F) -> F:
    """``fn`` bound to the caller's context, so spans it opens in another thread nest here."""
    ctx = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> Any:
        return ctx.copy().run(fn, *args, **kwargs)

    return run  # type: ignore[return-value]


TRACE_TAGS_KEY = TAGS_KEY
