"""Log-likelihood of continuations, batched, with a causal LM (transformers, under torch).

Each request is a (context, continuation) pair. Like lm-evaluation-harness
and lighteval, whitespace that ends the context is moved to the start of the
continuation, the pair is tokenised whole and split where the context's own
tokens end, and the score is the sum of the continuation tokens' log-probabilities.

Batching: requests are sorted by length, longest first, and padded on the
*left*, so every row's continuation ends at the last position. The model is
then asked for the logits of the last ``K`` positions only (``logits_to_keep``,
``K`` = the batch's longest continuation) instead of the whole sequence
times the vocabulary, and position ids are derived from the attention mask
so a padded row sees the same positions as it would alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LoglikelihoodRequest", "encode_pair", "loglikelihoods"]


@dataclass(frozen=True)
class LoglikelihoodRequest:
    context: str
    continuation: str


@dataclass(frozen=True)
class Scored:
    """Sum of log-probabilities, whether greedy decoding would produce it, and its token count."""

    logprob: float
    is_greedy: bool
    n_tokens: int


def _add_special(tokenizer: Any, text: str) -> bool:
    # A chat-formatted context already starts with the BOS token; never add a second one.
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of the context and of the continuation, split the way lm-eval splits them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    special = _add_special(tokenizer, context)
    whole = list(tokenizer(context + continuation, add_special_tokens=special)["input_ids"])
    ctx = list(tokenizer(context, add_special_tokens=special)["input_ids"])
    n_ctx = min(len(ctx), len(whole) - 1)  # a continuation merged into the context keeps one token
    ctx_ids, cont_ids = whole[:n_ctx], whole[n_ctx:]
    if not ctx_ids:
        # The first token needs something to be predicted from.
        prefix = tokenizer.bos_token_id
        if prefix is None:
            prefix = tokenizer.eos_token_id
        ctx_ids = [int(prefix)]
    return ctx_ids, cont_ids


def _max_length(model: Any) -> int:
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return 2048


def loglikelihoods(
    lm: Any,
    requests: Sequence[LoglikelihoodRequest],
    *,
    batch_size: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> list[Scored]:
    """Score every request with ``lm`` (a ``LoadedCausalLM``); results in request order.

    ``on_progress(n)`` is called after each batch with the number of requests it scored.
    """
    import torch

    if batch_size < 1:
        from opsloop.errors import InvalidArgument

        raise InvalidArgument("batch_size must be at least 1")
    model, tok = lm.model, lm.tokenizer
    max_len = _max_length(model)
    encoded: list[tuple[list[int], int]] = []
    for r in requests:
        ctx, cont = encode_pair(tok, r.context, r.continuation)
        # The input is everything but the last token (nothing is predicted after it),
        # truncated on the left to the model's window.
        seq = (ctx + cont)[-(max_len + 1) :]
        encoded.append((seq, len(cont)))
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    results: list[Scored | None] = [None] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            rows = [encoded[i] for i in idx]
            width = max(len(seq) - 1 for seq, _ in rows)
            keep = max(n for _, n in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, (seq, _) in enumerate(rows):
                inp = seq[:-1]
                ids[b, width - len(inp) :] = torch.tensor(inp, dtype=torch.long)
                mask[b, width - len(inp) :] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=pos.to(device),
                logits_to_keep=keep,
                use_cache=False,
            )
            logprobs = torch.log_softmax(out.logits[:, -keep:, :].float(), dim=-1)
            for b, (i, (seq, n)) in enumerate(zip(idx, rows, strict=True)):
                target = torch.tensor(seq[-n:], dtype=torch.long, device=logprobs.device)
                lp = logprobs[b, keep - n :, :]
                chosen = lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
                greedy = bool((lp.argmax(dim=-1) == target).all())
                results[i] = Scored(float(chosen.sum()), greedy, n)
            if on_progress is not None:
                on_progress(len(idx))
    return [r for r in results if r is not None]
