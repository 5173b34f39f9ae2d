"""LLM-app drift: embedding drift (MMD) keeps the tabular drift's calibration, and text
length and script mix are tested like any column.

The embeddings here are synthetic unit vectors (a reference cluster; a shifted window
draws 30% of its rows from a second cluster): the false-alarm rate is simulated on
windows drawn from the reference distribution at 100 and 1,000 rows, and one window of
a million rows (subsampled by the test, as every window above 500 rows is).
"""

from __future__ import annotations

import math

import numpy as np

from opsloop.monitoring._text import mmd_drift, script_of, text_drift

DIM = 16


def _unit(rng: np.random.Generator, n: int, mix: float = 0.0) -> np.ndarray:
    a = rng.normal(size=(n, DIM))
    a[: int(mix * n), 0] += 6.0  # a topic the reference does not have
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_embedding_drift_false_alarms_stay_under_5_percent() -> None:
    rng = np.random.default_rng(0)
    ref = _unit(rng, 2000)
    for n, reps in ((100, 60), (1000, 30)):
        alarms = [mmd_drift(ref, _unit(rng, n), seed=i)["drift"] for i in range(reps)]
        assert np.mean(alarms) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
    million = rng.standard_normal((1_000_000, DIM), dtype=np.float32)
    big = mmd_drift(ref, million / np.linalg.norm(million, axis=1, keepdims=True))
    assert not big["drift"] and big["rows_compared"] == [500, 500]
    assert big["effect_size"] < 0.05 and big["p_value"] is not None


def test_embedding_drift_catches_a_new_topic_in_30_percent_of_1000_rows() -> None:
    rng = np.random.default_rng(1)
    ref = _unit(rng, 2000)
    hits = [mmd_drift(ref, _unit(rng, 1000, mix=0.3), seed=i) for i in range(10)]
    assert all(h["drift"] for h in hits)
    assert all(h["p_value"] < 0.05 and h["effect_size"] >= 0.1 for h in hits)


def test_text_length_and_script_mix() -> None:
    assert script_of("Where is my refund?") == "latin"
    assert script_of("Где мой возврат?") == "cyrillic"
    assert script_of("返金はどこですか") in ("cjk", "hiragana")
    rng = np.random.default_rng(2)
    words = ["refund", "invoice", "card", "charge", "account", "password"]
    ref = [" ".join(rng.choice(words, rng.integers(3, 8))) for _ in range(400)]
    same = [" ".join(rng.choice(words, rng.integers(3, 8))) for _ in range(300)]
    assert not text_drift(ref, same)["drift"]
    mixed = same[:150] + ["Где мой возврат денег за заказ?"] * 150
    rep = text_drift(ref, mixed)
    assert rep["language"]["drift"] and rep["drift"]
