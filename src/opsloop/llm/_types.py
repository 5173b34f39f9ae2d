"""What every provider returns, and the argument checks every provider shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from opsloop.errors import InvalidArgument

__all__ = [
    "ChatResponse",
    "EmbeddingResponse",
    "GenArgs",
    "GenOptions",
    "StreamChunk",
    "Usage",
    "check_messages",
    "check_texts",
    "gen_options",
]

MAX_TOKENS = 8192
MAX_STOP = 16
_RESPONSE_FORMATS = ("text", "json_object", "json_schema", "regex", "grammar")


@dataclass(frozen=True)
class Usage:
    """Tokens one call consumed: what went in and what came out."""

    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass
class ChatResponse:
    """One completion: the text, its token usage, why it stopped (``stop``/``length``), and timing.

    ``cost_usd`` comes from the price table (defaults and ``<home>/prices.yaml``);
    None when the model has no price entry.
    """

    text: str
    usage: Usage
    finish_reason: str
    model: str
    latency_s: float
    cost_usd: float | None = None
    response_id: str | None = field(default=None, compare=False)
    #: ``chat_tools`` only: the calls the model made (OpenAI's shape: ``id``, ``type``,
    #: ``function: {name, arguments}`` with the arguments as a JSON string); None for text.
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class StreamChunk:
    """A piece of a streamed answer; the last chunk has ``finish_reason`` and ``usage`` set."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass
class EmbeddingResponse:
    """One vector per input text, in order."""

    vectors: list[list[float]]
    usage: Usage
    model: str
    latency_s: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class GenOptions:
    """Validated generation parameters of one call."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    timeout_s: float | None = None
    # Local models only; None: the model's generation defaults (see docs/llm.md).
    repetition_penalty: float | None = None
    no_repeat_ngram_size: int | None = None

    def trace_params(self) -> dict[str, Any]:
        """The request parameters a span records (GenAI ``gen_ai.request.*``)."""
        p: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        if self.stop:
            p["stop"] = list(self.stop)
        if self.seed is not None:
            p["seed"] = self.seed
        if self.repetition_penalty is not None:
            p["repetition_penalty"] = self.repetition_penalty
        if self.no_repeat_ngram_size is not None:
            p["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        return p


def _number(name: str, v: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidArgument(f"{name} must be a number, not {v!r}", details={"param": name})
    f = float(v)
    if not (lo < f if lo_open else lo <= f) or f > hi:
        bounds = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise InvalidArgument(f"{name} must be in {bounds}, got {v!r}", details={"param": name})
    return f


class GenArgs(TypedDict, total=False):
    """The generation keywords every ``Provider`` call takes (``gen_options`` checks them).

    ``max_tokens`` (256), ``temperature`` (0.0), ``top_p`` (1.0), ``stop``
    (none), ``seed`` (none), ``response_format`` (none: plain text) and
    ``timeout_s`` (the provider's default); for local models,
    ``repetition_penalty`` (1 to 2) and ``no_repeat_ngram_size`` (0 to 64),
    default the model's generation defaults.
    """

    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] | None
    seed: int | None
    response_format: dict[str, Any] | None
    timeout_s: float | None
    repetition_penalty: float | None
    no_repeat_ngram_size: int | None


def gen_options(
    *,
    max_tokens: Any = 256,
    temperature: Any = 0.0,
    top_p: Any = 1.0,
    stop: Any = None,
    seed: Any = None,
    response_format: Any = None,
    timeout_s: Any = None,
    repetition_penalty: Any = None,
    no_repeat_ngram_size: Any = None,
) -> GenOptions:
    """``GenOptions`` from call arguments; ``InvalidArgument`` names the bad one."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidArgument("max_tokens must be an integer", details={"param": "max_tokens"})
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise InvalidArgument(
            f"max_tokens must be in 1..{MAX_TOKENS}, got {max_tokens}",
            details={"param": "max_tokens"},
        )
    temp = _number("temperature", temperature, 0.0, 2.0)
    tp = _number("top_p", top_p, 0.0, 1.0, lo_open=True)
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        stops = tuple(s for s in stop if s)
    else:
        raise InvalidArgument("stop must be a list of strings", details={"param": "stop"})
    if len(stops) > MAX_STOP:
        raise InvalidArgument(f"at most {MAX_STOP} stop strings", details={"param": "stop"})
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidArgument("seed must be an integer", details={"param": "seed"})
    if response_format is not None and (
        not isinstance(response_format, Mapping)
        or response_format.get("type") not in _RESPONSE_FORMATS
    ):
        raise InvalidArgument(
            "response_format must be an object whose type is one of "
            f"{', '.join(_RESPONSE_FORMATS)}",
            details={"param": "response_format"},
        )
    timeout = (
        None if timeout_s is None else _number("timeout_s", timeout_s, 0.0, 86400.0, lo_open=True)
    )
    rp = (
        None
        if repetition_penalty is None
        else _number("repetition_penalty", repetition_penalty, 1.0, 2.0)
    )
    if no_repeat_ngram_size is not None and (
        isinstance(no_repeat_ngram_size, bool)
        or not isinstance(no_repeat_ngram_size, int)
        or not 0 <= no_repeat_ngram_size <= 64
    ):
        raise InvalidArgument(
            "no_repeat_ngram_size must be an integer in 0..64",
            details={"param": "no_repeat_ngram_size"},
        )
    return GenOptions(
        max_tokens,
        temp,
        tp,
        stops,
        seed,
        None if response_format is None else dict(response_format),
        timeout,
        rp,
        no_repeat_ngram_size,
    )


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A conversation as a list of ``{role, content}`` string dicts; ``InvalidArgument`` otherwise."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidArgument(
            "messages must be a non-empty list of {role, content} objects",
            details={"param": "messages"},
        )
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InvalidArgument(
                f"message {i} must be an object with role and content",
                details={"param": f"messages.{i}"},
            )
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str) or not role:
            raise InvalidArgument(
                f"message {i} must have a 'role' string", details={"param": f"messages.{i}.role"}
            )
        if not isinstance(content, str):
            raise InvalidArgument(
                f"message {i} must have a 'content' string",
                details={"param": f"messages.{i}.content"},
            )
        out.append({"role": role, "content": content})
    return out


_TOOL_ROLES = ("system", "user", "assistant", "tool")


def check_tool_messages(messages: Any) -> list[dict[str, Any]]:
    """A conversation that may carry tool calls: ``{role, content}`` turns, assistant turns with
    ``tool_calls`` (content may be empty) and ``tool`` turns with the result as ``content``."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidArgument(
            "messages must be a non-empty list of {role, content} objects",
            details={"param": "messages"},
        )
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, Mapping) else None
        if role not in _TOOL_ROLES:
            raise InvalidArgument(
                f"message {i} must be an object whose role is one of {', '.join(_TOOL_ROLES)}",
                details={"param": f"messages.{i}.role"},
            )
        calls = m.get("tool_calls")
        content = m.get("content")
        if role == "assistant" and calls:
            if not isinstance(calls, Sequence) or not all(
                isinstance(c, Mapping) and isinstance(c.get("function"), Mapping) for c in calls
            ):
                raise InvalidArgument(
                    f"message {i}: tool_calls must be a list of {{id, type, function}} objects",
                    details={"param": f"messages.{i}.tool_calls"},
                )
            out.append({"role": role, "content": str(content or ""),
                        "tool_calls": [dict(c) for c in calls]})  # fmt: skip
            continue
        if not isinstance(content, str):
            raise InvalidArgument(
                f"message {i} must have a 'content' string",
                details={"param": f"messages.{i}.content"},
            )
        turn: dict[str, Any] = {"role": role, "content": content}
        if role == "tool" and isinstance(m.get("tool_call_id"), str):
            turn["tool_call_id"] = m["tool_call_id"]
        out.append(turn)
    return out


def check_texts(texts: Any) -> list[str]:
    """Texts to embed: a list of strings (a bare string is refused: it is almost always a bug)."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidArgument("texts must be a list of strings", details={"param": "texts"})
    if not all(isinstance(t, str) for t in texts):
        raise InvalidArgument("every text to embed must be a string", details={"param": "texts"})
    return list(texts)
