"""Distillation on the docs QA task: a teacher answers, the student learns its answers.

The teacher (default ``local:gemma3``, Gemma 3 270M, twice the student's
parameters; any provider spec works: ``models:/NAME@ALIAS``,
``openai:MODEL@URL``) answers the quickstart's docs questions of the
``train`` split through the docs pipeline's retrieve and prompt steps
(MiniLM index of README.md and docs/*.md, k=3). ``Finetune.distill`` turns
its answers into a dataset version and trains a LoRA adapter on the student
(SmolLM2-135M-Instruct, registered as float32 safetensors); the adapter is
merged into the student's next version. Then the teacher, the student before
and the student after are measured the way ``benchmarks/compression.py``
measures: size on disk, weights in memory and a fresh process's resident-set
growth (students), median seconds per answer alone and tokens per second,
and quality on the ``heldout`` questions (``contains``, the quickstart's
quality metric, and ``token_f1``)::

    .venv/bin/python benchmarks/distillation.py [--teacher local:gemma3] [--steps 30]
        [--limit N] [--cache-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This folder holds datasets.py, which would shadow the `datasets` package sentence-transformers
# imports: run with the repository root (not this folder) on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def _compression() -> Any:
    """benchmarks/compression.py (its table and its fresh-process memory probe)."""
    spec = importlib.util.spec_from_file_location("bench_compression", _HERE / "compression.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _latency(answer_one: Any, prompts: list[str]) -> tuple[float, float]:
    """Median seconds per answer alone, and generated tokens per second."""
    answer_one(prompts[0], 8)  # warm-up
    times, tokens = [], 0
    for p in prompts:
        t0 = time.perf_counter()
        tokens += answer_one(p, 64)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), tokens / sum(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", default="local:gemma3", help="the teacher's provider spec")
    ap.add_argument("--steps", type=int, default=30, help="training steps")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--limit", type=int, default=0, help="first N questions of each split only")
    ap.add_argument("--latency-questions", type=int, default=5)
    ap.add_argument("--cache-dir", type=Path, default=None, help="converted model weights")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import opsloop
    from opsloop.llm import get_provider
    from opsloop.loop import DEFAULT_TRAINING
    from opsloop.quickstart import docs_questions
    from opsloop.quickstart._docs_eval import (
        build_docs_index,
        docs_prompts,
        generate_docs_answers,
        score_docs_answers,
    )
    from opsloop.registry import Registry, bundled_gguf, load_model
    from opsloop.registry.flavors._int8 import weight_bytes
    from opsloop.registry.flavors._transformers import converted_gguf_dir

    comp = _compression()
    train, held = docs_questions("train"), docs_questions("heldout")
    if args.limit:
        train, held = train[: args.limit], held[: args.limit]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-distill-") as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        home = Path(tmp) / "home"
        client = opsloop.Client(home=home)
        try:
            t_start = time.perf_counter()
            fp32 = converted_gguf_dir(bundled_gguf("smollm2", cache_dir=cache / "assembled"), cache)
            v1 = Registry(client).register(
                "student", fp32, flavor="transformers",
                options={"model_id": "SmolLM2-135M-Instruct"},
            )  # fmt: skip
            build_docs_index(client, cache_dir=cache)
            train_prompts = docs_prompts(client, train, cache_dir=cache)
            held_prompts = docs_prompts(client, held, cache_dir=cache)
            prompts = client.datasets.create("docs-train-prompts", [
                {"prompt": p} for p in train_prompts
            ])  # fmt: skip

            # The teacher on the held-out questions (quality and latency), before it teaches.
            with get_provider(args.teacher, client=client, cache_dir=cache) as teacher:
                def teacher_one(prompt: str, n: int) -> int:
                    r = teacher.chat([{"role": "user", "content": prompt}], max_tokens=n)
                    return int(r.usage.completion_tokens)

                answers = [
                    r.text.strip()
                    for i in range(0, len(held_prompts), 8)
                    for r in teacher.batch_chat(
                        [[{"role": "user", "content": p}] for p in held_prompts[i : i + 8]],
                        max_tokens=64,
                    )
                ]
                p50, tps = _latency(teacher_one, held_prompts[: args.latency_questions])
            gguf = Path(bundled_gguf(args.teacher.split(":", 1)[1], cache_dir=cache / "assembled")) \
                if args.teacher.startswith("local:") else None
            results.append({
                "label": f"teacher {args.teacher}",
                "disk_mb": gguf.stat().st_size / 1e6 if gguf else float("nan"),
                "weights_mb": float("nan"), "rss_mb": float("nan"),
                "p50_s": p50, "tokens_per_s": tps,
                **score_docs_answers(answers, held), "answers": answers,
            })  # fmt: skip
            print(f"  teacher: contains {results[-1]['contains']:.3f}", flush=True)

            t0 = time.perf_counter()
            training = {**DEFAULT_TRAINING, "max_steps": args.steps, "learning_rate": args.lr}
            job = client.finetune.distill(
                args.teacher, prompts.ref, base_model=v1.uri, max_tokens=64, foreground=True,
                cache_dir=str(cache), output_model="student-distilled", **training,
                progress=lambda step, total, m: print(f"  train {step}/{total}", flush=True)
                if step % 10 == 0 else None,
            )  # fmt: skip
            if job.state != "succeeded" or not job.result_uri:
                raise SystemExit(f"the distillation job ended {job.state}: {job.error}")
            v2 = client.finetune.merge(job.result_uri, "student", cache_dir=cache)
            distill_s = time.perf_counter() - t0
            print(f"distilled in {distill_s:.0f}s -> {v2.uri}", flush=True)

            for label, mv in (("student before", v1), ("student after", v2)):
                lm = load_model(mv.uri, client=client, cache_dir=cache, device="cpu")

                def student_one(prompt: str, n: int, lm: Any = lm) -> int:
                    text = lm.apply_chat_template([{"role": "user", "content": prompt}])
                    return int(lm.generate([text], max_new_tokens=n)[0].completion_tokens)

                p50, tps = _latency(student_one, held_prompts[: args.latency_questions])
                answers = generate_docs_answers(lm, held_prompts)
                results.append({
                    "label": f"{label} {mv.uri}",
                    "disk_mb": mv.size / 1e6,
                    "weights_mb": weight_bytes(lm.model) / 1e6,
                    "rss_mb": comp.load_rss_mb(home, mv.uri, cache),
                    "p50_s": p50, "tokens_per_s": tps,
                    **score_docs_answers(answers, held), "answers": answers,
                })  # fmt: skip
                print(f"  {label}: contains {results[-1]['contains']:.3f}", flush=True)
                del lm
            wall = time.perf_counter() - t_start
        finally:
            client.close()
    print()
    print(
        f"Distillation, docs QA: {len(train)} train prompts answered by {args.teacher}, "
        f"{args.steps} LoRA steps; {len(held)} held-out questions; "
        f"distill + merge {distill_s:.0f}s, whole run {wall:.0f}s"
    )
    print(comp.report(results))
    a, b = results[1], results[2]
    print(f"student after / before: contains {b['contains'] - a['contains']:+.3f} absolute")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
