"""Structured outputs: tokens per second with and without constrained decoding, and valid JSON.

The same prompts (the shipped structured-output tasks, ``opsloop.llm.example_schemas()``,
each asking for JSON) go through the serving engine (continuous batching: every request is
submitted at once and the engine keeps up to ``--batch`` of them decoding, refilling as
they finish) of the bundled SmolLM2-135M-Instruct, four ways per round, the order turned
round every round so machine load hits them alike:

- ``constrained``: under each task's JSON schema (llguidance), tokens the grammar forces
  fed to the model without a decode step each (fast-forward, the engine's default);
- ``constrained, no fast-forward``: the same, one decode step per token;
- ``free, same lengths``: no grammar, each request generating exactly as many tokens as its
  constrained answer had (``ignore_eos``): the same prompts and the same amount of work,
  so the batch thins out at the same steps and the figure isolates what the grammar costs;
- ``free``: no grammar, the model stopping where it likes (its answers are about twice as
  long, so the batch stays full longer and the prompts' prefill weighs less per token).

Printed per way: tokens per second (the best round), milliseconds per decode step and
decode steps (the engine's own counters), mean seconds per request, and tokens per second
of the decode steps alone (each request's prompt is prefilled once whatever its answer's
length, which weighs more per token in short answers); then the ratios
against ``free, same lengths`` (the goal: constrained at least 0.9 of it) and against
``free``, and the share of answers that parse as JSON and validate against their schema.

    PYTHONPATH=src:. python benchmarks/structured_outputs.py --tasks 16 --max-tokens 48
    PYTHONPATH=src:. python benchmarks/structured_outputs.py --batch 1 --tasks 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import jsonschema

from opsloop.llm import compile_response_format, example_schemas, load_local_model
from opsloop.serving._engine import EngineStats, GenerationEngine
from opsloop.serving._sampling import GenerationParams
from opsloop.settings import Settings

# Constrained and its baseline run next to each other whichever way round the order goes.
WAYS = ("constrained", "free, same lengths", "constrained, no fast-forward", "free")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _valid(text: str, schema: dict[str, Any]) -> tuple[bool, bool]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False, False
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return True, False
    return True, True


async def _run(
    engine: GenerationEngine, prompts: list[list[int]], params: list[GenerationParams]
) -> tuple[list[Any], float, float]:
    """Every request at once; the answers, the wall time and the mean time per request."""

    async def one(p: list[int], q: GenerationParams) -> tuple[Any, float]:
        t = time.perf_counter()
        done = await engine.complete(p, q)
        return done[0], time.perf_counter() - t

    t = time.perf_counter()
    got = await asyncio.gather(*(one(p, q) for p, q in zip(prompts, params, strict=True)))
    wall = time.perf_counter() - t
    return [g[0] for g in got], wall, sum(g[1] for g in got) / len(got)


def _settled(engine: GenerationEngine) -> EngineStats:
    """The engine's counters once its last step is booked (the answers arrive from inside it)."""
    for _ in range(400):
        if engine.stats.running == 0:
            break
        time.sleep(0.005)
    time.sleep(0.02)
    return engine.stats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16, help="sequences decoded together")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "opsloop-bench-models"))
    args = ap.parse_args()
    print("load average:", _load())
    t = time.perf_counter()
    lm = load_local_model(
        "local:smollm2", settings=Settings(), cache_dir=Path(args.cache), device="cpu"
    )
    print(f"model loaded in {time.perf_counter() - t:.1f}s")
    tasks = example_schemas()[: args.tasks]
    tok = lm.tokenizer
    prompts = [
        tok(
            lm.apply_chat_template([{"role": "user", "content": x["prompt"] + " Answer in JSON."}])
        )["input_ids"]
        for x in tasks
    ]
    t = time.perf_counter()
    grammars = [
        compile_response_format(
            {"type": "json_schema", "json_schema": {"name": x["name"], "schema": x["schema"]}}, tok
        )
        for x in tasks
    ]
    print(
        f"{len(tasks)} schemas compiled in {(time.perf_counter() - t) * 1000:.0f} ms "
        "(the first includes building the tokenizer's trie)"
    )
    engine = GenerationEngine(lm.model, tok, max_batch_size=args.batch)
    warm = [GenerationParams(2, temperature=0.0, grammar=g) for g in grammars[:2]]
    asyncio.run(_run(engine, prompts[:2], warm))
    mt = args.max_tokens
    params: dict[str, list[GenerationParams]] = {
        "constrained": [GenerationParams(mt, temperature=0.0, grammar=g) for g in grammars],
        "constrained, no fast-forward": [
            GenerationParams(mt, temperature=0.0, grammar=g, fast_forward=False) for g in grammars
        ],
        "free": [GenerationParams(mt, temperature=0.0) for _ in tasks],
    }
    # The constrained answers' lengths (greedy, so the same every round) set the free run
    # of the same lengths.
    first, _, _ = asyncio.run(_run(engine, prompts, params["constrained"]))
    params["free, same lengths"] = [
        GenerationParams(d.completion_tokens, temperature=0.0, ignore_eos=True) for d in first
    ]
    best: dict[str, dict[str, float]] = {}
    answers: dict[str, list[Any]] = {}
    paired: list[float] = []
    for r in range(args.rounds):
        this: dict[str, float] = {}
        for way in WAYS if r % 2 == 0 else WAYS[::-1]:
            _settled(engine)  # the last run's final step booked before the counters restart
            engine.stats = EngineStats()
            done, wall, per_req = asyncio.run(_run(engine, prompts, params[way]))
            st = _settled(engine)
            tokens = sum(d.completion_tokens for d in done)
            row = {
                "tok_s": tokens / wall,
                "decode_tok_s": st.decode_tokens / max(st.decode_s, 1e-9),
                "ms_step": 1000 * st.decode_s / max(st.steps, 1),
                "steps": st.steps,
                "tokens": tokens,
                "forced": st.forced_tokens,
                "prefill_s": st.prefill_s,
                "req_s": per_req,
                "grammar_wait_ms": 1000 * st.grammar_wait_s / max(st.steps, 1),
            }
            print(
                f"round {r} {way:29s} {tokens:4d} tokens ({st.forced_tokens:3d} forced) in "
                f"{wall:5.1f}s = {row['tok_s']:5.1f} tok/s; {st.steps:3d} decode steps of "
                f"{row['ms_step']:5.1f} ms (grammar wait {row['grammar_wait_ms']:.2f} ms), "
                f"prefill {st.prefill_s:4.1f}s, {per_req:4.1f}s per request  [load {_load()}]"
            )
            this[way] = row["tok_s"]
            if way not in best or row["tok_s"] > best[way]["tok_s"]:
                best[way] = row
            answers[way] = done
        paired.append(this["constrained"] / this["free, same lengths"])
    asyncio.run(engine.close())
    print(f"\nbest of {args.rounds} rounds, batch {args.batch}, {len(tasks)} tasks:")
    for way in WAYS:
        b = best[way]
        print(
            f"  {way:29s} {b['tok_s']:6.1f} tok/s, {b['ms_step']:6.1f} ms/step, "
            f"{b['steps']:4.0f} steps, {b['req_s']:5.2f} s/request; decoding alone "
            f"{b['decode_tok_s']:5.1f} tok/s"
        )
    base, free = best["free, same lengths"], best["free"]
    for way in ("constrained", "constrained, no fast-forward"):
        c = best[way]
        print(
            f"  {way}: /free same lengths = {c['tok_s'] / base['tok_s']:.3f} tok/s "
            f"(goal >= 0.9), {c['ms_step'] / base['ms_step']:.3f} time per step; "
            f"/free = {c['tok_s'] / free['tok_s']:.3f} tok/s, decoding alone "
            f"{c['decode_tok_s'] / free['decode_tok_s']:.3f}"
        )
    paired.sort()
    print(
        f"  constrained / free same lengths, run next to each other, per round: "
        f"{', '.join(f'{x:.3f}' for x in paired)} (median {statistics.median(paired):.3f})"
    )
    for way in ("free", "constrained"):
        parsed = valid = 0
        for x, d in zip(tasks, answers[way], strict=True):
            p, v = _valid(d.text, x["schema"])
            parsed += p
            valid += v
        n = len(tasks)
        cut = sum(d.finish_reason == "length" for d in answers[way])
        print(
            f"  {way:12s} parses as JSON {parsed}/{n} ({parsed / n:.0%}), "
            f"validates {valid}/{n} ({valid / n:.0%}); {cut} cut short by --max-tokens"
        )
    print("load average:", _load())


if __name__ == "__main__":
    main()
