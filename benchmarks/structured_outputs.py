"""Structured outputs: tokens per second with and without constrained decoding, and valid JSON.

The same prompts (the shipped structured-output tasks, ``opsloop.llm.example_schemas()``,
each asking for JSON) go through the serving engine (continuous batching) of
the bundled SmolLM2-135M-Instruct twice per round, free and under the task's
JSON schema, rounds alternating so machine load hits both alike. Printed:
tokens per second each way and their ratio, the grammar's own time per token
(mask + advance, measured inside the engine), and the share of answers that
parse as JSON and validate against their schema, free versus constrained.

    PYTHONPATH=src:. python benchmarks/structured_outputs.py --tasks 8 --max-tokens 48
    PYTHONPATH=src:. python benchmarks/structured_outputs.py --batch 1   # one request at a time

At ``--batch 1`` it also times the prompts' prefill (each answered with one token) and
prints tokens per second of decoding alone, since constrained answers are shorter and a
fixed prefill per request weighs more in their end-to-end tokens per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jsonschema

from opsloop.llm import Constraint, compile_response_format, example_schemas, load_local_model
from opsloop.serving._engine import GenerationEngine
from opsloop.serving._sampling import GenerationParams
from opsloop.settings import Settings


class _Timed:
    """Wraps ``Constraint`` methods to add up the time the grammar takes."""

    total = 0.0
    calls = 0

    @classmethod
    def install(cls) -> None:
        for name in ("mask", "advance"):
            orig = getattr(Constraint, name)

            def timed(self: Any, *a: Any, _orig: Any = orig, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return _orig(self, *a, **kw)
                finally:
                    cls.total += time.perf_counter() - t
                    cls.calls += 1

            setattr(Constraint, name, timed)


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
    engine: GenerationEngine, prompts: list[list[int]], params: list[GenerationParams], batch: int
) -> tuple[list[Any], float]:
    t = time.perf_counter()
    out: list[Any] = []
    for i in range(0, len(prompts), batch):
        chunk = zip(prompts[i : i + batch], params[i : i + batch], strict=True)
        done = await asyncio.gather(*(engine.complete(p, q) for p, q in chunk))
        out.extend(d[0] for d in done)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="requests in flight together")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "opsloop-bench-models"))
    args = ap.parse_args()
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])
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
    free = [GenerationParams(args.max_tokens, temperature=0.0) for _ in tasks]
    constrained = [GenerationParams(args.max_tokens, temperature=0.0, grammar=g) for g in grammars]
    _Timed.install()
    engine = GenerationEngine(lm.model, tok, max_batch_size=args.batch)
    asyncio.run(_run(engine, prompts[:2], free[:2], args.batch))  # warm-up
    rates: dict[str, list[float]] = {"free": [], "constrained": []}
    answers: dict[str, list[Any]] = {}
    grammar_s, grammar_calls = 0.0, 0
    for r in range(args.rounds):
        order = ("free", "constrained") if r % 2 == 0 else ("constrained", "free")
        for kind in order:
            before, calls0 = _Timed.total, _Timed.calls
            done, secs = asyncio.run(
                _run(engine, prompts, free if kind == "free" else constrained, args.batch)
            )
            tokens = sum(d.completion_tokens for d in done)
            rates[kind].append(tokens / secs)
            answers[kind] = done
            if kind == "constrained":
                grammar_s += _Timed.total - before
                grammar_calls += _Timed.calls - calls0
            print(
                f"round {r} {kind:12s} {tokens:5d} tokens in {secs:6.1f}s = {tokens / secs:6.1f} tok/s"
            )
    f, c = max(rates["free"]), max(rates["constrained"])
    print(f"best tok/s: free {f:.1f}, constrained {c:.1f}, constrained/free = {c / f:.3f}")
    if args.batch == 1:
        # Each request's prompt is read once (prefill) before its first token, whatever the
        # mode: constrained answers are shorter, so prefill weighs more in their tokens/s.
        # The same prompts answered with one token time the prefills; what remains is decoding.
        one = [GenerationParams(1, temperature=0.0) for _ in tasks]
        _, prefill_s = asyncio.run(_run(engine, prompts, one, 1))
        for kind in ("free", "constrained"):
            n = sum(d.completion_tokens for d in answers[kind])
            secs = n / max(rates[kind])
            rates[kind + "_decode"] = [(n - len(tasks)) / max(secs - prefill_s, 1e-9)]
        fd, cd = rates["free_decode"][0], rates["constrained_decode"][0]
        print(
            f"prefill of the {len(tasks)} prompts: {prefill_s:.1f}s; decoding alone: free "
            f"{fd:.1f} tok/s, constrained {cd:.1f} tok/s, constrained/free = {cd / fd:.3f}"
        )
    asyncio.run(engine.close())
    print(
        f"grammar time: {grammar_s * 1e6 / max(grammar_calls, 1):.0f} us per mask/advance call, "
        f"{grammar_calls} calls"
    )
    for kind in ("free", "constrained"):
        parsed = valid = 0
        for x, d in zip(tasks, answers[kind], strict=True):
            p, v = _valid(d.text, x["schema"])
            parsed += p
            valid += v
        n = len(tasks)
        print(
            f"{kind:12s} parses as JSON {parsed}/{n} ({parsed / n:.0%}), "
            f"validates {valid}/{n} ({valid / n:.0%})"
        )
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
