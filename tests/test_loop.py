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
from opsloop.errors import InvalidArgument
from opsloop.loop import GATE_METRIC, STAGES, LoopReport, check_lineage, run_loop
from opsloop.settings import Settings
from tests.conftest import live_server

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
# Version 1 gets 4 new tokens: it opens with "The kettle warranty lasts..." and never
# reaches the answer, while the references are the answers alone ("two years", "Lisbon"),
# so a few steps learnt hard on them make version 2 answer first: a gain the gate promotes.
PROMOTING = {**SMALL, "max_steps": 8, "learning_rate": 5e-3}


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


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[tuple[opsloop.Client, LoopReport, dict[str, int]]]:
    """One small loop (4 train, 4 held-out questions, 8 steps) that promotes, shared below."""
    c = _client(tmp_path_factory.mktemp("loop"))
    stages: dict[str, int] = {}
    report = run_loop(
        c, train=TRAIN, heldout=HELDOUT, index="kb-index", model="kettle-qa", k=2,
        max_tokens=4, training=PROMOTING, n_bootstrap=300, cache_dir=model_cache,
        progress=lambda stage, done, total: stages.__setitem__(stage, done),
    )  # fmt: skip
    yield c, report, stages
    c.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_loop_runs_every_stage_and_its_lineage_is_complete(
    small: tuple[opsloop.Client, LoopReport, dict[str, int]],
) -> None:
    c, report, stages = small
    art = report.artifacts
    print(report.table())
    assert list(report.stage_seconds) == list(STAGES) and set(stages) == set(STAGES)
    assert stages["replay"] == len(TRAIN) and stages["finetune"] == PROMOTING["max_steps"]
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
    # Version 2 answers first and version 1 never gets there: the gain's interval is above
    # zero, the gate passes and the alias moves (the refused path: the harmful test below).
    assert report.v1_quality == 0 and report.gain >= 0.75 and report.ci_low > 0
    assert report.promoted and "moved to v2" in report.decision
    assert c.registry.resolve("models:/kettle-qa@prod").version == 2
    moves = [e for e in c.registry.history("kettle-qa", version=2) if e.action == "alias_set"]
    assert [e.id for e in moves] == [art.alias_event_id]
    assert c.get_run(art.eval_run_v2).metrics[GATE_METRIC].value == pytest.approx(report.ci_low)
    loop_run = c.get_run(art.loop_run_id)
    assert loop_run.status == "FINISHED" and loop_run.tags["opsloop.loop.job"] == art.job_id
    lineage = check_lineage(c, report)
    assert lineage.complete, lineage.missing
    assert lineage.links["trace->annotation"] == 4 and lineage.links["dataset->job_run"] == 1
    assert lineage.links["evaluation->alias_move"] == 1
    # Cutting one arrow is noticed: the job run no longer reads the dataset version.
    cut = report.model_copy(deep=True)
    cut.artifacts.job_run_id = art.eval_run_v1
    assert any(m.startswith("dataset->job_run") for m in check_lineage(c, cut).missing)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_new_feedback_triggers_the_shipped_feedback_loop_workflow(
    small: tuple[opsloop.Client, LoopReport, dict[str, int]], model_cache: Path
) -> None:
    """``opsloop.workflows.shipped:feedback_loop`` on the feedback the small loop left, run
    by a ``feedback.created`` trigger: dataset, job, merged version, paired test, gate."""
    from opsloop.registry import bundled_gguf
    from opsloop.workflows import Workflows
    from opsloop.workflows.shipped import feedback_loop

    c, report, _ = small
    v1 = c.registry.register(
        "kettle-wf", str(bundled_gguf("smollm2")), flavor="transformers",
        options={"model_id": "SmolLM2-135M-Instruct"},
    )  # fmt: skip
    c.registry.set_alias("kettle-wf", "prod", v1.version)
    wf = Workflows(c)
    params = {
        "model": "kettle-wf", "alias": "prod", "heldout": report.artifacts.heldout_dataset,
        "index": "kb-index", "k": 2, "max_tokens": 4, "training": SMALL,
        "n_bootstrap": 300, "min_rows": 4, "store": str(c.settings.home),
        "cache_dir": str(model_cache),
    }  # fmt: skip
    wf.on("improve", feedback_loop, "feedback.created", params, every=2)
    # A user's two thumbs on the loop's traces: the second is the trigger's 2nd event.
    for trace_id in report.artifacts.traces[:2]:
        c.feedback.annotate("thumbs", True, trace_id=trace_id, source="human", author="alice")
    assert wf.dispatch() == 1
    assert wf.dispatch() == 0  # acted on once
    (event,) = [e for e in wf.events(trigger="improve") if e.status == "done"]
    run_id = event.run_id or ""
    steps = {s.name: s for s in wf.steps(run_id)}
    assert set(steps) == {"feedback_data", "finetune", "compare_versions", "promote"}
    assert all(s.status == "ran" for s in steps.values()), steps
    data = wf.output(run_id, "feedback_data")
    assert data["rows"] >= len(TRAIN) and data["dataset"].startswith("kettle-wf-feedback@")
    tuned = wf.output(run_id, "finetune")
    assert (tuned["v1"], tuned["version"]) == (1, 2)
    mv2 = c.registry.get_version("kettle-wf", 2)
    assert mv2.flavor == "transformers" and mv2.source_run_id == tuned["job_run_id"]
    assert c.finetune.get(tuned["job_id"]).state == "succeeded"
    compared = wf.output(run_id, "compare_versions")
    e1 = c.evaluation.get(compared["eval_run_v1"])
    e2 = c.evaluation.get(compared["eval_run_v2"])
    assert compared["v1_quality"] == pytest.approx(e1.metrics["contains"])
    assert compared["v2_quality"] == pytest.approx(e2.metrics["contains"])
    assert len(e1.examples) == len(e2.examples) == len(HELDOUT)
    gain_run = c.get_run(compared["eval_run_v2"])
    assert gain_run.metrics[GATE_METRIC].value == pytest.approx(compared["ci_low"])
    # The gate decided by the interval, and the alias followed the decision.
    gate = wf.output(run_id, "promote")
    assert gate["promoted"] == (compared["ci_low"] is not None and compared["ci_low"] > 0)
    holder = c.registry.resolve("models:/kettle-wf@prod").version
    assert holder == (2 if gate["promoted"] else 1), gate


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_feedback_loop_workflow_refuses_bad_parameters_and_skips_without_feedback(
    tmp_path: Path,
) -> None:
    from opsloop.workflows import Workflows
    from opsloop.workflows.shipped import feedback_loop

    with opsloop.Client(settings=Settings(home=tmp_path / "home")) as c:
        wf = Workflows(c)
        with pytest.raises(InvalidArgument, match="needs heldout="):
            wf.run(feedback_loop, {"index": "kb-index"})
        with pytest.raises(InvalidArgument, match="alias 'no/slash' is not valid"):
            wf.run(feedback_loop, {"heldout": "h", "index": "i", "alias": "no/slash"})
        store = str(c.settings.home)
        res = wf.run(feedback_loop, {"heldout": "h", "index": "i", "store": store})
        assert res.status == "FINISHED"
        gate = wf.output(res.run_id, "promote")
        assert "no feedback makes a sft example" in gate["skipped"]
        assert c.registry.list_models() == [] and c.finetune.list() == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_harmful_adapter_is_refused_by_the_gate(tmp_path: Path, model_cache: Path) -> None:
    c = _client(tmp_path)
    seen: list[Any] = []
    try:
        # Feedback that "corrects" every answer to nonsense, learnt hard: a harmful adapter.
        report = run_loop(
            c, train=TRAIN, heldout=HELDOUT, index="kb-index", model="kettle-bad", k=2,
            max_tokens=16, n_bootstrap=300, cache_dir=model_cache,
            correction=lambda row: seen.append(row) or "purple banana",
            training={**SMALL, "max_steps": 8, "learning_rate": 5e-3},
        )  # fmt: skip
        print(report.table())
        # The correction saw each row with the prompt the model got and the answer it gave.
        assert [r["id"] for r in seen] == [r["id"] for r in TRAIN]
        assert all(r["question"] in r["prompt"] and "response" in r for r in seen)
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


@pytest.mark.ui
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_loop_page_draws_every_arrow(
    small: tuple[opsloop.Client, LoopReport, dict[str, int]], browser: Any
) -> None:
    c, report, _ = small
    _check_loop_page(browser, c, report)


def _check_loop_page(browser: Any, c: opsloop.Client, report: LoopReport) -> None:
    art = report.artifacts
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with live_server(Settings(home=c.settings.home)) as srv:
        page.goto(f"{srv.url}/ui/#/loop/{art.loop_run_id}")
        page.get_by_test_id("loop-report").wait_for()
        page.locator("svg[data-drawn='1']").wait_for()
        kinds = page.locator("[data-testid=lineage-node]").evaluate_all(
            "els => els.map(e => e.dataset.kind)"
        )
        assert set(kinds) == {
            "trace",
            "annotation",
            "dataset",
            "run",
            "model",
            "evaluation",
            "alias",
        }
        assert kinds.count("model") == 3  # v1, the adapter, v2
        text = page.get_by_test_id("loop-report").inner_text()
        assert f"{report.v1_quality:.3f}" in text and f"{report.v2_quality:.3f}" in text
        labels = page.locator("[data-testid=lineage-node]").evaluate_all(
            "els => els.map(e => e.textContent)"
        )
        assert any(f"{len(art.traces)} traces" in t for t in labels)
        assert any(f"kettle-qa v{art.v2}" in t for t in labels)
        # A run that is not a loop says so.
        page.goto(f"{srv.url}/ui/#/loop/{art.job_run_id}")
        page.get_by_text("This run holds no loop report.").wait_for()
    ctx.close()
    assert errors == []


def test_bad_arguments_are_refused_before_anything_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opsloop.cli import app

    home = str(tmp_path / "home")

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, ["loop", "run", "--home", home, *args])

    for args, words in (
        (("--model", "bad name"), "model name 'bad name' is not valid"),
        (("--alias", "no/slash"), "alias 'no/slash' is not valid"),
        (("--lr", "5"), "invalid training settings"),
    ):
        res = cli(*args)
        assert res.exit_code == 1, res.output
        assert f"error [INVALID_ARGUMENT]: {words}" in res.output and "Traceback" not in res.output
    # Nothing was indexed, registered or run.
    with opsloop.Client(settings=Settings(home=tmp_path / "home")) as c:
        assert c.registry.list_models() == [] and c.datasets.list() == []
    with (
        opsloop.Client(settings=Settings(home=tmp_path / "h2")) as c2,
        pytest.raises(InvalidArgument, match="needs a non-empty 'question'"),
    ):
        run_loop(c2, train=[{"question": "q"}], heldout=HELDOUT, index="none")
