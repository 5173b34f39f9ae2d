"""Structured outputs by constrained decoding: a response format becomes a grammar, applied per token.

``response_format`` (OpenAI's shape) is compiled by llguidance into a grammar;
at every decoding step a ``Constraint`` masks the tokens the grammar does not
allow, so the answer is valid by construction (a ``json_schema`` answer parses
and validates, unless ``max_tokens`` cuts it short: ``finish_reason`` then
says ``length``). Formats:

- ``{"type": "text"}`` (or none): free text.
- ``{"type": "json_object"}``: any JSON object.
- ``{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": true}}``.
- ``{"type": "regex", "regex": "..."}`` and ``{"type": "grammar", "grammar": "<lark>"}``
  (opsloop extensions, as in vLLM's guided decoding).

A schema keyword the engine cannot enforce (``not``, ``if``/``then``,
``uniqueItems``, ``dependentRequired``...) is refused with an
``InvalidArgument`` naming it, never silently ignored.

Why llguidance (measured on SmolLM2's 49k-token vocabulary, see
``benchmarks/structured_outputs.py`` and docs/llm.md): it compiles a schema in
about 2 ms and computes a mask in about 40 microseconds a token (a forward
pass of the smallest model takes ~20 ms on CPU), it names every keyword it
cannot enforce, and it has no Python dependencies. xgrammar masks faster
(~3 us) but accepts ``not``/``uniqueItems``/``dependentRequired`` without
enforcing them and pulls triton; outlines-core takes 50-270 ms to compile a
schema; lm-format-enforcer does not import with transformers 5 and takes
0.4-2.8 ms a token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = [
    "Constraint",
    "apply_masks",
    "check_response_format",
    "compile_response_format",
    "example_schemas",
    "fill_masks",
    "grammar_tokenizer",
    "response_grammar",
    "token_bytes",
]

FORMATS = ("text", "json_object", "json_schema", "regex", "grammar")
# Compact, predictable JSON: one space after ',' and ':', no free whitespace (a small
# model given free whitespace may emit newlines until its budget runs out).
JSON_OPTIONS: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

_tokenizers: dict[int, tuple[Any, Any]] = {}
_tok_guard = threading.Lock()
_executor: Any = None


def _bad(msg: str, **details: Any) -> InvalidArgument:
    return InvalidArgument(msg, details={"param": "response_format", **details})


def response_grammar(response_format: Mapping[str, Any] | None) -> str | None:
    """The llguidance grammar for an OpenAI ``response_format``; None for free text."""
    import llguidance

    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise _bad("response_format must be an object with a 'type'")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return str(llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}, JSON_OPTIONS))
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping):
            raise _bad("response_format json_schema needs a 'json_schema' object with a 'schema'")
        schema = spec.get("schema", {"type": "object"})
        if not isinstance(schema, Mapping | bool):
            raise _bad("response_format json_schema.schema must be a JSON schema object")
        try:
            return str(
                llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), JSON_OPTIONS)
            )
        except (ValueError, TypeError) as exc:
            raise _bad(f"response_format json_schema.schema is not valid: {exc}") from exc
    if kind == "regex":
        rx = response_format.get("regex")
        if not isinstance(rx, str) or not rx:
            raise _bad("response_format regex needs a non-empty 'regex' string")
        return str(llguidance.LLMatcher.grammar_from_regex(rx))
    if kind == "grammar":
        g = response_format.get("grammar")
        if not isinstance(g, str) or not g.strip():
            raise _bad("response_format grammar needs a non-empty 'grammar' string (Lark)")
        return str(llguidance.LLMatcher.grammar_from_lark(g))
    raise _bad(f"response_format type must be one of {', '.join(FORMATS)}, not {kind!r}")


def check_response_format(response_format: Any) -> None:
    """Raise ``InvalidArgument`` for a format that is malformed (no tokenizer needed)."""
    if response_format is None:
        return
    if not isinstance(response_format, Mapping) or response_format.get("type") not in FORMATS:
        raise _bad(f"response_format must be an object whose type is one of {', '.join(FORMATS)}")


def grammar_tokenizer(hf_tokenizer: Any) -> Any:
    """llguidance's view of a Hugging Face tokenizer (built once per tokenizer, ~0.5 s)."""
    import llguidance.hf

    key = id(hf_tokenizer)
    with _tok_guard:
        hit = _tokenizers.get(key)
        if hit is not None and hit[0] is hf_tokenizer:
            return hit[1]
        lt = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=len(hf_tokenizer))
        _tokenizers[key] = (hf_tokenizer, lt)  # the tokenizer kept alive with its id
        return lt


def compile_response_format(
    response_format: Mapping[str, Any] | None, hf_tokenizer: Any
) -> str | None:
    """The grammar for ``response_format``, checked against the tokenizer; None for free text.

    ``InvalidArgument`` (param ``response_format``) names a construct the
    engine cannot enforce.
    """
    import llguidance

    grammar = response_grammar(response_format)
    if grammar is None:
        return None
    err = llguidance.LLMatcher.validate_grammar(grammar, grammar_tokenizer(hf_tokenizer))
    if err:
        raise _bad(f"response_format cannot be enforced: {err}", construct=err)
    return grammar


def example_schemas() -> list[dict[str, Any]]:
    """The shipped set of structured-output tasks: ``{name, prompt, schema}`` each (nested
    objects, arrays, enums, bounded numbers, patterns, optional fields, ``$ref``...)."""
    raw = files("opsloop.llm").joinpath("data/structured_schemas.json").read_text("utf-8")
    return list(json.loads(raw))


def token_bytes(hf_tokenizer: Any, token: int) -> bytes:
    """The exact bytes of one token (a multi-byte character may span tokens)."""
    return bytes(grammar_tokenizer(hf_tokenizer).decode_bytes([token]))


class Constraint:
    """One sequence's grammar state: the allowed next tokens, advanced token by token."""

    def __init__(self, grammar: str, hf_tokenizer: Any) -> None:
        import llguidance

        # Ten times llguidance's default lexer fuel per step: a whole walk of a 50k-token
        # vocabulary (an unbounded lexeme such as a key) fits, so no step gives up.
        limits = llguidance.LLParserLimits(step_lexer_fuel=2_000_000, verbose_errors=False)
        self._m = llguidance.LLMatcher(
            grammar_tokenizer(hf_tokenizer), grammar, log_level=0, limits=limits
        )
        if self._m.is_error():
            raise _bad(f"response_format cannot be enforced: {self._m.get_error()}")
        self._vocab = int(grammar_tokenizer(hf_tokenizer).vocab_size)

    @property
    def failed(self) -> str | None:
        """The grammar's error, when it failed."""
        return str(self._m.get_error()) if self._m.is_error() else None

    @property
    def stopped(self) -> bool:
        """The grammar allows nothing more: the answer is complete."""
        return bool(self._m.is_stopped())

    def allowed(self, n: int, device: Any = None) -> Any:
        """A boolean tensor of ``n`` entries: the tokens the grammar allows next."""
        row = fill_masks([self], n)[0]
        if self.failed:
            raise InvalidArgument(f"constrained decoding failed: {self.failed}")
        return row.to(device)

    def mask(self, logits: Any, unpenalized: Any = None) -> Any:
        """``logits`` (1-D, the model's vocabulary) with every forbidden token at -inf.

        ``unpenalized``: the same row before anti-repetition settings; used when
        those settings ban every token the grammar allows (JSON repeats itself:
        ``", "name": "`` comes back in every object), since the grammar wins.
        """
        import torch

        ok = self.allowed(logits.shape[-1], logits.device)
        row = logits.masked_fill(~ok, float("-inf"))
        if unpenalized is not None and not bool(torch.isfinite(row).any()):
            row = unpenalized.masked_fill(~ok, float("-inf"))
        return row

    def forced(self) -> list[int]:
        """The tokens the grammar allows next whatever the model says (a key, punctuation)."""
        return [int(t) for t in self._m.compute_ff_tokens()]

    def advance(self, token: int) -> None:
        """Take the chosen token (it was allowed by ``mask``)."""
        if not self._m.consume_token(int(token)):
            raise InvalidArgument(f"constrained decoding failed: {self._m.get_error()}")


def _grammar_executor() -> Any:
    """llguidance's thread pool for computing many masks at once (made once per process)."""
    import llguidance

    global _executor
    with _tok_guard:
        if _executor is None:
            _executor = llguidance.LLExecutor()
        return _executor


def fill_masks(constraints: list[Constraint], n: int) -> Any:
    """The allowed next tokens of every constraint, as a boolean CPU tensor ``[len, n]``.

    The masks are computed together by llguidance's executor (its own threads,
    the GIL released), so a caller may run this beside a forward pass. Entries
    past the tokenizer's vocabulary (a model's padded embedding) are False.
    A constraint whose grammar failed has its ``failed`` set (its row then allows nothing).
    """
    import numpy as np
    import torch

    if not constraints:
        return torch.zeros((0, n), dtype=torch.bool)
    # One bit per token, 32 to a word (llguidance.torch's layout; not imported, since it
    # compiles a kernel with torch.compile at import).
    words = (max(c._vocab for c in constraints) + 31) // 32
    bitmask = np.zeros((len(constraints), words), dtype=np.int32)
    _grammar_executor().unsafe_compute_mask_ptr(
        [(c._m, i) for i, c in enumerate(constraints)],
        bitmask.ctypes.data,
        words * 4,
        len(constraints),
    )
    bits = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")
    out = np.zeros((len(constraints), n), dtype=np.uint8)
    k = min(n, bits.shape[1])
    out[:, :k] = bits[:, :k]
    return torch.from_numpy(out).view(torch.bool)


def apply_masks(logits: Any, allowed: Any, fallback: Any = None) -> Any:
    """``logits`` (``[rows, vocab]``) with every token ``allowed`` (``[rows, vocab]``) forbids at
    -inf, in place. A row left with no allowed token (anti-repetition settings banned all the
    grammar allows) takes ``fallback``'s row (the same logits before those settings) instead:
    the grammar wins."""
    import torch

    vocab = logits.shape[-1]
    if allowed.shape[-1] != vocab:  # the model's vocabulary is not the tokenizer's
        wide = torch.zeros((allowed.shape[0], vocab), dtype=torch.bool)
        k = min(vocab, allowed.shape[-1])
        wide[:, :k] = allowed[:, :k]
        allowed = wide
    ok = allowed.to(logits.device, non_blocking=True)
    logits.masked_fill_(~ok, float("-inf"))
    if fallback is not None:
        dead = (~torch.isfinite(logits).any(dim=1)).nonzero().flatten().tolist()
        for r in dead:
            logits[r] = fallback[r].masked_fill(~ok[r], float("-inf"))
    return logits
