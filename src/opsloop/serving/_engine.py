"""Continuous batching for causal LMs: concurrent requests share every forward pass.

One worker thread owns the model. Each loop iteration it admits waiting
requests (prefilled together, left-padded), merges their KV cache into the
running batch, then runs one decode step for every running sequence. A
sequence that finishes (end-of-sequence token, a stop string, its token
budget, or its client went away) leaves the batch at once, and a request that
arrives mid-flight joins at the next step instead of waiting for the batch to
drain. Tokens reach each request's ``asyncio`` queue as they are produced.

Constrained sequences (a grammar per request): a step's grammar masks are
computed by llguidance's thread pool while the forward pass runs and applied
in one operation; tokens a grammar forces are taken at once and fed with the
next sampled token in one forward pass (fast-forward), a row's extra positions
padded on the right where it is shorter than the step's widest row.

The KV cache is a transformers ``DynamicCache`` of shape ``[batch, heads,
time, dim]`` per layer, left-padded with an attention mask; joining pads the
shorter side on the left and concatenates along the batch. Models whose cache
has other layer kinds (sliding windows) cannot be merged that way: new
requests then wait until the running batch is done (plain dynamic batching).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from opsloop.errors import InvalidArgument, Unavailable
from opsloop.llm import apply_masks, fill_masks
from opsloop.serving._engine_stats import EngineStats, eos_ids, forward_kwargs
from opsloop.serving._sampling import GenerationParams, TextTracker, adjust, sample_tokens

__all__ = ["Completion", "Delta", "EngineStats", "GenerationEngine", "TokenLogprob"]

log = logging.getLogger("opsloop.serving")

# Token positions a decode step may carry in all (rows x width) when grammars forced tokens:
# on a CPU a forward of a few positions costs about one (the weights are read once either
# way), and past that the padding of the shorter rows is paid for.
FEED_POSITIONS = 16


@dataclass
class Completion:
    """The end of one generation: its text, token counts and why it stopped."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    index: int = 0  # the choice (0..n-1)
    logprobs: list[TokenLogprob] | None = None  # when asked for


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the most likely alternatives at its step."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass
class Delta:
    """New text of one choice, with the log-probabilities of the tokens it came from."""

    index: int
    text: str
    logprobs: list[TokenLogprob] | None = None


@dataclass
class _Request:
    prompt_ids: list[int]
    params: GenerationParams
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]]
    cancelled: bool = False
    finished: int = 0  # choices done (worker thread only)

    def emit(self, kind: str, value: Any) -> None:
        # The loop may be gone (server stopped under us): nobody is listening then.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))


@dataclass
class _Seq:
    req: _Request
    tracker: TextTracker
    generator: Any
    length: int  # real tokens in the cache for this sequence
    next_ids: list[int] = field(default_factory=list)  # the next forward's input tokens
    generated: int = 0
    finish: str | None = None
    index: int = 0
    constraint: Any = None
    pending_lp: list[TokenLogprob] = field(default_factory=list)
    all_lp: list[TokenLogprob] = field(default_factory=list)


class GenerationEngine:
    """Serve ``generate`` requests for one transformers causal LM, batched across requests.

    ``max_batch_size`` bounds the sequences decoded together; ``max_wait_ms``
    is how long an idle engine waits after the first request for others to
    arrive, so a burst is prefilled together.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch_size: int = 8, max_wait_ms: float = 10.0
    ) -> None:
        if max_batch_size < 1:
            raise InvalidArgument(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = EngineStats()
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self._cache_kw, self._logits_to_keep = forward_kwargs(model)
        self._eos = eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self._pad = int(pad if pad is not None else next(iter(self._eos), 0))
        self._inbox: queue.Queue[_Request | None] = queue.Queue()
        self._closing = False
        # Batch state, touched only by the worker thread.
        self._seqs: list[_Seq] = []
        self._cache: Any = None
        self._mask: Any = None
        self._mergeable = True
        # Grammar masks of the next step are computed here while the forward pass runs.
        self._grammar_pool: ThreadPoolExecutor | None = None
        self._thread = threading.Thread(target=self._run, name="opsloop-generate", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ event-loop side

    def validate(self, prompt_ids: list[int], params: GenerationParams) -> GenerationParams:
        """Check the prompt fits the context; cap ``max_new_tokens`` to the room left."""
        if not prompt_ids:
            raise InvalidArgument("the prompt is empty")
        room = self.context_length - len(prompt_ids)
        if room < 1:
            raise InvalidArgument(
                f"the prompt has {len(prompt_ids)} tokens; this model's context is "
                f"{self.context_length} tokens",
                details={"prompt_tokens": len(prompt_ids), "context_length": self.context_length},
            )
        if params.max_new_tokens > room:
            params = dataclasses.replace(params, max_new_tokens=room)
        return params

    async def stream(
        self, prompt_ids: list[int], params: GenerationParams
    ) -> AsyncIterator[tuple[str, Any]]:
        """Yield ``("delta", Delta)`` events as text is produced and one ``("done", Completion)``
        per choice (``params.n`` of them; the last event is the last choice's ``done``).

        Leaving the iteration early (a client that disconnected) drops the
        sequence from the batch at the next step.
        """
        if self._closing:
            raise Unavailable("the model is shutting down")
        params = self.validate(prompt_ids, params)
        req = _Request(list(prompt_ids), params, asyncio.get_running_loop(), asyncio.Queue())
        self.stats.requests += 1
        self._inbox.put(req)
        done = 0
        try:
            while True:
                kind, value = await req.events.get()
                if kind == "error":
                    raise value
                yield kind, value
                if kind == "done":
                    done += 1
                    if done >= params.n:
                        return
        finally:
            req.cancelled = True

    async def complete(self, prompt_ids: list[int], params: GenerationParams) -> list[Completion]:
        """The whole generation at once: one ``Completion`` per choice, in order."""
        out: list[Completion] = []
        async for kind, value in self.stream(prompt_ids, params):
            if kind == "done":
                out.append(value)
        if len(out) != params.n:
            raise Unavailable("generation ended without a result")
        return sorted(out, key=lambda c: c.index)

    async def close(self) -> None:
        """Finish every accepted request, then stop the worker thread."""
        self._closing = True
        self._inbox.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        if self._grammar_pool is not None:
            self._grammar_pool.shutdown(wait=False)

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        import torch

        stop = False
        while not stop or self._seqs:
            try:
                stop = self._admit(stop) or stop
                if self._seqs:
                    with torch.inference_mode():
                        self._step()
                self.stats.running = len(self._seqs)
                self.stats.waiting = self._inbox.qsize()
            except Exception as exc:  # a failing batch must not kill the engine
                log.exception("generation failed")
                for s in self._seqs:
                    s.req.emit("error", Unavailable(f"generation failed: {exc}"))
                self._seqs, self._cache, self._mask = [], None, None

    def _admit(self, stopping: bool) -> bool:
        """Take waiting requests into the batch; True when the close sentinel was seen."""
        new: list[_Request] = []
        saw_stop = False
        room = self.max_batch_size - len(self._seqs)
        can_join = not self._seqs or self._mergeable
        if stopping or room <= 0 or not can_join:
            return False
        if not self._seqs:
            first = self._inbox.get()  # idle: block until there is work
            if first is None:
                return True
            new.append(first)
            deadline = time.monotonic() + self.max_wait_s
            while len(new) < room:
                timeout = deadline - time.monotonic()
                try:
                    item = (
                        self._inbox.get(timeout=timeout)
                        if timeout > 0
                        else self._inbox.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is None:
                    saw_stop = True
                    break
                new.append(item)
        else:
            while len(new) < room:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    saw_stop = True
                    break
                new.append(item)
            if new:
                self.stats.joined_mid_flight += len(new)
        new = [r for r in new if not r.cancelled]
        if new:
            import torch

            with torch.inference_mode():
                self._prefill(new)
        return saw_stop

    def _prefill(self, reqs: list[_Request]) -> None:
        import torch
        from transformers import DynamicCache

        device = self.model.device
        width = max(len(r.prompt_ids) for r in reqs)
        ids = torch.full((len(reqs), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, r in enumerate(reqs):
            n = len(r.prompt_ids)
            ids[i, width - n :] = torch.tensor(r.prompt_ids, dtype=torch.long)
            mask[i, width - n :] = 1
        t0 = time.perf_counter()
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        kwargs: dict[str, Any] = {self._cache_kw: cache, "use_cache": True}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        try:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, **kwargs)
        except Exception as exc:
            log.exception("prefill failed")
            for r in reqs:
                r.emit("error", Unavailable(f"generation failed: {exc}"))
            return
        self.stats.prefills += 1
        logits = out.logits[:, -1, :]
        rows = [i for i, r in enumerate(reqs) for _ in range(r.params.n)]
        if len(rows) > len(reqs):
            # n choices share one prefill: the prompt's cache rows are copied, not recomputed.
            idx = torch.tensor(rows, dtype=torch.long, device=device)
            cache.batch_select_indices(idx)
            mask, logits = mask.index_select(0, idx), logits.index_select(0, idx)
        seqs: list[_Seq] = []
        for i in rows:
            r = reqs[i]
            index = len([s for s in seqs if s.req is r])
            gen = None
            if r.params.seed is not None and r.params.temperature > 0:
                gen = torch.Generator(device=device).manual_seed(r.params.seed + index)
            tracker = TextTracker(self.tokenizer, r.params.stop)
            seq = _Seq(r, tracker, gen, length=len(r.prompt_ids), index=index)
            if r.params.grammar is not None:
                from opsloop.llm import Constraint  # lazy: imports llguidance

                seq.constraint = Constraint(r.params.grammar, self.tokenizer)
            seqs.append(seq)
        self._merge(seqs, cache, mask)
        first = len(self._seqs) - len(seqs)
        joined = range(first, len(self._seqs))
        self._take_tokens(logits, joined, self._masks(joined, logits.shape[-1]))
        self._drop_finished()
        self.stats.prefill_s += time.perf_counter() - t0

    def _merge(self, seqs: list[_Seq], cache: Any, mask: Any) -> None:
        import torch

        self._mergeable = all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers)
        if not self._seqs:
            self._seqs, self._cache, self._mask = seqs, cache, mask
            return
        old_t, new_t = self._mask.shape[1], mask.shape[1]
        width = max(old_t, new_t)

        def pad_left(t: torch.Tensor, by: int, dim: int) -> torch.Tensor:
            if by == 0:
                return t
            shape = list(t.shape)
            shape[dim] = by
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
            old_layer.keys = torch.cat(
                [
                    pad_left(old_layer.keys, width - old_t, 2),
                    pad_left(new_layer.keys, width - new_t, 2),
                ]
            )
            old_layer.values = torch.cat(
                [
                    pad_left(old_layer.values, width - old_t, 2),
                    pad_left(new_layer.values, width - new_t, 2),
                ]
            )
        self._mask = torch.cat(
            [pad_left(self._mask, width - old_t, 1), pad_left(mask, width - new_t, 1)]
        )
        self._seqs = self._seqs + seqs

    def _step(self) -> None:
        import torch

        gone = [s for s in self._seqs if s.req.cancelled]
        if gone:
            self.stats.cancelled += len(gone)
            for s in gone:
                s.finish = "cancelled"
            self._drop_finished()
            if not self._seqs:
                return
        t0 = time.perf_counter()
        device = self.model.device
        n = len(self._seqs)
        # Tokens a grammar forced wait in ``next_ids`` with the sampled one and go in together,
        # at most ``width`` a row per step: a shorter row is padded on the right (a hole its
        # mask hides), so the width is kept to what a forward takes at about a token's cost.
        width = min(max(len(s.next_ids) for s in self._seqs), max(1, FEED_POSITIONS // n))
        feeds = [s.next_ids[:width] for s in self._seqs]
        # Rows whose queue empties this step sample a token; the others only feed.
        sampling = [i for i, s in enumerate(self._seqs) if len(s.next_ids) <= width]
        masks = None
        if any(self._seqs[i].constraint is not None for i in sampling):
            # The grammars already know what they allow next: their masks are computed
            # (llguidance's threads, no GIL) while the model runs.
            if self._grammar_pool is None:
                self._grammar_pool = ThreadPoolExecutor(1, thread_name_prefix="opsloop-grammar")
            vocab = int(self.model.config.vocab_size)
            masks = self._grammar_pool.submit(self._masks, sampling, vocab)
        lens = [len(f) for f in feeds]
        width = max(lens)
        if width == 1:
            ids = torch.tensor(feeds, dtype=torch.long, device=device)
            pos = torch.tensor([[s.length] for s in self._seqs], dtype=torch.long, device=device)
            new = self._mask.new_ones((n, 1))
        else:
            ids = torch.full((n, width), self._pad, dtype=torch.long)
            new = torch.zeros((n, width), dtype=self._mask.dtype)
            for i, f in enumerate(feeds):
                ids[i, : lens[i]] = torch.tensor(f, dtype=torch.long)
                new[i, : lens[i]] = 1
            start = torch.tensor([[s.length] for s in self._seqs], dtype=torch.long)
            pos = (start + torch.arange(width)).to(device)
            ids, new = ids.to(device), new.to(device)
        self._mask = torch.cat([self._mask, new], dim=1)
        kwargs: dict[str, Any] = {self._cache_kw: self._cache, "use_cache": True}
        out = self.model(input_ids=ids, attention_mask=self._mask, position_ids=pos, **kwargs)
        for s, k in zip(self._seqs, lens, strict=True):
            s.length += k
            s.next_ids = s.next_ids[k:]
        self.stats.steps += 1
        self.stats.step_sizes[n] = self.stats.step_sizes.get(n, 0) + 1
        self.stats.max_batch = max(self.stats.max_batch, n)
        if width == 1 and len(sampling) == n:
            logits = out.logits[:, -1, :]
        else:
            at = out.logits.device
            rows = torch.tensor(sampling, dtype=torch.long, device=at)
            last = torch.tensor([lens[i] - 1 for i in sampling], dtype=torch.long, device=at)
            logits = out.logits[rows, last]
        if masks is not None:
            t1 = time.perf_counter()
            masks.result()
            self.stats.grammar_wait_s += time.perf_counter() - t1
        if sampling:
            before = self.stats.tokens
            self._take_tokens(logits, sampling, masks)
            self.stats.decode_tokens += self.stats.tokens - before
        self._drop_finished()
        self.stats.decode_s += time.perf_counter() - t0

    def _masks(self, rows: Sequence[int], vocab: int) -> tuple[list[int], Any] | None:
        """The grammar masks of the constrained sequences among ``rows``: their positions in
        ``rows`` and a ``[k, vocab]`` boolean tensor; None when none is constrained."""
        seqs = [self._seqs[i] for i in rows]
        which = [k for k, s in enumerate(seqs) if s.constraint is not None]
        if not which:
            return None
        return which, fill_masks([seqs[k].constraint for k in which], vocab)

    def _take_tokens(self, logits: Any, rows: Sequence[int], masks: Any = None) -> None:
        """Pick each row's next token from ``logits``, shaped by its request (penalties,
        bias, its grammar's mask from ``masks``: ``_masks``'s result or a future of it)."""
        import torch

        seqs = [self._seqs[i] for i in rows]
        params = [s.req.params for s in seqs]
        raw = logits
        for k, (s, p) in enumerate(zip(seqs, params, strict=True)):
            row = raw[k]
            shaped = adjust(row, p, s.tracker.tokens, None)  # penalties and bias, no grammar
            if shaped is not row:
                if logits is raw:
                    logits = raw.clone()
                logits[k] = shaped
        got = masks.result() if isinstance(masks, Future) else masks
        if got is not None:
            which, allowed = got
            for j, k in enumerate(which):
                failed = seqs[k].constraint.failed
                if failed:  # this sequence's grammar failed: it alone ends
                    log.warning("constrained decoding failed: %s", failed)
                    seqs[k].finish = "error"
                    seqs[k].req.emit(
                        "error", InvalidArgument(f"constrained decoding failed: {failed}")
                    )
                    allowed[j] = True
            idx = torch.tensor(which, dtype=torch.long, device=logits.device)
            sub = apply_masks(
                logits.index_select(0, idx),
                allowed,
                None if logits is raw else raw.index_select(0, idx),
            )
            logits.index_copy_(0, idx, sub)
        tokens = sample_tokens(logits, params, [s.generator for s in seqs])
        for k, (s, tok) in enumerate(zip(seqs, tokens, strict=True)):
            if s.finish is not None:
                continue
            p = s.req.params
            s.next_ids = []
            self._accept(s, tok, _logprob(logits[k], tok, p.top_logprobs) if p.logprobs else None)
            if s.finish is None and s.constraint is not None and p.fast_forward:
                # Tokens the grammar allows alone (a key, punctuation) are taken now and fed
                # to the model with the sampled one in the next forward: no step each.
                for f in s.constraint.forced():
                    self.stats.forced_tokens += 1
                    # Under the mask it was the only choice: probability 1.
                    lp = TokenLogprob(f, 0.0, ((f, 0.0),) if p.top_logprobs else ())
                    self._accept(s, f, lp if p.logprobs else None)
                    if s.finish is not None:
                        break

    def _accept(self, s: _Seq, tok: int, lp: TokenLogprob | None) -> None:
        """Append one generated token to ``s``: text out, grammar advanced, stop checked."""
        p = s.req.params
        # The end-of-sequence token counts as generated (as in OpenAI's and vLLM's usage).
        s.generated += 1
        self.stats.tokens += 1
        if lp is not None:
            s.pending_lp.append(lp)
        if s.constraint is not None:
            s.constraint.advance(tok)
        if tok in self._eos and not p.ignore_eos:
            s.finish = "stop"
        else:
            delta = s.tracker.add(tok)
            if delta:
                self._emit_delta(s, delta)
            if s.tracker.stopped or (s.constraint is not None and s.constraint.stopped):
                s.finish = "stop"
            elif s.generated >= p.max_new_tokens:
                s.finish = "length"
            s.next_ids.append(tok)
        if s.finish is not None and s.finish != "cancelled":
            rest = s.tracker.flush()
            if rest or s.pending_lp:
                self._emit_delta(s, rest)
            s.req.emit(
                "done",
                Completion(
                    s.tracker.text,
                    len(s.req.prompt_ids),
                    s.generated,
                    s.finish,
                    s.index,
                    s.all_lp if p.logprobs else None,
                ),
            )

    def _emit_delta(self, s: _Seq, text: str) -> None:
        lp = None
        if s.req.params.logprobs:
            lp, s.pending_lp = s.pending_lp, []
            s.all_lp.extend(lp)
        s.req.emit("delta", Delta(s.index, text, lp))

    def _drop_finished(self) -> None:
        keep = [i for i, s in enumerate(self._seqs) if s.finish is None]
        if len(keep) == len(self._seqs):
            return
        if not keep:
            self._seqs, self._cache, self._mask = [], None, None
            return
        import torch

        idx = torch.tensor(keep, dtype=torch.long, device=self._mask.device)
        self._cache.batch_select_indices(idx)
        self._mask = self._mask.index_select(0, idx)
        self._seqs = [self._seqs[i] for i in keep]
        if self._mergeable:
            # Columns that are padding for every remaining sequence are dead weight.
            used = self._mask.any(dim=0).nonzero()
            start = int(used[0].item()) if used.numel() else 0
            if start > 0:
                for layer in self._cache.layers:
                    layer.keys = layer.keys[:, :, start:, :]
                    layer.values = layer.values[:, :, start:, :]
                self._mask = self._mask[:, start:]


def _logprob(row: Any, token: int, top: int) -> TokenLogprob:
    import torch

    lp = torch.log_softmax(row.float(), dim=-1)
    alts: tuple[tuple[int, float], ...] = ()
    if top > 0:
        vals, ids = torch.topk(lp, top)
        alts = tuple((int(i), float(v)) for i, v in zip(ids.tolist(), vals.tolist(), strict=True))
    return TokenLogprob(int(token), float(lp[token]), alts)
