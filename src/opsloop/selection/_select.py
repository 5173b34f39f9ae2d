"""``select_model``: run every candidate over the same rows, rank them, record it all, register the pick."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics import Metric, get_metric
from opsloop.registry import Registry, check_model_name, default_cache_dir
from opsloop.selection._candidates import CandidateSpec, Opened, RssPeak, open_candidate
from opsloop.selection._candidates import parse_candidate as _parse
from opsloop.selection._data import (
    Messages,
    check_columns,
    datasets_of,
    load_rows,
    make_prompter,
    reference_of,
)
from opsloop.selection._plot import selection_svg
from opsloop.selection._rank import bootstrap_ci, rank
from opsloop.selection._register import register_choice
from opsloop.selection._types import (
    Constraints,
    Leaderboard,
    LeaderboardRow,
    Selection,
    check_objectives,
)
from opsloop.tracing import Price, PriceTable, Tracing
from opsloop.tracking import Tracking

Progress = Callable[[str, int, int], None]
TAG_ROLE = "opsloop.role"
MAX_TOKENS_LIMIT = 4096


@dataclass
class _Example:
    index: int
    messages: Messages
    reference: Any
    prediction: str = ""
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None
    scores: dict[str, float] = field(default_factory=dict)


def _check_inputs(
    candidates: Any, metrics: Any, max_tokens: Any, warmup: Any
) -> tuple[list[CandidateSpec], list[Metric]]:
    if isinstance(candidates, str) or not isinstance(candidates, Sequence) or not candidates:
        raise InvalidArgument("candidates must be a non-empty list of provider specs or Providers")
    specs = [_parse(c) for c in candidates]
    labels = [s.label for s in specs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InvalidArgument(f"candidate(s) listed twice: {dupes}")
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Sequence) or not metrics:
        raise InvalidArgument("metrics must be a non-empty list of metric names")
    ms = [get_metric(m) for m in metrics]  # NotFound lists the known names
    if not ms[0].greater_is_better:
        raise InvalidArgument(
            f"the first metric is the quality metric; {ms[0].name!r} is not one where "
            "greater is better"
        )
    for m in ms:
        extra = [i for i in m.inputs if i not in ("predictions", "references")]
        if extra:
            raise InvalidArgument(
                f"metric {m.name!r} needs input(s) {extra} that a selection does not provide"
            )
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidArgument("max_tokens must be an integer")
    if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise InvalidArgument(f"max_tokens must be in 1..{MAX_TOKENS_LIMIT}, got {max_tokens}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InvalidArgument("warmup must be an integer of at least 0")
    return specs, ms


def _price_table(ctx: Context) -> PriceTable:
    prices = ctx.room(Tracing).list_prices()
    return PriceTable(
        [Price(p.model, p.input_per_mtok, p.output_per_mtok, p.source) for p in prices]
    )


def select_model(
    candidates: Sequence[Any],
    data: Any,
    *,
    metrics: Sequence[str] = ("exact_match",),
    prompt: Any = None,
    input_column: str = "question",
    target_column: str = "answer",
    max_tokens: int = 64,
    constraints: Constraints | Mapping[str, Any] | None = None,
    objectives: Mapping[str, str] | None = None,
    register_as: str | None = None,
    client: Tracking | Context | None = None,
    progress: Progress | None = None,
    warmup: int = 1,
    experiment: str = "model-selection",
    cache_dir: str | Path | None = None,
    timeout_s: float = 120.0,
    endpoint_secret: str | None = None,
) -> Selection:
    """Evaluate every candidate on ``data`` and recommend one (see ``docs/selection.md``).

    Everything is checked before any model loads: candidates, metrics,
    constraints, objectives, the rows and the prompt on every row. Each
    candidate is one child run of a ``selection`` parent run; a candidate
    that cannot be opened is recorded with every request failed, not raised.
    """
    specs, ms = _check_inputs(candidates, metrics, max_tokens, warmup)
    cons = Constraints.coerce(constraints)
    objs = check_objectives(objectives)
    if register_as is not None:
        check_model_name(register_as)
    ctx = context_of(client)
    for spec in specs:
        if spec.kind == "models":
            ctx.room(Registry).resolve(spec.target)  # NotFound names it, before any load
    # Runs go to the context's run-logging client (the user's ``Client`` when one exists;
    # without a client, the program's default context).
    return _run(
        ctx.room(Tracking),
        specs,
        ms,
        data,
        prompt=prompt,
        input_column=input_column,
        target_column=target_column,
        max_tokens=max_tokens,
        constraints=cons,
        objectives=objs,
        register_as=register_as,
        progress=progress,
        warmup=warmup,
        experiment=experiment,
        cache_dir=cache_dir,
        timeout_s=timeout_s,
        endpoint_secret=endpoint_secret,
    )


def _run(
    client: Tracking,
    specs: list[CandidateSpec],
    ms: list[Metric],
    data: Any,
    *,
    prompt: Any,
    input_column: str,
    target_column: str,
    max_tokens: int,
    constraints: Constraints,
    objectives: dict[str, str],
    register_as: str | None,
    progress: Progress | None,
    warmup: int,
    experiment: str,
    cache_dir: str | Path | None,
    timeout_s: float,
    endpoint_secret: str | None,
) -> Selection:
    ctx = client.context
    rows, version_id = load_rows(data, ctx)
    check_columns(rows, [target_column] + ([input_column] if prompt is None else []))
    prompter, prompt_desc = make_prompter(prompt, input_column=input_column, ctx=ctx)
    conversations = [prompter(r) for r in rows]  # every row renders before any model loads
    references = [reference_of(r, target_column) for r in rows]
    # A metric that cannot score these references fails now, not after the models
    # (the first reference of each row stands in for a prediction).
    stand_in = [r[0] if isinstance(r, list) and r else r for r in references]
    for m in ms:
        m.compute(stand_in, references)
    prices = _price_table(ctx)
    cache = default_cache_dir(ctx) if cache_dir is None else Path(cache_dir)
    metric_names = [m.name for m in ms]
    parent = client.create_run(
        experiment_name=experiment,
        name=f"selection-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={TAG_ROLE: "selection"},
        params={
            "candidates": json.dumps([s.label for s in specs]),
            "metrics": json.dumps(metric_names),
            "prompt": prompt_desc[:500],
            "max_tokens": max_tokens,
            "rows": len(rows),
            "data": version_id or "rows",
            "objectives": json.dumps(objectives),
            "constraints": json.dumps(constraints.to_dict()),
        },
    )
    try:
        if version_id is not None:
            datasets_of(ctx).log_input(parent.id, version_id, context="evaluation")
        board: list[LeaderboardRow] = []
        for spec in specs:
            board.append(
                _evaluate_one(
                    client,
                    spec,
                    conversations,
                    references,
                    ms,
                    parent_id=parent.id,
                    experiment_id=parent.experiment_id,
                    prices=prices,
                    max_tokens=max_tokens,
                    warmup=warmup,
                    cache=cache,
                    timeout_s=timeout_s,
                    version_id=version_id,
                    progress=progress,
                )
            )
        ordered, rec = rank(board, objectives, constraints)
        selection = Selection(
            parent.id, Leaderboard(ordered), rec, objectives, constraints, metric_names
        )
        for r in ordered:
            if r.run_id:
                client.set_tags(
                    r.run_id,
                    {
                        "selection.pareto": str(r.pareto).lower(),
                        "selection.rank": ordered.index(r) + 1,
                    },
                )
        if register_as is not None and rec.candidate is not None:
            spec = next(s for s in specs if s.label == rec.candidate)
            mv, uri = register_choice(
                client,
                spec,
                selection.leaderboard[rec.candidate],
                name=register_as,
                selection_run_id=parent.id,
                metric=metric_names[0],
                reason=rec.reason,
                prompt=prompt_desc,
                cache_dir=cache,
                max_tokens=max_tokens,
                endpoint_secret=endpoint_secret,
            )
            selection.registered, selection.registered_uri = mv, uri
        _record_parent(client, selection)
    except BaseException:
        client.set_terminated(parent.id, "FAILED")
        raise
    client.set_terminated(parent.id, "FINISHED")
    return selection


def _record_parent(client: Tracking, s: Selection) -> None:
    tags = {"selection.recommended": s.recommendation.candidate or ""}
    if s.registered_uri:
        tags["selection.registered"] = s.registered_uri
    client.set_tags(s.run_id or "", tags)
    best = s.best
    if best is not None and best.quality is not None:
        client.log_metric(s.run_id or "", "best_quality", best.quality)
    client.log_dict(s.run_id or "", s.to_dict(), "selection/leaderboard.json")
    client.log_text(s.run_id or "", selection_svg(s.leaderboard.rows), "selection/pareto.svg")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def _evaluate_one(
    client: Tracking,
    spec: CandidateSpec,
    conversations: list[Messages],
    references: list[Any],
    ms: list[Metric],
    *,
    parent_id: str,
    experiment_id: str,
    prices: PriceTable,
    max_tokens: int,
    warmup: int,
    cache: Path,
    timeout_s: float,
    version_id: str | None,
    progress: Progress | None,
) -> LeaderboardRow:
    n = len(conversations)
    run = client.create_run(
        experiment_id,
        name=spec.label[:200],
        parent_run_id=parent_id,
        tags={TAG_ROLE: "candidate", "selection.candidate": spec.label},
        params={"candidate": spec.label, "kind": spec.kind, "max_tokens": max_tokens},
    )
    if version_id is not None:
        datasets_of(client.context).log_input(run.id, version_id, context="evaluation")
    row = LeaderboardRow(candidate=spec.label, examples=n, run_id=run.id)
    examples = [_Example(i, conversations[i], references[i]) for i in range(n)]
    local = spec.kind in ("local", "models") or (
        spec.kind == "provider" and getattr(spec.provider_obj, "provider", "") != "openai"
    )
    if local:
        # Import the ML stack before the baseline so the first local candidate
        # is not charged for the libraries every local candidate shares.
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            pass
    sampler = RssPeak() if local else None
    opened: Opened | None = None
    status = "FINISHED"
    try:
        opened = open_candidate(spec, client=client, cache_dir=cache, timeout_s=timeout_s)
        row.provider, row.model = opened.provider, opened.model or spec.target
        local = local and opened.provider != "openai"
        for conv in conversations[: min(warmup, n)]:
            # The measured pass records errors; warm-up only warms.
            with contextlib.suppress(Exception):
                opened.reply(conv, max_tokens)
        for ex in examples:
            t0 = time.perf_counter()
            try:
                reply = opened.reply(ex.messages, max_tokens)
            except Exception as exc:
                ex.error = f"{type(exc).__name__}: {exc}"[:500]
            else:
                ex.latency_ms = (time.perf_counter() - t0) * 1000.0
                ex.prediction = reply.text
                ex.input_tokens, ex.output_tokens = reply.input_tokens, reply.output_tokens
                ex.cost_usd = _cost(prices, opened, reply, local)
            if progress is not None:
                progress(spec.label, ex.index + 1, n)
    except Exception as exc:
        status = "FAILED"
        message = f"{type(exc).__name__}: {exc}"[:500]
        for ex in examples:
            if ex.latency_ms is None and ex.error is None:
                ex.error = message
        if progress is not None:
            progress(spec.label, n, n)
    finally:
        rss = sampler.stop() if sampler is not None else None
        weights = opened.weights_bytes() if opened is not None and local else None
        if opened is not None:
            opened.close()
    if local and (rss is not None or weights is not None):
        row.memory_mb = max(rss or 0, weights or 0) / 2**20
    _fill_row(row, examples, ms)
    _record_candidate(client, run.id, spec, row, examples, weights, rss, status)
    return row


def _cost(prices: PriceTable, opened: Opened, reply: Any, local: bool) -> float | None:
    c = prices.cost(opened.model, reply.input_tokens, reply.output_tokens)
    if c is None and reply.cost_usd is not None:
        c = float(reply.cost_usd)
    if c is None and local:
        return 0.0  # local models cost nothing unless priced
    return c


def _fill_row(row: LeaderboardRow, examples: list[_Example], ms: list[Metric]) -> None:
    ok = [e for e in examples if e.latency_ms is not None]
    row.errors = len(examples) - len(ok)
    if not ok:
        return
    preds = [e.prediction for e in examples]  # failed requests score as empty answers
    refs = [e.reference for e in examples]
    for i, m in enumerate(ms):
        res = m.compute(preds, refs)
        row.metrics[m.name] = float(res.value)
        if res.per_example is not None:
            for e, v in zip(examples, res.per_example, strict=True):
                e.scores[m.name] = float(v)
        if i == 0:
            row.quality = float(res.value)
            row.quality_ci = bootstrap_ci(res.per_example) if res.per_example else None
    lat = [e.latency_ms for e in ok if e.latency_ms is not None]
    row.p50_latency_ms = _percentile(lat, 50)
    row.p95_latency_ms = _percentile(lat, 95)
    seconds = sum(lat) / 1000.0
    out_tokens = sum(e.output_tokens for e in ok)
    row.tokens_per_s = out_tokens / seconds if seconds > 0 else None
    costs = [e.cost_usd for e in ok]
    if all(c is not None for c in costs):
        row.cost_per_1k_usd = 1000.0 * sum(c or 0.0 for c in costs) / len(costs)


def _record_candidate(
    client: Tracking,
    run_id: str,
    spec: CandidateSpec,
    row: LeaderboardRow,
    examples: list[_Example],
    weights: int | None,
    rss: int | None,
    status: str,
) -> None:
    client.log_params(
        run_id,
        {"provider": row.provider or spec.kind, "model": row.model or spec.target},
    )
    figures = {
        "quality": row.quality,
        "p50_latency_ms": row.p50_latency_ms,
        "p95_latency_ms": row.p95_latency_ms,
        "tokens_per_s": row.tokens_per_s,
        "cost_per_1k_usd": row.cost_per_1k_usd,
        "memory_mb": row.memory_mb,
        "errors": float(row.errors),
        **row.metrics,
    }
    if weights is not None:
        figures["weights_mb"] = weights / 2**20
    if rss is not None:
        figures["rss_delta_mb"] = rss / 2**20
    client.log_metrics(run_id, {k: v for k, v in figures.items() if v is not None})
    lines = [
        json.dumps(
            {
                "index": e.index,
                "messages": e.messages,
                "prediction": e.prediction,
                "reference": e.reference,
                "latency_ms": e.latency_ms,
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
                "cost_usd": e.cost_usd,
                "error": e.error,
                "scores": e.scores,
            },
            ensure_ascii=False,
        )
        for e in examples
    ]
    client.log_text(run_id, "\n".join(lines) + "\n", "selection/examples.jsonl")
    client.log_dict(run_id, row.to_dict(), "selection/row.json")
    client.set_terminated(run_id, status)
