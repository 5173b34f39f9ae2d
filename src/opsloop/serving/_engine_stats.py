"""The generation engine's counters, and what it reads off a model before serving it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EngineStats", "eos_ids", "forward_kwargs"]


@dataclass
class EngineStats:
    requests: int = 0
    prefills: int = 0
    steps: int = 0
    tokens: int = 0
    forced_tokens: int = 0  # of ``tokens``: forced by a grammar, no step of their own
    decode_tokens: int = 0  # of ``tokens``: taken in decode steps (the rest: in prefills)
    max_batch: int = 0
    joined_mid_flight: int = 0
    cancelled: int = 0
    running: int = 0
    waiting: int = 0
    step_sizes: dict[int, int] = field(default_factory=dict)
    prefill_s: float = 0.0  # time in prefills (forward, first tokens)
    decode_s: float = 0.0  # time in decode steps (forward, masks, sampling, text)
    grammar_wait_s: float = 0.0  # decode time spent waiting for grammar masks after the forward

    def as_dict(self) -> dict[str, Any]:
        total = sum(k * v for k, v in self.step_sizes.items())
        return {
            "running": self.running,
            "waiting": self.waiting,
            "requests": self.requests,
            "prefills": self.prefills,
            "decode_steps": self.steps,
            "generated_tokens": self.tokens,
            "grammar_forced_tokens": self.forced_tokens,
            "max_batch": self.max_batch,
            "mean_batch": round(total / self.steps, 3) if self.steps else 0.0,
            "joined_mid_flight": self.joined_mid_flight,
            "cancelled": self.cancelled,
            "step_batch_histogram": {str(k): v for k, v in sorted(self.step_sizes.items())},
            "prefill_seconds": round(self.prefill_s, 3),
            "decode_seconds": round(self.decode_s, 3),
            "ms_per_decode_step": round(1000 * self.decode_s / self.steps, 3)
            if self.steps
            else 0.0,
            "grammar_wait_seconds": round(self.grammar_wait_s, 3),
        }


def forward_kwargs(model: Any) -> tuple[str, bool]:
    """The name the model's forward takes its KV cache under, and whether it takes ``logits_to_keep``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    return cache_kw, "logits_to_keep" in params


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        eos = getattr(src, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list | tuple):
            ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids
