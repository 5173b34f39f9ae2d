"""Embedding drift monitors with the real bundled MiniLM: a window of the reference's topic
raises nothing, a window of another topic opens an alert, the topic coming back resolves it.

The model is loaded once per test process (``opsloop.monitoring._embedding.embedder``);
tens of short texts keep the embedding itself to about a second."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from opsloop import Client
from opsloop.errors import InvalidArgument
from opsloop.monitoring import MonitorRun
from tests.conftest import backend_env

BILLING = [
    t.format(x=x)
    for t in (
        "Why was my {x} charged twice this month?",
        "How do I get a refund for my {x}?",
        "Can I change the card used to pay for my {x}?",
        "My {x} invoice shows the wrong amount, what happened?",
        "Where can I download the receipt for my {x}?",
        "Why did the price of my {x} go up?",
        "How do I cancel the automatic payment for my {x}?",
        "I was billed for a {x} I never ordered.",
        "When will the refund for my {x} reach my bank account?",
        "Is there a discount if I pay for my {x} yearly?",
    )
    for x in (
        "subscription",
        "plan",
        "order",
        "membership",
        "premium account",
        "family plan",
        "storage upgrade",
        "annual licence",
    )
]
COOKING = [
    t.format(x=x)
    for t in (
        "How long should I roast {x} in the oven?",
        "What spices go well with {x}?",
        "Can I freeze leftover {x}?",
        "What is a quick weeknight recipe with {x}?",
        "How do I know when {x} is cooked through?",
    )
    for x in (
        "chicken thighs",
        "salmon",
        "sweet potatoes",
        "lentil soup",
        "mushroom risotto",
        "pork shoulder",
        "chickpea curry",
        "banana bread",
    )
]
WINDOW_MS = 300_000


def _log(client: Client, texts: list[str], start: int, tag: str) -> None:
    client.monitoring.ingest(
        [
            {
                "request_id": f"{tag}-{i}",
                "deployment": "helpdesk",
                "route": "/v1/chat/completions",
                "inputs": {"prompt": t, "prompt_tokens": len(t.split())},
                "output": "Here is what I found.",
                "ts": start + 1_000 + i,
            }
            for i, t in enumerate(texts)
        ]
    )


@pytest.mark.slow
def test_embedding_monitor_alerts_on_a_new_topic_and_resolves(client: Client) -> None:
    mon = client.monitoring
    rnd = random.Random(7)
    billing = BILLING[:]
    rnd.shuffle(billing)
    reference, same_topic = billing[:40], billing[40:]
    ref = client.datasets.create("faq", [{"id": i, "question": q} for i, q in enumerate(reference)])
    mon.create_monitor(
        "helpdesk-topics",
        deployment="helpdesk",
        kind="embedding",
        reference=ref.id,
        features=["question"],
        interval_s=300,
        window_s=300,
        min_rows=30,
    )
    base = (int(time.time() * 1000) // WINDOW_MS - 10) * WINDOW_MS

    def check(k: int) -> MonitorRun:  # the check made 5 s after window k closed
        return mon.run_monitor("helpdesk-topics", now=base + (k + 1) * WINDOW_MS + 5_000)

    _log(client, same_topic, base, "same")
    t0 = time.perf_counter()
    same = check(0)
    assert same.skipped is None and not same.breached and same.alert is None
    assert same.details["embedder"] == "all-MiniLM-L6-v2"
    assert same.details["n_current"] == 40 and same.details["n_reference"] == 40
    assert "p_value" in same.details["length"] and "p_value" in same.details["language"]
    assert not same.details["language"]["drift"]  # English on both sides
    _log(client, COOKING[:40], base + WINDOW_MS, "food")
    other = check(1)
    assert other.breached and other.details["p_value"] < 0.05
    assert other.value is not None and other.value >= 0.1
    assert other.value > 2 * (same.value or 0.0)
    assert other.alert is not None and other.alert.change == "opened"
    assert "input embedding drift" in other.alert.message
    _log(client, same_topic[::-1], base + 2 * WINDOW_MS, "back")
    back = check(2)
    assert not back.breached and back.alert is not None and back.alert.change == "resolved"
    assert time.perf_counter() - t0 < 30  # model loaded once, reference embedded once
    # an empty window is skipped without touching the model
    empty = mon.run_monitor("helpdesk-topics", now=base + 9 * WINDOW_MS + 5_000)
    assert empty.skipped == "fewer than 30 logged texts" and empty.alert is None


@pytest.mark.parametrize("name", ["embedded-sqlite", "remote-sqlite"])
def test_embedding_monitor_bad_input(name: str, tmp_path: Path) -> None:
    with backend_env(name, tmp_path) as env:
        client = env.client
        mon = client.monitoring
        with pytest.raises(InvalidArgument, match="embedding monitor needs a reference"):
            mon.create_monitor("m", deployment="d", kind="embedding")
        ref = client.datasets.create("nums", [{"x": i} for i in range(40)])
        made = mon.create_monitor(
            "m", deployment="d", kind="embedding", reference=ref.id, text="output", min_rows=1
        )
        assert (made.kind, made.text) == ("embedding", "output")
        assert mon.monitor("m").text == "output"
        now = int(time.time() * 1000)
        mon.ingest(
            [
                {
                    "request_id": f"q{i}",
                    "deployment": "d",
                    "inputs": {},
                    "output": f"a {i}",
                    "ts": now,
                }
                for i in range(30)
            ]
        )
        with pytest.raises(InvalidArgument, match="no text column"):
            mon.run_monitor("m", now=now + 120_000)
        assert mon.alerts(monitor="m") == []
