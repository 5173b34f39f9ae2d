"""Benchmark-runner throughput: batched log-likelihood scoring against one request at a time.

Scores the same HellaSwag and PIQA examples with SmolLM2-135M-Instruct (the
bundled Q4 GGUF, de-quantised to float32) twice: with ``--batch-size``
(requests sorted by length, left-padded, logits of the continuation
positions only) and with batch size 1 (one (context, continuation) pair per
forward pass, no padding). Both use the same tokenisation and scoring code,
so the ratio is what batching buys. Asserts both give the same predictions
and log-probabilities within 2e-3.

    .venv/bin/python benchmarks/bench_runner.py                 # 100 + 100 examples
    .venv/bin/python benchmarks/bench_runner.py --n 20 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from opsloop.evaluation.benchmarks import run_benchmark
from opsloop.evaluation.benchmarks._model import load_benchmark_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="examples per task")
    ap.add_argument("--tasks", default="hellaswag,piqa")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--cache-dir",
        default=os.environ.get(
            "OPSLOOP_TEST_MODEL_CACHE", str(Path.home() / ".cache/opsloop/models")
        ),
    )
    args = ap.parse_args()
    lm, _ = load_benchmark_model("local:smollm2", cache_dir=args.cache_dir)
    kw = {"limit": args.n, "sample_seed": 0, "log": False}
    run_benchmark(lm, args.tasks, batch_size=args.batch_size, **{**kw, "limit": 4})  # warm-up

    rows = []
    results = {}
    for label, bs in (("one at a time", 1), (f"batched ({args.batch_size})", args.batch_size)):
        t = time.perf_counter()
        res = run_benchmark(lm, args.tasks, batch_size=bs, **kw)
        seconds = time.perf_counter() - t
        results[bs] = res
        rows.append((label, res.examples, seconds, res.examples / seconds))

    single, batched = results[1], results[args.batch_size]
    worst = 0.0
    for name, t1 in single.tasks.items():
        tb = batched.tasks[name]
        assert [e["pred"] for e in t1.examples] == [e["pred"] for e in tb.examples], name
        assert [e["pred_norm"] for e in t1.examples] == [e["pred_norm"] for e in tb.examples], name
        assert t1.metrics["acc"] == tb.metrics["acc"], name
        for a, b in zip(t1.examples, tb.examples, strict=True):
            worst = max(
                worst, *(abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"], strict=True))
            )
    assert worst < 2e-3, worst

    print(
        f"\nSmolLM2-135M-Instruct (Q4 GGUF -> float32), tasks {args.tasks}, {args.n} examples each"
    )
    print(f"{'scoring':<18} {'examples':>9} {'seconds':>9} {'examples/s':>11}")
    for label, n, s, rate in rows:
        print(f"{label:<18} {n:>9} {s:>9.1f} {rate:>11.2f}")
    print(f"ratio batched / one at a time: {rows[1][3] / rows[0][3]:.2f}x")
    print(f"same predictions both ways; largest log-prob difference {worst:.2e}")
    for name, t in batched.tasks.items():
        print(f"  {name}: acc {t.metrics['acc']:.3f}  acc_norm {t.metrics['acc_norm']:.3f}")


if __name__ == "__main__":
    main()
