"""Run benchmark tasks on a causal LM and record the scores as a tracking run.

Multiple-choice tasks are scored by log-likelihood (the cloze formulation):
``acc`` picks the choice with the highest summed log-probability, ``acc_norm``
the highest log-probability per character of the choice (a leading space not
counted), as lm-evaluation-harness and lighteval do. Generation tasks decode
greedily up to a stop string and score exact match after normalisation.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opsloop.core import Context, context_of
from opsloop.errors import InvalidArgument
from opsloop.evaluation.benchmarks._data import (
    default_data_dir,
    load_task_data,
    read_records,
    resolve_source,
)
from opsloop.evaluation.benchmarks._model import check_benchmark_model, load_benchmark_model
from opsloop.evaluation.benchmarks._normalize import normalize_answer
from opsloop.evaluation.benchmarks._scoring import LoglikelihoodRequest, loglikelihoods
from opsloop.evaluation.benchmarks._task import TaskSpec, load_task
from opsloop.registry import LoadedCausalLM
from opsloop.settings import Settings
from opsloop.tracking import Tracking

__all__ = ["BenchmarkResult", "TaskResult", "run_benchmark", "stderr_of_mean"]

DEFAULT_EXPERIMENT = "benchmarks"
FEWSHOT_SEED = 1234
MAX_GEN_BATCH = 256  # LoadedCausalLM.generate takes at most this many prompts per call

# progress(task name, examples done in this step, examples in the task)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TaskResult:
    """Scores of one task: ``metrics`` maps ``acc``, ``acc_stderr``, ... to values in 0..1."""

    task: str
    output_type: str
    n: int
    num_fewshot: int
    metrics: dict[str, float]
    seconds: float
    examples: list[dict[str, Any]] = field(repr=False)
    data: str = "folder"  # where the records came from: folder, hub, hub-cache, excerpt

    @property
    def examples_per_s(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True)
class BenchmarkResult:
    """What ``run_benchmark`` returns; ``run_id`` is the tracking run (``None`` when not logged)."""

    model: str
    model_id: str
    tasks: dict[str, TaskResult]
    seconds: float
    batch_size: int
    limit: int | None
    chat_template: bool
    run_id: str | None = None

    @property
    def examples(self) -> int:
        return sum(t.n for t in self.tasks.values())

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else math.inf

    def metrics(self) -> dict[str, float]:
        """Flat ``<task>/<metric>`` keys, as logged to the run."""
        out = {f"{name}/{k}": v for name, t in self.tasks.items() for k, v in t.metrics.items()}
        out["examples_per_s"] = self.examples_per_s
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_id": self.model_id,
            "run_id": self.run_id,
            "batch_size": self.batch_size,
            "limit": self.limit,
            "chat_template": self.chat_template,
            "seconds": self.seconds,
            "examples_per_s": self.examples_per_s,
            "tasks": {
                name: {
                    "output_type": t.output_type,
                    "n": t.n,
                    "num_fewshot": t.num_fewshot,
                    "metrics": t.metrics,
                    "seconds": t.seconds,
                    "data": t.data,
                }
                for name, t in self.tasks.items()
            },
        }


def stderr_of_mean(values: Sequence[float]) -> float:
    """Standard error of the mean with the sample variance (what lm-eval reports)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def _norm_len(choice: str) -> int:
    return max(1, len(choice) - 1 if choice.startswith(" ") else len(choice))


# ---------------------------------------------------------------------- prompts


@dataclass
class _Prepared:
    spec: TaskSpec
    docs: list[tuple[int, dict[str, Any]]]  # (index in the source, record)
    pool: list[dict[str, Any]]
    pool_is_eval: bool
    num_fewshot: int
    data: str = "folder"


def _prepare(
    spec: TaskSpec,
    data_dir: Path | None,
    limit: int | None,
    sample_seed: int | None,
    num_fewshot: int | None,
    *,
    home: Path | None = None,
    explicit_dir: bool = True,
) -> _Prepared:
    found = load_task_data(
        spec, data_dir, home=home or Settings().home, limit=limit, explicit_dir=explicit_dir
    )
    records = found.records
    if found.origin in ("hub", "hub-cache") and spec.hub is not None and spec.hub.overrides:
        overrides: dict[str, Any] = dict(spec.hub.overrides)
        spec = replace(spec, **overrides)  # the hub's copy lays its fields out its way
    if not records:
        raise InvalidArgument(f"task {spec.name!r}: its data source holds no records")
    indices = list(range(len(records)))
    if limit is not None and limit < len(records):
        if sample_seed is None:
            indices = indices[:limit]
        else:
            indices = sorted(random.Random(sample_seed).sample(indices, limit))
    k = spec.num_fewshot if num_fewshot is None else num_fewshot
    pool, pool_is_eval = records, True
    if k and spec.fewshot_source:
        src = resolve_source(spec.fewshot_source, data_dir, task=spec.name)
        pool, pool_is_eval = read_records(src, split=spec.fewshot_split, task=spec.name), False
    if k and len(pool) <= k:
        raise InvalidArgument(
            f"task {spec.name!r}: {k} few-shot examples asked for, the pool holds {len(pool)}"
        )
    return _Prepared(spec, [(i, records[i]) for i in indices], pool, pool_is_eval, k, found.origin)


def _shots(prep: _Prepared, doc_index: int) -> list[dict[str, Any]]:
    """The few-shot examples of one document: seeded per document, never the document itself."""
    if not prep.num_fewshot:
        return []
    rng = random.Random(FEWSHOT_SEED + doc_index)
    picks = rng.sample(range(len(prep.pool)), prep.num_fewshot + 1)
    if prep.pool_is_eval:
        picks = [p for p in picks if p != doc_index]
    return [prep.pool[p] for p in picks[: prep.num_fewshot]]


def _example_pair(spec: TaskSpec, doc: dict[str, Any]) -> tuple[str, str]:
    """A solved example as (question text, answer text) for few-shot prompts."""
    if spec.output_type == "generate_until":
        return spec.text(doc), spec.target_delimiter + str(spec.target(doc))
    if spec.partial:
        contexts = spec.contexts(doc)
        return contexts[spec.gold_index(doc, contexts)], spec.target_delimiter + spec.continuation(
            doc
        )
    choices = spec.choices(doc)
    return spec.text(doc), spec.target_delimiter + choices[spec.gold_index(doc, choices)]


def _context(
    lm: LoadedCausalLM, spec: TaskSpec, shots: list[dict[str, Any]], text: str, chat: bool
) -> str:
    pairs = [_example_pair(spec, ex) for ex in shots]
    if not chat:
        parts = [q + a for q, a in pairs] + [text]
        return spec.fewshot_delimiter.join(parts)
    # lighteval's --use_chat_template: shots as user/assistant turns, the question as the last user turn.
    messages: list[dict[str, str]] = []
    for q, a in pairs:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a.lstrip()}]
    messages.append({"role": "user", "content": text})
    return lm.apply_chat_template(messages)


# ---------------------------------------------------------------------- scoring


def _run_multiple_choice(
    lm: LoadedCausalLM,
    prep: _Prepared,
    batch_size: int,
    chat: bool,
    share_context: bool,
    tick: Callable[[int], None],
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    spec = prep.spec
    requests: list[LoglikelihoodRequest] = []
    layout: list[dict[str, Any]] = []
    for doc_index, doc in prep.docs:
        shots = _shots(prep, doc_index)
        if spec.partial:
            contexts = spec.contexts(doc)
            gold = spec.gold_index(doc, contexts)
            cont = spec.target_delimiter + spec.continuation(doc)
            ctxs = [_context(lm, spec, shots, c, chat) for c in contexts]
            conts = [cont] * len(ctxs)
            choices = contexts
            lengths = [_norm_len(spec.continuation(doc))] * len(ctxs)
        else:
            choices = spec.choices(doc)
            gold = spec.gold_index(doc, choices)
            ctx = _context(lm, spec, shots, spec.text(doc), chat)
            ctxs = [ctx] * len(choices)
            conts = [spec.target_delimiter + c for c in choices]
            lengths = [_norm_len(c) for c in choices]
        layout.append(
            {"doc_index": doc_index, "gold": gold, "choices": choices, "lengths": lengths,
             "start": len(requests)}
        )  # fmt: skip
        requests += [LoglikelihoodRequest(c, k) for c, k in zip(ctxs, conts, strict=True)]
    done = [0]
    per_doc = {i: len(e["choices"]) for i, e in enumerate(layout)}
    n_req = max(1, len(requests))
    # Progress in examples: requests scored so far, scaled to the number of examples.

    def on_batch(n: int) -> None:
        before = done[0] * len(layout) // n_req
        done[0] += n
        tick(done[0] * len(layout) // n_req - before)

    scored = loglikelihoods(
        lm, requests, batch_size=batch_size, share_context=share_context, on_progress=on_batch
    )
    examples = []
    for e_i, e in enumerate(layout):
        s = scored[e["start"] : e["start"] + per_doc[e_i]]
        lps = [x.logprob for x in s]
        normed = [lp / n for lp, n in zip(lps, e["lengths"], strict=True)]
        pred = max(range(len(lps)), key=lambda j: lps[j])
        pred_norm = max(range(len(normed)), key=lambda j: normed[j])
        examples.append(
            {
                "doc_index": e["doc_index"],
                "gold": e["gold"],
                "pred": pred,
                "pred_norm": pred_norm,
                "acc": float(pred == e["gold"]),
                "acc_norm": float(pred_norm == e["gold"]),
                "logprobs": lps,
                "char_lengths": e["lengths"],
                "is_greedy": [x.is_greedy for x in s],
                "choices": e["choices"],
            }
        )
    metrics: dict[str, float] = {}
    for m in spec.metrics:
        vals = [ex[m] for ex in examples]
        metrics[m] = sum(vals) / len(vals)
        metrics[f"{m}_stderr"] = stderr_of_mean(vals)
    return metrics, examples


def _run_generate(
    lm: LoadedCausalLM,
    prep: _Prepared,
    batch_size: int,
    chat: bool,
    max_gen_toks: int | None,
    tick: Callable[[int], None],
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    spec = prep.spec
    prompts, golds = [], []
    for doc_index, doc in prep.docs:
        prompts.append(_context(lm, spec, _shots(prep, doc_index), spec.text(doc), chat))
        golds.append(str(spec.target(doc)))
    # Longest prompts first: similar lengths share a batch and pad less.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    texts: list[str] = [""] * len(prompts)
    step = min(batch_size, MAX_GEN_BATCH)
    for start in range(0, len(order), step):
        idx = order[start : start + step]
        outs = lm.generate(
            [prompts[i] for i in idx],
            max_new_tokens=max_gen_toks or spec.max_gen_toks,
            stop=list(spec.until) or None,
        )
        for i, r in zip(idx, outs, strict=True):
            texts[i] = r.text
        tick(len(idx))
    examples: list[dict[str, Any]] = []
    vals: list[float] = []
    for (doc_index, _), text, gold in zip(prep.docs, texts, golds, strict=True):
        p, g = (
            normalize_answer(text, spec.normalization),
            normalize_answer(gold, spec.normalization),
        )
        examples.append(
            {"doc_index": doc_index, "generation": text, "target": gold, "prediction": p,
             "answer": g, "exact_match": float(bool(g) and p == g)}
        )  # fmt: skip
        vals.append(examples[-1]["exact_match"])
    metrics = {"exact_match": sum(vals) / len(vals), "exact_match_stderr": stderr_of_mean(vals)}
    return metrics, examples


# ---------------------------------------------------------------------- entry point


def run_benchmark(
    model: Any,
    tasks: str | Sequence[str],
    limit: int | None = None,
    batch_size: int = 16,
    num_fewshot: int | None = None,
    client: Tracking | Context | None = None,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    chat_template: bool = False,
    sample_seed: int | None = None,
    max_gen_toks: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    log: bool = True,
    progress: Progress | None = None,
    share_context: bool = True,
) -> BenchmarkResult:
    """Score ``model`` on ``tasks`` and record the result as a run in ``experiment``.

    ``model``: ``local:smollm2`` / ``local:gemma3`` (bundled GGUFs), a
    ``models:/`` URI, a saved model folder, or a loaded ``LoadedCausalLM``.
    ``tasks``: shipped task names or task YAML paths (a list, or comma-separated).
    ``limit``: at most this many examples per task, the first ones, or a seeded
    random sample with ``sample_seed``. ``num_fewshot`` overrides every task's
    default. ``chat_template`` wraps each prompt as a user turn (how
    instruction-tuned models are usually published). ``client``: where the run
    goes (default: the program's default context); ``log=False`` records nothing.
    ``share_context``: score the choices of a question from one run of its
    context (``False``: each (context, choice) pair runs whole, the baseline).
    """
    # Every argument is checked, in order, before any data is read or the model loads.
    check_benchmark_model(model, client=client)
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    names = [n for n in names if n]
    if not names:
        raise InvalidArgument("name at least one benchmark task")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgument("limit must be a positive integer")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument("batch_size must be a positive integer")
    if num_fewshot is not None and (not isinstance(num_fewshot, int) or not 0 <= num_fewshot <= 64):
        raise InvalidArgument("num_fewshot must be an integer in 0..64")
    specs = [load_task(n) for n in names]
    if len({s.name for s in specs}) != len(specs):
        raise InvalidArgument(f"a task is named twice in {names}")
    settings = context_of(client).settings if client is not None else Settings()
    ddir = Path(data_dir).expanduser() if data_dir is not None else None
    explicit = ddir is not None or settings.benchdata is not None
    if ddir is None:
        ddir = default_data_dir(settings)
    # Read and check every task's data before the (slow) model load.
    prepared = [
        _prepare(
            s, ddir, limit, sample_seed, num_fewshot, home=settings.home, explicit_dir=explicit
        )
        for s in specs
    ]

    # Runs go to the context's run-logging client (the user's ``Client`` when one exists).
    runs = context_of(client).room(Tracking) if log else None
    lm, label = load_benchmark_model(model, client=client, cache_dir=cache_dir, device=device)
    return _execute(
        lm, label, prepared, limit, batch_size, runs, experiment,
        run_name, chat_template, sample_seed, max_gen_toks, progress, share_context,
    )  # fmt: skip


def _execute(
    lm: LoadedCausalLM,
    label: str,
    prepared: list[_Prepared],
    limit: int | None,
    batch_size: int,
    client: Tracking | None,
    experiment: str,
    run_name: str | None,
    chat: bool,
    sample_seed: int | None,
    max_gen_toks: int | None,
    progress: Progress | None,
    share_context: bool = True,
) -> BenchmarkResult:
    run_id = None
    if client is not None:
        params: dict[str, Any] = {
            "model": label,
            "model_id": lm.model_id,
            "tasks": ",".join(p.spec.name for p in prepared),
            "limit": "none" if limit is None else limit,
            "batch_size": batch_size,
            "share_context": share_context,
            "chat_template": chat,
            "sample_seed": "none" if sample_seed is None else sample_seed,
        }
        params.update({f"{p.spec.name}/num_fewshot": p.num_fewshot for p in prepared})
        params.update({f"{p.spec.name}/data": p.data for p in prepared})
        run = client.create_run(
            experiment_name=experiment,
            name=run_name or f"bench {lm.model_id}",
            params=params,
            tags={"opsloop.kind": "benchmark"},
        )
        run_id = run.id
    results: dict[str, TaskResult] = {}
    t_all = time.perf_counter()
    try:
        for prep in prepared:
            name, total = prep.spec.name, len(prep.docs)

            def tick(n: int, _name: str = name, _total: int = total) -> None:
                if progress is not None and n:
                    progress(_name, n, _total)

            t0 = time.perf_counter()
            if prep.spec.output_type == "multiple_choice":
                metrics, examples = _run_multiple_choice(
                    lm, prep, batch_size, chat, share_context, tick
                )
            else:
                metrics, examples = _run_generate(lm, prep, batch_size, chat, max_gen_toks, tick)
            seconds = time.perf_counter() - t0
            metrics["n"] = float(total)
            metrics["examples_per_s"] = total / seconds if seconds > 0 else 0.0
            results[name] = TaskResult(
                name, prep.spec.output_type, total, prep.num_fewshot, metrics, seconds, examples,
                prep.data,
            )  # fmt: skip
        result = BenchmarkResult(
            label,
            lm.model_id,
            results,
            time.perf_counter() - t_all,
            batch_size,
            limit,
            chat,
            run_id,
        )
        if client is not None and run_id is not None:
            _record(client, run_id, result)
    except BaseException:
        if client is not None and run_id is not None:
            client.set_terminated(run_id, "FAILED")
        raise
    return result


def _record(client: Tracking, run_id: str, result: BenchmarkResult) -> None:
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[(k, float(v), 0, ts) for k, v in result.metrics().items()])
    for name, t in result.tasks.items():
        body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in t.examples)
        client.log_text(run_id, body, f"benchmarks/{name}.jsonl")
    client.log_dict(run_id, result.to_dict(), "benchmarks/summary.json")
    client.set_terminated(run_id, "FINISHED")
