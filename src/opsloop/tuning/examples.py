"""Ready objectives: for the docs, the CLI (``--objective opsloop.tuning.examples:quadratic``),
the quickstart, the tests and the benchmark.

- ``quadratic``: a trivial objective (minimise ``(x - 2)^2 + (y + 1)^2``).
- ``tabular``: a real scikit-learn classifier on the breast-cancer dataset
  bundled with scikit-learn; returns ``f1`` and logs ``train_seconds`` and
  ``latency_ms`` (so a study can minimise either too).
- ``sgd_epochs``: an SGD classifier trained epoch by epoch, reporting
  validation accuracy each epoch (so a pruner can stop bad trials early).
- ``rag_settings``: a cheap stand-in for LLM-application settings (prompt
  version, temperature, retrieval top-k, chunk size): word-overlap retrieval
  and a rule-based "model" over a small built-in corpus, scored as
  ``accuracy`` (maximise) and ``context_tokens`` (minimise). Instant and
  deterministic, for tests and the benchmark; no LLM runs.
- ``rag_objective(corpus, questions, prompt=...)``: the real thing (another
  name of ``RagObjective``), an objective that runs a real RAG pipeline
  (MiniLM retrieval, a registered prompt's versions, a real LLM) and scores it
  with an evaluation metric
  (``RAG_PIPELINE_SPACE``; see ``opsloop.tuning._llm_objective``).

Each has a matching search space (``*_SPACE``). scikit-learn is imported
only inside the functions that need it.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Any

from opsloop.tuning._space import Categorical, Float, Int, SearchSpace
from opsloop.tuning._trial import Trial

# ---------------------------------------------------------------------- quadratic

QUADRATIC_SPACE: SearchSpace = {"x": Float(-10, 10), "y": Float(-10, 10)}


def quadratic(trial: Trial) -> float:
    """``(x - 2)^2 + (y + 1)^2``: the minimum 0 is at x=2, y=-1."""
    x, y = trial.params["x"], trial.params["y"]
    return float((x - 2) ** 2 + (y + 1) ** 2)


# ---------------------------------------------------------------------- tabular


TABULAR_SPACE: SearchSpace = {
    "model": Categorical(["rf", "logreg"]),
    "n_estimators": Int(5, 60),
    "max_depth": Int(1, 8),
    "C": Float(1e-4, 10.0, log=True),
}


@functools.lru_cache(maxsize=1)
def _breast_cancer() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    return X_train, X_val, y_train, y_val


def tabular(trial: Trial) -> dict[str, float]:
    """Train a random forest or a logistic regression; return the validation ``f1``.

    Also logs ``train_seconds`` (``trial.timer``) and ``latency_ms`` (median
    prediction time for the whole validation set), so a multi-objective
    study can trade ``f1`` against either.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_val, y_train, y_val = _breast_cancer()
    p = trial.params
    if p.get("model", "rf") == "rf":
        model: Any = RandomForestClassifier(
            n_estimators=int(p.get("n_estimators", 20)),
            max_depth=int(p.get("max_depth", 4)),
            random_state=0,
            n_jobs=1,
        )
    else:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=float(p.get("C", 1.0)), max_iter=500)
        )
    with trial.timer("train_seconds"):
        model.fit(X_train, y_train)
    trial.measure_latency(model.predict, X_val, key="latency_ms", repeats=3)
    return {"f1": float(f1_score(y_val, model.predict(X_val)))}


# ---------------------------------------------------------------------- pruning

SGD_SPACE: SearchSpace = {"eta0": Float(1e-5, 1.0, log=True), "alpha": Float(1e-6, 1e-1, log=True)}


def sgd_epochs(trial: Trial, epochs: int = 10) -> float:
    """A linear classifier trained one epoch at a time; reports accuracy per epoch (prunable)."""
    import numpy as np
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    X_train, X_val, y_train, y_val = _breast_cancer()
    scaler = StandardScaler().fit(X_train)
    Xt, Xv = scaler.transform(X_train), scaler.transform(X_val)
    clf = SGDClassifier(
        learning_rate="constant",
        eta0=trial.params["eta0"],
        alpha=trial.params["alpha"],
        random_state=0,
    )
    classes = np.unique(y_train)
    acc = 0.0
    for epoch in range(epochs):
        clf.partial_fit(Xt, y_train, classes=classes)
        acc = float(clf.score(Xv, y_val))
        trial.report(acc, epoch, prune=True)
    return acc


# ---------------------------------------------------------------------- LLM settings

RAG_SPACE: SearchSpace = {
    "prompt_version": Categorical(["qa@1", "qa@2", "qa@3"]),
    "temperature": Float(0.0, 1.2),
    "top_k": Int(1, 6),
    "chunk_size": Categorical([8, 16, 32, 64]),
}

_CORPUS = [
    "The Danube flows through ten countries and empties into the Black Sea. "
    "Its source is in the Black Forest of Germany.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa. "
    "Its summit is called Uhuru Peak.",
    "The Atacama Desert in Chile is one of the driest places on Earth. "
    "Some of its weather stations have never recorded rain.",
    "Lake Baikal in Siberia is the deepest lake in the world. "
    "It holds about a fifth of the fresh surface water on Earth.",
    "The Amazon rainforest spans nine countries. Most of it lies in Brazil, "
    "and the Amazon river carries more water than any other river.",
    "Iceland sits on the Mid-Atlantic Ridge. Its capital is Reykjavik, "
    "and geothermal plants heat most of its homes.",
]
_QUESTIONS = [
    ("Into which sea does the Danube empty?", "black"),
    ("What is the summit of Kilimanjaro called?", "uhuru"),
    ("In which country is the Atacama Desert?", "chile"),
    ("Which lake is the deepest in the world?", "baikal"),
    ("In which country does most of the Amazon rainforest lie?", "brazil"),
    ("What is the capital of Iceland?", "reykjavik"),
    ("Where is the source of the Danube?", "forest"),
    ("In which region is Lake Baikal?", "siberia"),
]
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "in",
        "is",
        "and",
        "to",
        "its",
        "which",
        "what",
        "into",
        "does",
        "where",
        "most",
        "it",
        "on",
        "any",
    ]
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _chunks(chunk_size: int) -> list[list[str]]:
    out: list[list[str]] = []
    for doc in _CORPUS:
        w = _words(doc)
        out.extend(w[i : i + chunk_size] for i in range(0, len(w), chunk_size))
    return out


def rag_settings(trial: Trial) -> dict[str, float]:
    """Score RAG settings on a small QA set: ``accuracy`` and ``context_tokens`` per question.

    A cheap, model-free stand-in (for tests and the benchmark): the real
    objective, which runs a retriever, registry prompts and an LLM and scores
    them with an evaluation metric, is ``rag_objective`` (below).

    Retrieval ranks chunks by words shared with the question and keeps
    ``top_k``. The "model" answers with a word of the context: prompt
    ``qa@1`` reads only the first chunk, ``qa@2`` all of them, ``qa@3`` all
    of them but prefers words near the question's words. Temperature makes
    it pick a random context word instead, with probability
    ``temperature / 2`` (seeded by the trial number, so reruns agree).
    """
    p = trial.params
    chunks = _chunks(int(p["chunk_size"]))
    rng = random.Random(trial.number)
    correct = 0
    tokens = 0
    for question, answer in _QUESTIONS:
        q = set(_words(question)) - _STOP
        ranked = sorted(chunks, key=lambda c: -len(q & set(c)))[: int(p["top_k"])]
        tokens += sum(len(c) for c in ranked) + len(_words(question))
        context = ranked[:1] if p["prompt_version"] == "qa@1" else ranked
        words = [w for c in context for w in c if w not in q and w not in _STOP]
        if not words:
            continue
        if rng.random() < float(p["temperature"]) / 2:
            guess = rng.choice(words)
        elif p["prompt_version"] == "qa@3":
            guess = answer if answer in words else words[0]
        else:
            guess = answer if answer in words[: max(3, len(words) // 2)] else words[-1]
        correct += guess == answer
    n = len(_QUESTIONS)
    trial.log_metric("context_tokens", tokens / n)
    return {"accuracy": correct / n, "context_tokens": tokens / n}


# ---------------------------------------------------------------------- LLM settings, for real

from opsloop.tuning._llm_objective import (  # noqa: E402 - the real RAG objective, after the stand-in
    RAG_PIPELINE_SPACE,
    RagObjective,
    RagResult,
    rag_objective,
)

__all__ = [
    "QUADRATIC_SPACE",
    "RAG_PIPELINE_SPACE",
    "RAG_SPACE",
    "SGD_SPACE",
    "TABULAR_SPACE",
    "RagObjective",
    "RagResult",
    "quadratic",
    "rag_objective",
    "rag_settings",
    "sgd_epochs",
    "tabular",
]
