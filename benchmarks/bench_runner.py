"""Benchmark-runner throughput: shared-context and batched log-likelihood scoring vs one at a time.

Scores the same HellaSwag and PIQA examples with SmolLM2-135M-Instruct (the
bundled Q4 GGUF, de-quantised to float32) three ways:

- one at a time: batch size 1, one (context, continuation) pair per forward
  pass, no padding;
- batched without sharing (``share_context=False``): ``--batch-size`` pairs a
  pass, sorted by length, left-padded, logits of the continuation positions only;
- batched with shared contexts (the default): each question's context runs
  once, its choices are scored from the cached keys/values, ``--batch-size``
  choices a pass.

All three use the same tokenisation, so the ratios are what batching and
sharing buy. Asserts identical predictions and log-probabilities within 2e-3.

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
    for share in (False, True):  # warm-up
        run_benchmark(lm, args.tasks, batch_size=args.batch_size, share_context=share,
                      **{**kw, "limit": 4})  # fmt: skip

    bs = args.batch_size
    ways = (
        ("one at a time", 1, False),
        (f"batched ({bs})", bs, False),
        (f"shared ctx ({bs})", bs, True),
    )
    rows = []
    results = []
    for label, size, share in ways:
        t = time.perf_counter()
        res = run_benchmark(lm, args.tasks, batch_size=size, share_context=share, **kw)
        seconds = time.perf_counter() - t
        results.append(res)
        rows.append((label, res.examples, seconds, res.examples / seconds))

    single = results[0]
    worst = 0.0
    for other in results[1:]:
        for name, t1 in single.tasks.items():
            tb = other.tasks[name]
            assert [e["pred"] for e in t1.examples] == [e["pred"] for e in tb.examples], name
            assert [e["pred_norm"] for e in t1.examples] == [e["pred_norm"] for e in tb.examples], (
                name
            )
            assert t1.metrics["acc"] == tb.metrics["acc"], name
            for a, b in zip(t1.examples, tb.examples, strict=True):
                worst = max(
                    worst,
                    *(abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"], strict=True)),
                )
    assert worst < 2e-3, worst

    print(
        f"\nSmolLM2-135M-Instruct (Q4 GGUF -> float32), tasks {args.tasks}, {args.n} examples each"
    )
    print(f"{'scoring':<20} {'examples':>9} {'seconds':>9} {'examples/s':>11} {'vs one':>7}")
    for label, n, s, rate in rows:
        print(f"{label:<20} {n:>9} {s:>9.1f} {rate:>11.2f} {rate / rows[0][3]:>6.2f}x")
    print(f"shared / batched without sharing: {rows[2][3] / rows[1][3]:.2f}x")
    print(f"same predictions all three ways; largest log-prob difference {worst:.2e}")
    for name, t in results[2].tasks.items():
        print(f"  {name}: acc {t.metrics['acc']:.3f}  acc_norm {t.metrics['acc_norm']:.3f}")


if __name__ == "__main__":
    main()
