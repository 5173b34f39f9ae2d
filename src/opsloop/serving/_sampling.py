"""Per-sequence pieces of generation: sampling a token, and turning tokens into streamed text.

Kept apart from the scheduler so each sequence in a batch can carry its own
temperature, top-p, seed and stop strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["GenerationParams", "TextTracker", "adjust", "penalize", "sample_tokens"]


@dataclass(frozen=True)
class GenerationParams:
    """What one request asks of the generator (already validated and capped)."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # generate exactly max_new_tokens (benchmarks, as in vLLM)
    # Over the generated tokens only, as LoadedCausalLM.generate applies them (the model's
    # generation defaults unless the request sets its own); 1.0 / 0: off.
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    # OpenAI's parameters: additive penalties over the generated tokens, a per-token bias.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    grammar: str | None = None  # an llguidance grammar the answer must follow
    logprobs: bool = False  # report each chosen token's log-probability
    top_logprobs: int = 0  # and the most likely alternatives at each step
    n: int = 1  # choices from one prompt (prefilled once)
    # Tokens the grammar forces (a key, punctuation) are taken without a decode step each.
    fast_forward: bool = True


def adjust(
    logits: torch.Tensor, p: GenerationParams, generated: list[int], constraint: Any
) -> torch.Tensor:
    """One row of logits as the request shapes it: repetition settings, OpenAI's
    presence/frequency penalties and logit bias, then the grammar's mask."""
    import torch

    row = penalize(logits, p, generated)
    if generated and (p.presence_penalty or p.frequency_penalty):
        ids, counts = torch.unique(torch.tensor(generated, device=row.device), return_counts=True)
        row = row.clone() if row is logits else row
        row[ids] -= counts.to(row.dtype) * p.frequency_penalty + p.presence_penalty
    if p.logit_bias:
        row = row.clone() if row is logits else row
        for tok, bias in p.logit_bias:
            if tok < row.shape[0]:
                row[tok] += bias
    if constraint is not None:
        row = constraint.mask(row, logits)
    return row


def penalize(logits: torch.Tensor, p: GenerationParams, generated: list[int]) -> torch.Tensor:
    """One row of logits with ``p``'s repetition penalty and n-gram ban over ``generated``."""
    import torch

    if not generated or (p.repetition_penalty == 1.0 and p.no_repeat_ngram_size <= 0):
        return logits
    row = logits.clone()
    if p.repetition_penalty != 1.0:
        ids = torch.tensor(sorted(set(generated)), device=row.device)
        picked = row[ids]
        row[ids] = torch.where(
            picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty
        )
    n = p.no_repeat_ngram_size
    if n > 0 and len(generated) >= n:
        prefix = tuple(generated[len(generated) - n + 1 :]) if n > 1 else ()
        banned = [
            generated[i + n - 1]
            for i in range(len(generated) - n + 1)
            if tuple(generated[i : i + n - 1]) == prefix
        ]
        if banned:
            row[banned] = -float("inf")
    return row


def sample_tokens(
    logits: torch.Tensor,
    params: list[GenerationParams],
    generators: list[Any],
    generated: list[list[int]] | None = None,
) -> list[int]:
    """One next token per row of ``logits`` (``[batch, vocab]``), each row with its own settings.

    Temperature 0 is greedy. ``generators`` holds a seeded ``torch.Generator``
    per row (or None), so a request with a seed draws the same tokens as long
    as the model gives it the same logits. ``generated``: each row's tokens
    so far, for the repetition settings.
    """
    import torch

    if generated is not None and any(
        g and (p.repetition_penalty != 1.0 or p.no_repeat_ngram_size > 0)
        for p, g in zip(params, generated, strict=True)
    ):
        logits = torch.stack([penalize(logits[i], p, generated[i]) for i, p in enumerate(params)])
    greedy = logits.argmax(dim=-1).tolist()
    out: list[int] = []
    for i, p in enumerate(params):
        if p.temperature <= 0.0:
            out.append(int(greedy[i]))
            continue
        row = logits[i].float() / p.temperature
        probs = torch.softmax(row, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cum = torch.cumsum(sorted_probs, dim=-1)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            drop = (cum - sorted_probs) >= p.top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            pick = torch.multinomial(sorted_probs, 1, generator=generators[i])
            out.append(int(order[pick].item()))
        else:
            out.append(int(torch.multinomial(probs, 1, generator=generators[i]).item()))
    return out


@dataclass
class TextTracker:
    """Text of one sequence as tokens arrive: what may be streamed now, and whether a stop string hit.

    Text is re-decoded from all generated tokens (token-by-token decoding
    breaks multi-byte characters and merged spaces). A delta is held back
    while it ends in an incomplete character or could be the start of a stop
    string, so a stop string never reaches the client.
    """

    tokenizer: Any
    stop: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    stopped: bool = False

    def add(self, token: int) -> str:
        """Append ``token``; return the new text that is safe to stream (maybe empty)."""
        self.tokens.append(token)
        text = str(self.tokenizer.decode(self.tokens, skip_special_tokens=True))
        if text.endswith("\ufffd"):
            return ""  # an incomplete UTF-8 sequence: wait for the next token
        if self.stop:
            longest = max(len(s) for s in self.stop)
            start = max(0, self.emitted - longest)
            hits = [i for i in (text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                self.text = text[: min(hits)]
                self.stopped = True
                return self.flush()
        self.text = text
        safe = len(text) - self._pending_stop_prefix(text)
        if safe <= self.emitted:
            return ""
        delta = text[self.emitted : safe]
        self.emitted = safe
        return delta

    def flush(self) -> str:
        """Everything not streamed yet (at the end of the sequence)."""
        delta = self.text[self.emitted :]
        self.emitted = len(self.text)
        return delta

    def _pending_stop_prefix(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best
