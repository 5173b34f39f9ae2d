"""Log-likelihood of continuations, batched, with a causal LM (transformers, under torch).

Each request is a (context, continuation) pair. Like lm-evaluation-harness
and lighteval, whitespace that ends the context is moved to the start of the
continuation, the pair is tokenised whole and split where the context's own
tokens end, and the score is the sum of the continuation tokens' log-probabilities.

Two ways to batch, both scoring each request as it would be scored alone:

- **Shared contexts** (the default): requests whose context tokens are
  identical (the choices of one question) form a group. A pack of groups runs
  twice: once for the contexts (left-padded, keys/values kept, the logits of
  each context's last position only), then once for all the continuations of
  the pack (right-padded), each row reading its own group's cached keys/values.
  A question with four endings thus runs its context once instead of four times.
- **Per pair** (``share_context=False``, ``batch_size=1``, a request alone in
  its group, or one too long for the model's window): requests are sorted by
  length, longest first, and padded on the *left*, so every row's continuation
  ends at the last position; the model is asked for the logits of the last
  ``K`` positions only (``logits_to_keep``).

In both, position ids are derived from the attention mask, so a padded row
sees the same positions as it would alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opsloop.errors import InvalidArgument

__all__ = ["LoglikelihoodRequest", "encode_pair", "loglikelihoods"]

_Encoded = tuple[list[int], list[int]]  # (context ids, continuation ids)
# Shared-context scoring takes this many batches' requests at a time: contexts
# run once each, continuations are sorted by length across the lot (less padding).
WINDOW = 8
# A shared-context batch (rows sorted longest first) ends early rather than pad
# a row to more than 1/SPLIT of its length: lengths are long-tailed (PIQA).
SPLIT = 0.7


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
    share_context: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[Scored]:
    """Score every request with ``lm`` (a ``LoadedCausalLM``); results in request order.

    ``batch_size``: at most this many requests per forward pass; 1 scores each
    request alone, without sharing. ``share_context``: run a context shared by
    several requests once and score their continuations from its cached
    keys/values (``False``: every request is a full row of its own).
    ``on_progress(n)`` is called after each batch with the number of requests it scored.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument("batch_size must be at least 1")
    model, tok = lm.model, lm.tokenizer
    max_len = _max_length(model)
    encoded = [encode_pair(tok, r.context, r.continuation) for r in requests]
    results: list[Scored | None] = [None] * len(encoded)
    singles = list(range(len(encoded)))
    groups: list[list[int]] = []
    if share_context and batch_size > 1:
        by_ctx: dict[tuple[int, ...], list[int]] = {}
        # A pair past the model's window is truncated on the left, which changes its
        # context; past a sliding-attention window the cache would drop its start.
        sliding = _sliding_window(model)
        fits = max_len + 1 if sliding is None else min(max_len + 1, sliding - 1)
        for i, (ctx, cont) in enumerate(encoded):
            if len(ctx) + len(cont) <= fits:
                by_ctx.setdefault(tuple(ctx), []).append(i)
        groups = [g for g in by_ctx.values() if len(g) > 1]
        grouped = {i for g in groups for i in g}
        singles = [i for i in singles if i not in grouped]
    _score_pairs(model, tok, encoded, singles, batch_size, max_len, results, on_progress)
    _score_shared(model, tok, encoded, groups, batch_size, results, on_progress)
    return [r for r in results if r is not None]


def _score(logprobs: Any, target: list[int]) -> Scored:
    """``logprobs``: (len(target), vocab), row j predicting ``target[j]``."""
    import torch

    t = torch.tensor(target, dtype=torch.long, device=logprobs.device)
    chosen = logprobs.gather(-1, t.unsqueeze(-1)).squeeze(-1)
    greedy = bool((logprobs.argmax(dim=-1) == t).all())
    return Scored(float(chosen.sum()), greedy, len(target))


def _score_pairs(
    model: Any,
    tok: Any,
    encoded: list[_Encoded],
    subset: list[int],
    batch_size: int,
    max_len: int,
    results: list[Scored | None],
    on_progress: Callable[[int], None] | None,
) -> None:
    """Every request a full row: left-padded, logits of the continuation positions only."""
    import torch

    # The input is everything but the last token (nothing is predicted after it),
    # truncated on the left to the model's window.
    seqs = {i: (encoded[i][0] + encoded[i][1])[-(max_len + 1) :] for i in subset}
    order = sorted(subset, key=lambda i: -len(seqs[i]))
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(seqs[i]) - 1 for i in idx)
            keep = max(len(encoded[i][1]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for b, i in enumerate(idx):
                inp = seqs[i][:-1]
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
            for b, i in enumerate(idx):
                n = len(encoded[i][1])
                results[i] = _score(logprobs[b, keep - n :, :], encoded[i][1])
            if on_progress is not None:
                on_progress(len(idx))


def _cache_argument(model: Any) -> str:
    # transformers 5.x renamed ``past_key_values`` to ``cache``; the old name still works, with a warning.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _windows(encoded: list[_Encoded], groups: list[list[int]], size: int) -> list[list[list[int]]]:
    """Groups, longest context first, cut into windows of at most ``size`` requests.

    A group larger than ``size`` is split; each part runs the context again.
    """
    parts = [g[k : k + size] for g in groups for k in range(0, len(g), size)]
    parts.sort(key=lambda g: -len(encoded[g[0]][0]))
    windows: list[list[list[int]]] = []
    n = size  # forces a new window for the first part
    for g in parts:
        if n + len(g) > size:
            windows.append([])
            n = 0
        windows[-1].append(g)
        n += len(g)
    return windows


def _batches(lengths: list[int], batch_size: int) -> list[range]:
    """Index ranges over ``lengths`` (sorted longest first): at most ``batch_size`` each,
    and a batch ends before a row shorter than ``SPLIT`` times the batch's first."""
    out: list[range] = []
    start = 0
    for k, n in enumerate(lengths):
        if k > start and (k - start >= batch_size or n < SPLIT * lengths[start]):
            out.append(range(start, k))
            start = k
    if start < len(lengths):
        out.append(range(start, len(lengths)))
    return out


def _sliding_window(model: Any) -> int | None:
    cfg = model.config
    if callable(getattr(cfg, "get_text_config", None)):
        cfg = cfg.get_text_config()
    v = getattr(cfg, "sliding_window", None)
    return v if isinstance(v, int) and v > 0 else None


def _score_shared(
    model: Any,
    tok: Any,
    encoded: list[_Encoded],
    groups: list[list[int]],
    batch_size: int,
    results: list[Scored | None],
    on_progress: Callable[[int], None] | None,
) -> None:
    """Each group's context once, then its continuations from the cached keys/values.

    Per window of ``WINDOW * batch_size`` requests: the contexts run up to
    ``batch_size`` at a time (left-padded, longest first), their keys/values are
    kept, padded on the left to the window's longest context; then the
    continuations, sorted by length so a batch pads little, run up to
    ``batch_size`` at a time, right-padded, each row over a cache gathered from
    its own context's keys/values.
    """
    import torch
    import torch.nn.functional as F
    from transformers import DynamicCache

    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    cache_arg = _cache_argument(model)
    with torch.inference_mode():
        for window in _windows(encoded, groups, WINDOW * batch_size):
            ctxs = [encoded[g[0]][0] for g in window]
            width = len(ctxs[0])  # longest first
            ctx_mask = torch.zeros((len(ctxs), width), dtype=torch.long)
            for b, ctx in enumerate(ctxs):
                ctx_mask[b, width - len(ctx) :] = 1
            ctx_mask = ctx_mask.to(device)
            keys: list[list[Any]] = []
            values: list[list[Any]] = []
            first = []  # what each context predicts for its continuations' first token
            for part in _batches([len(c) for c in ctxs], batch_size):
                start, chunk = part.start, ctxs[part.start : part.stop]
                w = len(chunk[0])
                ids = torch.full((len(chunk), w), pad, dtype=torch.long)
                for b, ctx in enumerate(chunk):
                    ids[b, w - len(ctx) :] = torch.tensor(ctx, dtype=torch.long)
                mask = ctx_mask[start : start + len(chunk), width - w :]
                out = model(
                    input_ids=ids.to(device),
                    attention_mask=mask,
                    position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                    logits_to_keep=1,
                    use_cache=True,
                )
                first.append(torch.log_softmax(out.logits[:, -1, :].float(), dim=-1))
                cache = out["cache"] if "cache" in out else out["past_key_values"]
                for layer, kv in enumerate(cache.layers):
                    if layer == len(keys):
                        keys.append([])
                        values.append([])
                    # Left-pad to the window's width: masked like the contexts' own padding.
                    keys[layer].append(F.pad(kv.keys, (0, 0, width - w, 0)))
                    values[layer].append(F.pad(kv.values, (0, 0, width - w, 0)))
            k_all = [torch.cat(k, dim=0) for k in keys]
            v_all = [torch.cat(v, dim=0) for v in values]
            first_lp = torch.cat(first, dim=0)
            rows = [(b, i) for b, g in enumerate(window) for i in g]
            one = [(b, i) for b, i in rows if len(encoded[i][1]) == 1]
            for b, i in one:
                results[i] = _score(first_lp[b : b + 1], encoded[i][1])
            if one and on_progress is not None:
                on_progress(len(one))
            longer = sorted(
                ((b, i) for b, i in rows if len(encoded[i][1]) > 1),
                key=lambda r: -len(encoded[r[1]][1]),
            )
            for part in _batches([len(encoded[i][1]) - 1 for _, i in longer], batch_size):
                batch = longer[part.start : part.stop]
                sel = torch.tensor([b for b, _ in batch], dtype=torch.long, device=device)
                cut = width - max(len(ctxs[b]) for b, _ in batch)  # columns all padding
                cache = DynamicCache(
                    ddp_cache_data=[
                        (k[sel, :, cut:], v[sel, :, cut:])
                        for k, v in zip(k_all, v_all, strict=True)
                    ],
                    config=model.config,
                )
                conts = [encoded[i][1] for _, i in batch]
                w = len(conts[0]) - 1  # the last token is predicted, never fed
                # Right-padded: a row's real tokens come first, so causality hides its padding.
                ids = torch.full((len(batch), w), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), w), dtype=torch.long)
                for r, cont in enumerate(conts):
                    ids[r, : len(cont) - 1] = torch.tensor(cont[:-1], dtype=torch.long)
                    mask[r, : len(cont) - 1] = 1
                n_ctx = torch.tensor([len(ctxs[b]) for b, _ in batch], dtype=torch.long)
                out = model(
                    input_ids=ids.to(device),
                    attention_mask=torch.cat([ctx_mask[sel, cut:], mask.to(device)], dim=-1),
                    position_ids=(n_ctx.unsqueeze(-1) + torch.arange(w)).to(device),
                    use_cache=True,
                    **{cache_arg: cache},
                )
                rest = torch.log_softmax(out.logits.float(), dim=-1)
                for r, ((b, i), cont) in enumerate(zip(batch, conts, strict=True)):
                    lp = torch.cat([first_lp[b : b + 1], rest[r, : len(cont) - 1]], dim=0)
                    results[i] = _score(lp, cont)
                if on_progress is not None:
                    on_progress(len(batch))
