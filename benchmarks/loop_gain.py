"""The loop on the docs QA task: does the fine-tuned SmolLM2 beat version 1 on held-out questions?

Runs ``opsloop loop run``'s function (``run_docs_loop``) once in a fresh home:
SmolLM2-135M-Instruct (bundled GGUF) as version 1 behind the quickstart's
docs retrieval pipeline (MiniLM index of README.md and docs/*.md, k=3, 64 new
tokens), the 73 ``train`` questions replayed with feedback from their
reference answers, exported as an SFT dataset, a LoRA job, the adapter merged
as version 2, both versions evaluated on the 36 ``heldout`` questions with
``contains`` (the quickstart's quality metric), a paired bootstrap of the
gain, and the gate. Prints the table: v1, v2, gain, its 95% CI, p-value, the
decision and the wall time of each stage (goal: gain >= 0.15 with the lower
bound above zero; the whole loop under 15 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/loop_gain.py
    .venv/bin/python benchmarks/loop_gain.py --steps 60 --lr 3e-4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# This folder holds datasets.py, which would shadow the `datasets` package sentence-transformers
# imports: run with the repository root (not this folder) on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the loop's)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate")
    ap.add_argument("--rank", type=int, default=None, help="LoRA rank (alpha = 2 x rank)")
    ap.add_argument("--batch", type=int, default=None, help="batch size")
    ap.add_argument("--train-limit", type=int, default=None, help="first N train questions")
    ap.add_argument("--heldout-limit", type=int, default=None, help="first N held-out questions")
    ap.add_argument("--home", type=Path, default=None, help="home (default: a fresh temp dir)")
    ap.add_argument("--cache", type=Path, default=None, help="converted model weights cache")
    ap.add_argument("--json", type=Path, default=None, help="write the report here")
    args = ap.parse_args()

    import opsloop
    from opsloop.loop import DEFAULT_TRAINING
    from opsloop.quickstart import run_docs_loop
    from opsloop.settings import Settings

    training = dict(DEFAULT_TRAINING)
    if args.steps is not None:
        training["max_steps"] = args.steps
    if args.lr is not None:
        training["learning_rate"] = args.lr
    if args.rank is not None:
        training["lora_r"], training["lora_alpha"] = args.rank, 2 * args.rank
    if args.batch is not None:
        training["batch_size"] = args.batch
    home = args.home or Path(tempfile.mkdtemp(prefix="opsloop-loop-gain-"))
    client = opsloop.Client(settings=Settings(home=home, flush_interval_s=60.0))
    last = [""]

    def progress(stage: str, done: int, total: int) -> None:
        if stage != last[0] or done == total or done % 10 == 0:
            print(f"  [{time.strftime('%H:%M:%S')}] {stage} {done}/{total}", flush=True)
            last[0] = stage

    print(f"home {home}; cpus {os.cpu_count()}; training {training}", flush=True)
    t0 = time.perf_counter()
    report = run_docs_loop(
        client,
        train_limit=args.train_limit,
        heldout_limit=args.heldout_limit,
        training=training,
        cache_dir=args.cache,
        progress=progress,
    )
    wall = time.perf_counter() - t0
    client.close()
    print()
    print(f"| docs QA, {report.train_questions} train / {report.heldout_questions} held-out | |")
    print("|---|---|")
    for label, value in report.table():
        print(f"| {label} | {value} |")
    print(f"| time: whole run (docs index included) | {wall:.1f} s |")
    print(f"| v1 / v2 held-out token_f1 | {report.v1_token_f1:.3f} / {report.v2_token_f1:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(report.model_dump(mode="json"), indent=2))


if __name__ == "__main__":
    main()
