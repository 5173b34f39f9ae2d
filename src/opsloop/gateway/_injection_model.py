"""A prompt-injection classifier: logistic regression on MiniLM sentence embeddings.

Trained when first used (well under a second) on the labelled set shipped in
``gateway/data/injection_train.jsonl`` (30 attacks, a third of them
paraphrases without trigger words, and 30 benign prompts that reuse the
attacks' words), then kept for the process. Patterns only see the phrasings
they were written for; the embedding sees the intent: on 20 attacks and 20
benign prompts written after both were fixed (``benchmarks/gateway_guards.py``)
it catches far more than the patterns (see docs/gateway.md for the figures).
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["InjectionClassifier", "injection_classifier"]

THRESHOLD = 0.5


class InjectionClassifier:
    def __init__(self, embed: Any, texts: list[str], labels: list[bool]) -> None:
        self.embed = embed
        x = self._features(texts)
        y = np.asarray(labels, dtype=np.float64)
        w = np.zeros(x.shape[1])
        b = 0.0
        for _ in range(3000):  # full-batch gradient descent with a little L2: 60 rows
            p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
            g = p - y
            w -= 0.5 * (x.T @ g / len(y) + 1e-3 * w)
            b -= 0.5 * float(g.mean())
        self.w, self.b = w, b

    def _features(self, texts: list[str]) -> np.ndarray:
        v = np.asarray(self.embed(list(texts)), dtype=np.float64)
        n = np.linalg.norm(v, axis=1, keepdims=True)
        out: np.ndarray = v / np.where(n == 0, 1.0, n)
        return out

    def probabilities(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        z = self._features(texts) @ self.w + self.b
        return [float(p) for p in 1.0 / (1.0 + np.exp(-z))]


_LOCK = threading.Lock()
_MODEL: InjectionClassifier | None = None


def injection_classifier() -> InjectionClassifier:
    """The process's classifier, trained on first use with the bundled MiniLM."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            from opsloop.evaluation.metrics import default_embedder  # lazy: loads torch

            raw = resources.files("opsloop.gateway").joinpath("data", "injection_train.jsonl")
            rows = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
            _MODEL = InjectionClassifier(
                default_embedder(), [r["text"] for r in rows], [bool(r["attack"]) for r in rows]
            )
        return _MODEL
