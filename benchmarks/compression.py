"""int8 weight quantisation of SmolLM2: size on disk, memory, latency and quality, before and after.

Registers SmolLM2-135M-Instruct as float32 safetensors (what a fine-tuned and
merged model is), quantises it with ``opsloop.registry.quantize_model`` (the
``opsloop models quantize`` command) and measures both versions on the CPU:

- size on disk: the version's files in the registry;
- memory: the weights' bytes in memory, and the resident-set growth of a fresh
  process loading the version (``load_model``);
- latency: median seconds of one docs question answered alone (64 new tokens
  at most, greedy), and generated tokens per second;
- quality: the docs question-answering task's held-out questions through the
  quickstart's pipeline steps (retrieve, prompt, model), ``contains`` (the
  quickstart's quality metric) and ``token_f1``; and, teacher-forced on the
  float32 version's own answers, the mean token NLL under each version and the
  share of those tokens each version ranks first (``top1``: 1.0 for float32).

Three versions: float32, int8 as ``quantize_model`` makes it (SmoothQuant
folded in first) and int8 without smoothing (``smooth_alpha=None``), so the
table shows what the smoothing buys.

    .venv/bin/python benchmarks/compression.py [--limit N] [--cache-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This folder holds datasets.py, which would shadow the `datasets` package sentence-transformers
# imports: run with the repository root (not this folder) on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

_RSS = """
import json, sys, psutil
from opsloop import Client
from opsloop.registry import load_model
p = psutil.Process()
c = Client(home=sys.argv[1])
before = p.memory_info().rss
m = load_model(sys.argv[2], client=c, cache_dir=sys.argv[3], device="cpu")
print(json.dumps({"rss_mb": (p.memory_info().rss - before) / 2**20}))
"""


def load_rss_mb(home: Path, uri: str, cache: Path) -> float:
    """Resident-set growth (MiB) of a fresh process loading ``uri``."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS, str(home), uri, str(cache)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["rss_mb"])


def report(rows: list[dict[str, Any]]) -> str:
    """The before/after table, with the after/before ratio of each figure."""
    cols = [
        ("disk_mb", "disk MB", "{:.1f}"),
        ("weights_mb", "weights MB", "{:.1f}"),
        ("rss_mb", "load RSS MB", "{:.1f}"),
        ("p50_s", "p50 s/answer", "{:.2f}"),
        ("tokens_per_s", "tokens/s", "{:.1f}"),
        ("contains", "contains", "{:.3f}"),
        ("token_f1", "token_f1", "{:.3f}"),
        ("nll", "NLL", "{:.3f}"),
        ("top1", "top1", "{:.3f}"),
    ]
    lines = [f"{'version':<28}" + "".join(f"{h:>14}" for _, h, _ in cols)]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r['label']:<28}" + "".join(f"{f.format(r[k]):>14}" for k, _, f in cols))
    a = rows[0]
    for b in rows[1:]:
        lines.append(
            f"{b['short'] + ' / float32':<28}"
            + "".join(f"{(b[k] / a[k] if a[k] else float('nan')):>14.2f}" for k, _, _ in cols)
        )
    return "\n".join(lines)


def forced(lm: Any, chats: list[str], answers: list[str]) -> tuple[float, float]:
    """Mean token NLL of ``answers`` after ``chats`` under ``lm``, and its top-1 agreement."""
    import torch

    nll, top1, n = 0.0, 0, 0
    for chat, answer in zip(chats, answers, strict=True):
        p = lm.tokenizer(chat, return_tensors="pt", add_special_tokens=False).input_ids
        a = lm.tokenizer(answer, return_tensors="pt", add_special_tokens=False).input_ids
        if a.shape[1] == 0:
            continue
        ids = torch.cat([p, a], dim=1)
        with torch.no_grad():
            logits = lm.model(ids).logits[0, p.shape[1] - 1 : -1].float()
        target = a[0]
        nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        top1 += int((logits.argmax(-1) == target).sum())
        n += target.numel()
    return nll / max(n, 1), top1 / max(n, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="first N held-out questions only")
    ap.add_argument("--latency-questions", type=int, default=5)
    ap.add_argument("--cache-dir", type=Path, default=None, help="converted model weights")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import opsloop
    from opsloop.quickstart import docs_questions
    from opsloop.quickstart._docs_eval import (
        build_docs_index,
        docs_prompts,
        generate_docs_answers,
        score_docs_answers,
    )
    from opsloop.registry import Registry, bundled_gguf, load_model, quantize_model
    from opsloop.registry.flavors._int8 import weight_bytes
    from opsloop.registry.flavors._transformers import converted_gguf_dir

    rows = docs_questions("heldout")
    if args.limit:
        rows = rows[: args.limit]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opsloop-compress-") as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        home = Path(tmp) / "home"
        client = opsloop.Client(home=home)
        try:
            fp32 = converted_gguf_dir(bundled_gguf("smollm2", cache_dir=cache / "assembled"), cache)
            reg = Registry(client)
            v1 = reg.register(
                "smol", fp32, flavor="transformers", options={"model_id": "SmolLM2-135M-Instruct"}
            )
            t0 = time.perf_counter()
            v2 = quantize_model(client, v1.uri, cache_dir=cache)
            print(f"quantised {v1.uri} -> {v2.uri} in {time.perf_counter() - t0:.1f}s", flush=True)
            v3 = quantize_model(client, v1.uri, cache_dir=cache, smooth_alpha=None)
            build_docs_index(client, cache_dir=cache)
            prompts = docs_prompts(client, rows, cache_dir=cache)
            reference: list[str] = []
            for label, short, mv in (
                ("float32", "float32", v1),
                ("int8 SmoothQuant", "int8 smooth", v2),
                ("int8 unsmoothed", "int8 plain", v3),
            ):
                lm = load_model(mv.uri, client=client, cache_dir=cache, device="cpu")
                times, tokens = [], 0
                chat = [
                    lm.apply_chat_template([{"role": "user", "content": p}])
                    for p in prompts[: args.latency_questions]
                ]
                lm.generate(chat[:1], max_new_tokens=8)  # warm-up
                for text in chat:
                    t0 = time.perf_counter()
                    r = lm.generate([text], max_new_tokens=64)[0]
                    times.append(time.perf_counter() - t0)
                    tokens += r.completion_tokens
                answers = generate_docs_answers(lm, prompts)
                scores = score_docs_answers(answers, rows)
                every = [lm.apply_chat_template([{"role": "user", "content": p}]) for p in prompts]
                reference = reference or answers
                nll, top1 = forced(lm, every, reference)
                results.append(
                    {
                        "label": f"{label} {mv.uri}",
                        "short": short,
                        "nll": nll,
                        "top1": top1,
                        "disk_mb": mv.size / 1e6,
                        "weights_mb": weight_bytes(lm.model) / 1e6,
                        "rss_mb": load_rss_mb(home, mv.uri, cache),
                        "p50_s": statistics.median(times),
                        "tokens_per_s": tokens / sum(times),
                        **scores,
                        "answers": answers,
                    }
                )
                print(f"  {label}: contains {scores['contains']:.3f}", flush=True)
                del lm
        finally:
            client.close()
    print()
    print(f"SmolLM2-135M-Instruct on the CPU, docs QA held-out questions ({len(rows)})")
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
