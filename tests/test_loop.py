"""The loop, for real: SmolLM2 served, replayed, annotated, fine-tuned, evaluated and gated.

Each test has its own home (the feedback export reads every annotation of a
home), a three-document collection indexed with MiniLM, and a few questions;
jobs train a handful of steps, so the gain is whatever it is: the tests check
that every stage ran, that the decision follows the interval, that a harmful
adapter is refused, and that every arrow of the lineage is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.loop import GATE_METRIC, STAGES, check_lineage, run_loop
from opsloop.settings import Settings

DOCS = {
    "warranty.md": "# Warranty\n\nThe kettle warranty lasts two years.\n",
    "shipping.md": "# Shipping\n\nOrders ship from Lisbon within three days.\n",
    "colours.md": "# Colours\n\nThe kettle comes in red, black and white.\n",
}
TRAIN = [
    {"id": "t1", "question": "How long does the kettle warranty last?", "answer": ["two years"]},
    {"id": "t2", "question": "Where do orders ship from?", "answer": ["Lisbon"]},
    {"id": "t3", "question": "Within how many days do orders ship?", "answer": ["three days"]},
    {"id": "t4", "question": "Which colours does the kettle come in?", "answer": ["red"]},
]
HELDOUT = [
    {"id": "h1", "question": "What is the length of the kettle warranty?", "answer": ["two years"]},
    {"id": "h2", "question": "From which city are orders shipped?", "answer": ["Lisbon"]},
    {"id": "h3", "question": "How quickly do orders ship?", "answer": ["three days"]},
    {"id": "h4", "question": "Name a colour of the kettle.", "answer": ["red", "black", "white"]},
]
SMALL = {"max_steps": 2, "batch_size": 2, "max_length": 384, "logging_steps": 1}


def _client(tmp: Path) -> opsloop.Client:
    from opsloop.pipelines import build_rag_index

    client = opsloop.Client(settings=Settings(home=tmp / "home", flush_interval_s=60.0))
    docs = tmp / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    v = client.datasets.create("kb", docs, kind="documents", chunking={"size": 300, "overlap": 30})
    build_rag_index(client, f"kb@{v.version}", "kb-index")
    return client


@pytest.fixture()
def loop_client(tmp_path: Path) -> Iterator[opsloop.Client]:
    client = _client(tmp_path)
    yield client
    client.close()


@pytest.mark.timeout(900)
def test_the_loop_runs_every_stage_and_its_lineage_is_complete(
    loop_client: opsloop.Client, model_cache: Path
) -> None:
    c = loop_client
    stages: dict[str, int] = {}
    report = run_loop(
        c, train=TRAIN, heldout=HELDOUT, index="kb-index", model="kettle-qa", k=2,
        max_tokens=16, training=SMALL, n_bootstrap=300, cache_dir=model_cache,
        progress=lambda stage, done, total: stages.__setitem__(stage, done),
    )  # fmt: skip
    art = report.artifacts
    print(report.table())
    assert list(report.stage_seconds) == list(STAGES) and set(stages) == set(STAGES)
    assert stages["replay"] == len(TRAIN) and stages["finetune"] == SMALL["max_steps"]
    assert report.train_questions == 4 and report.heldout_questions == 4
    assert art.v1 == 1 and art.v2 == 2 and len(art.traces) == 4 and len(art.annotations) == 8
    # The job's adapter sits on version 1; merged, it is version 2 of the same model.
    adapter = c.registry.resolve(art.adapter)
    assert adapter.flavor == "peft" and adapter.metadata["base_model"] == "models:/kettle-qa/1"
    mv2 = c.registry.get_version("kettle-qa", 2)
    assert mv2.flavor == "transformers" and mv2.source_run_id == art.job_run_id
    # The dataset's rows are the replayed prompts (retrieved context included) -> references.
    rows = c.datasets.rows(art.dataset).rows
    assert sorted(r["response"] for r in rows) == sorted(r["answer"][0] for r in TRAIN)
    assert all("Lisbon" in r["prompt"] or "kettle" in r["prompt"] for r in rows)
    # Quality figures come from the stored evaluation runs; the gain is their difference.
    e1, e2 = c.evaluation.get(art.eval_run_v1), c.evaluation.get(art.eval_run_v2)
    assert report.v1_quality == pytest.approx(e1.metrics["contains"])
    assert report.v2_quality == pytest.approx(e2.metrics["contains"])
    assert report.gain == pytest.approx(report.v2_quality - report.v1_quality)
    assert report.ci_low is not None and report.ci_low <= report.gain <= (report.ci_high or 9)
    # The decision follows the interval's lower bound, and the alias follows the decision.
    assert report.promoted == (report.ci_low > 0)
    holder = c.registry.resolve("models:/kettle-qa@prod").version
    assert holder == (2 if report.promoted else 1)
    assert c.get_run(art.eval_run_v2).metrics[GATE_METRIC].value == pytest.approx(report.ci_low)
    loop_run = c.get_run(art.loop_run_id)
    assert loop_run.status == "FINISHED" and loop_run.tags["opsloop.loop.job"] == art.job_id
    lineage = check_lineage(c, report)
    assert lineage.complete, lineage.missing
    assert lineage.links["trace->annotation"] == 4 and lineage.links["dataset->job_run"] == 1
    # Cutting one arrow is noticed: the job run no longer reads the dataset version.
    cut = report.model_copy(deep=True)
    cut.artifacts.job_run_id = art.eval_run_v1
    assert any(m.startswith("dataset->job_run") for m in check_lineage(c, cut).missing)


@pytest.mark.timeout(900)
def test_a_harmful_adapter_is_refused_by_the_gate(tmp_path: Path, model_cache: Path) -> None:
    c = _client(tmp_path)
    try:
        # Feedback that "corrects" every answer to nonsense, learnt hard: a harmful adapter.
        report = run_loop(
            c, train=TRAIN, heldout=HELDOUT, index="kb-index", model="kettle-bad", k=2,
            max_tokens=16, n_bootstrap=300, cache_dir=model_cache,
            correction=lambda row: "purple banana",
            training={**SMALL, "max_steps": 8, "learning_rate": 5e-3},
        )  # fmt: skip
        print(report.table())
        # It learnt the nonsense (held-out answers say it), and it is no better than v1.
        e2 = c.evaluation.get(report.artifacts.eval_run_v2)
        assert sum("banana" in str(ex.output).lower() for ex in e2.examples) >= 2
        assert report.v2_quality <= report.v1_quality and report.gain <= 0
        assert not report.promoted and "refused by its promotion gate" in report.decision
        assert c.registry.resolve("models:/kettle-bad@prod").version == 1
        assert report.artifacts.alias_event_id is None
        assert all(e.action != "alias_set" for e in c.registry.history("kettle-bad", version=2))
        lineage = check_lineage(c, report)
        assert lineage.complete, lineage.missing
        # A second loop on the same alias starts from the version it still serves.
        bad_alias: Any = c.registry.resolve("models:/kettle-bad@prod")
        assert bad_alias.flavor == "transformers"
    finally:
        c.close()
