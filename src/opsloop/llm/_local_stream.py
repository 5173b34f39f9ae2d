"""Token-by-token generation for a local causal LM, as an iterator of text deltas.

transformers' ``generate`` runs in a worker thread and hands each new token to
a streamer; this side re-decodes the tokens so far (decoding token by token
breaks multi-byte characters and merged spaces) and yields only text that is
final: a delta is held back while it ends in an incomplete character or could
be the start of a stop string, so a stop string never reaches the caller. A
stopping criterion ends generation as soon as the consumer stops (a stop
string, the caller leaving the loop, or the deadline).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opsloop.errors import ProviderTimeout

__all__ = ["StreamEnd", "prompt_ids", "stream_tokens"]


@dataclass(frozen=True)
class StreamEnd:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def prompt_ids(lm: Any, prompt: str) -> list[int]:
    """The prompt's token ids, encoded exactly as ``LoadedCausalLM.generate`` encodes it."""
    tok = lm.tokenizer
    bos = tok.bos_token
    # Chat templates usually write the BOS token themselves; never add a second one.
    add_special = not (bos and prompt.startswith(bos))
    return list(tok(prompt, add_special_tokens=add_special)["input_ids"])


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could still grow into a stop string."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return hold


class _GrammarLogits:
    """A transformers logits processor: the anti-repetition processors, then the grammar's
    mask (which falls back to the unpenalized row when they ban every allowed token)."""

    def __init__(self, constraint: Any, prompt_len: int, inner: list[Any]) -> None:
        self.constraint = constraint
        self.prompt_len = prompt_len
        self.inner = inner

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[1] > self.prompt_len:
            self.constraint.advance(int(input_ids[0, -1]))
        raw = scores.clone()
        for proc in self.inner:
            scores = proc(input_ids, scores)
        scores[0] = self.constraint.mask(scores[0], raw[0])
        return scores


def stream_tokens(
    lm: Any,
    prompt: str,
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    stop: Sequence[str],
    seed: int | None,
    timeout_s: float | None,
    lock: threading.Lock,
    repetition_penalty: float | None = None,
    no_repeat_ngram_size: int | None = None,
    grammar: str | None = None,
) -> Iterator[str | StreamEnd]:
    """Yield text deltas, then one ``StreamEnd``; ``ProviderTimeout`` past ``timeout_s``."""
    import torch
    from transformers import (
        GenerationConfig,
        LogitsProcessorList,
        StoppingCriteria,
        StoppingCriteriaList,
    )
    from transformers.generation.streamers import BaseStreamer

    tok = lm.tokenizer
    ids = prompt_ids(lm, prompt)
    device = next(lm.model.parameters()).device
    input_ids = torch.tensor([ids], device=device)
    attention = torch.ones_like(input_ids)
    eos = set(lm.eos_token_ids)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    cancel = threading.Event()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    class _Streamer(BaseStreamer):
        def __init__(self) -> None:
            self.prompt_seen = False

        def put(self, value: Any) -> None:
            if not self.prompt_seen:  # generate hands over the prompt first
                self.prompt_seen = True
                return
            events.put(("tokens", [int(t) for t in value.reshape(-1).tolist()]))

        def end(self) -> None:
            pass

    class _Cancel(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            late = deadline is not None and time.monotonic() > deadline
            flag = cancel.is_set() or late
            return torch.full(
                (input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device
            )

    cfg: dict[str, Any] = {
        "max_new_tokens": max_tokens,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": sorted(eos) or None,
        "do_sample": temperature > 0,
    }
    if temperature > 0:
        cfg.update(temperature=temperature, top_p=top_p, top_k=0)
    # The same anti-repetition settings as the batched path (the model's defaults unless given).
    anti = lm.anti_repetition(len(ids), repetition_penalty, no_repeat_ngram_size)
    if grammar is not None:
        from opsloop.llm._structured import Constraint  # lazy: imports llguidance

        anti = [_GrammarLogits(Constraint(grammar, tok), len(ids), anti)]

    def run() -> None:
        try:
            with lock, torch.inference_mode():
                if seed is not None:
                    torch.manual_seed(seed)
                lm.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    generation_config=GenerationConfig(**cfg),  # type: ignore[no-untyped-call]
                    streamer=_Streamer(),
                    stopping_criteria=StoppingCriteriaList([_Cancel()]),
                    logits_processor=LogitsProcessorList(anti),
                )
            events.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            events.put(("error", exc))

    worker = threading.Thread(target=run, name="opsloop-llm-stream", daemon=True)
    worker.start()
    out: list[int] = []
    emitted = 0
    text = ""
    reason: str | None = None
    try:
        while reason is None:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 1.0
            try:
                kind, value = events.get(timeout=wait)
            except queue.Empty:
                kind, value = "end", None
            if kind == "error":
                raise value
            if kind == "end":
                if deadline is not None and time.monotonic() > deadline:
                    raise ProviderTimeout(
                        f"the local model did not finish within {timeout_s:g}s",
                        details={"timeout_s": timeout_s, "completion_tokens": len(out)},
                    )
                reason = "length" if len(out) >= max_tokens else "stop"
                break
            for t in value:
                out.append(t)
                if t in eos:
                    reason = "stop"
                    break
            text = tok.decode(out, skip_special_tokens=True)
            cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
            if cut >= 0:
                text, reason = text[:cut], "stop"
            if reason is None and len(out) >= max_tokens:
                reason = "length"
            safe = len(text)
            if reason is None:
                if text.endswith("\ufffd"):
                    safe = emitted  # an incomplete multi-byte character: wait for the rest
                else:
                    safe -= _held_back(text, stop)
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
        if len(text) > emitted:
            yield text[emitted:]
        yield StreamEnd(len(ids), len(out), reason)
    finally:
        cancel.set()
        worker.join()
