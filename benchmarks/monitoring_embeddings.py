"""Embedding drift with the bundled MiniLM: the effect sizes behind MMD_THRESHOLD.

    PYTHONPATH=src:. .venv/bin/python benchmarks/monitoring_embeddings.py

Short support questions (templates over six billing subjects) are the
reference; windows of 500 rows are drawn from the same templates, or mix in
10% / 30% of questions on a topic the reference lacks (hiking). Prints each
window's MMD effect size and permutation p-value, and the embedding time.
Benchmarks print figures; they assert nothing. See docs/monitoring.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from opsloop.monitoring._text import MMD_THRESHOLD, mmd_drift
from opsloop.retrieval import Embedder

A_SUB = [
    "my invoice",
    "the refund",
    "a late payment",
    "my credit card charge",
    "the monthly bill",
    "a double charge",
]
A_VERB = [
    "Why was I charged for",
    "How do I dispute",
    "Can you explain",
    "I need help with",
    "Please check",
]
B_SUB = [
    "the hiking trail",
    "a good campsite",
    "the mountain weather",
    "my tent",
    "the river crossing",
    "a map of the park",
]
B_VERB = ["Where can I find", "Tell me about", "Is it safe to use", "How far is", "Recommend"]


def main() -> None:
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    rng = np.random.default_rng(0)

    def texts(sub: list[str], verb: list[str], n: int) -> list[str]:
        tails = ["today", "please", "", "again", "now"]
        return [
            f"{rng.choice(verb)} {rng.choice(sub)} {rng.choice(tails)}".strip() for _ in range(n)
        ]

    t0 = time.perf_counter()
    emb = Embedder.bundled()
    print(f"MiniLM load: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    ref = emb.embed(texts(A_SUB, A_VERB, 500))
    windows = {
        "same distribution": emb.embed(texts(A_SUB, A_VERB, 500)),
        "10% new topic": emb.embed(texts(A_SUB, A_VERB, 450) + texts(B_SUB, B_VERB, 50)),
        "30% new topic": emb.embed(texts(A_SUB, A_VERB, 350) + texts(B_SUB, B_VERB, 150)),
    }
    print(f"embedding 2,000 texts: {time.perf_counter() - t0:.1f} s")
    for name, w in windows.items():
        r = mmd_drift(ref, w)
        print(
            f"{name:18}: effect {r['effect_size']:.3f} (threshold {MMD_THRESHOLD}), "
            f"p {r['p_value']:.4f}, drift {r['drift']}"
        )


if __name__ == "__main__":
    main()
