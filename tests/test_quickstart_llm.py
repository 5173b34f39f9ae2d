"""The quickstart's LLM half, for real: the two bundled LLMs compared, the docs QA pipeline
built, registered, asked, traced, served over HTTP and its traces shown in the UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.settings import Settings
from tests.conftest import free_port, live_server

pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> dict[str, Any]:
    from opsloop.quickstart import run_quickstart

    home = tmp_path_factory.mktemp("qs-llm-home")
    settings = Settings(home=home)
    result = run_quickstart(settings, trials=1, tuning_trials=0, llm=True, model_cache=model_cache)
    return {"home": home, "settings": settings, "result": result, "cache": model_cache}


def test_the_two_bundled_llms_are_compared_and_the_choice_registered(done: dict[str, Any]) -> None:
    from opsloop.quickstart._qa_data import GENERAL_QA

    s = done["result"].selection
    rows = {r.candidate: r for r in s.leaderboard}
    assert set(rows) == {"local:smollm2", "local:gemma3"}
    for r in rows.values():
        assert r.examples == len(GENERAL_QA) and r.errors == 0
        assert r.quality is not None and 0.0 <= r.quality <= 1.0
        assert r.p95_latency_ms is not None and r.p95_latency_ms >= (r.p50_latency_ms or 0)
        assert r.memory_mb is not None and r.memory_mb > 50
    assert s.recommendation.candidate in rows
    with opsloop.Client(home=done["home"]) as c:
        mv = c.registry.get_version_by_alias("quickstart-llm", "champion")
        assert mv.tags["selection.run_id"] == s.run_id
        parent = c.get_run(s.run_id)
        children = c.search_runs(parent.experiment_id, filter="tags.`opsloop.role` != 'selection'")
        assert len([r for r in children.runs if r.parent_run_id == parent.id]) == 2


def test_docs_questions_are_answered_with_citations_and_traced(done: dict[str, Any]) -> None:
    from opsloop.quickstart._qa_data import DOCS_QA

    answers = done["result"].docs_answers
    assert [a["question"] for a in answers] == DOCS_QA
    docs = {p.name for p in (Path(__file__).resolve().parents[1] / "docs").glob("*.md")}
    docs.add("README.md")
    with opsloop.Client(home=done["home"]) as c:
        assert c.registry.get_model("quickstart-docs-qa").kind == "pipeline"
        for a in answers:
            assert a["answer"].strip()
            assert a["citations"] and all(Path(x["path"]).name in docs for x in a["citations"])
            tree = c.tracing.get_trace(a["trace_id"], flat=True)
            kinds = {s.kind for s in tree.spans}
            assert {"chain", "retriever", "llm"} <= kinds
            llm = next(s for s in tree.spans if s.kind == "llm")
            assert (llm.input_tokens or 0) > 0 and (llm.output_tokens or 0) > 0


def test_the_pipeline_is_served_and_its_traces_show_in_the_ui(
    done: dict[str, Any], browser: Any
) -> None:
    from opsloop.quickstart._serve_model import serve_model_in_thread

    settings: Settings = done["settings"]
    uri = done["result"].docs_pipeline_uri
    with serve_model_in_thread(uri, settings, port=free_port()) as url:
        r = httpx.post(
            f"{url}/invocations",
            json={"inputs": [{"question": "What does opsloop select do?"}]},
            timeout=600,
        )
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert pred["answer"].strip() and pred["citations"]
    with opsloop.Client(home=done["home"]) as c:
        page = c.tracing.list_traces(limit=50)
        names = [t.name for t in page.traces]
    # Three asked by the quickstart, one through the server.
    assert names.count("quickstart-docs-qa") >= 4, names

    with live_server(settings) as srv:
        pg = browser.new_page()
        try:
            pg.goto(f"{srv.url}/ui/#/traces")
            pg.wait_for_selector("[data-testid=trace-row]")
            rows = pg.locator("[data-testid=trace-row]")
            assert rows.count() >= 4
            assert "quickstart-docs-qa" in rows.first.inner_text()
        finally:
            pg.close()
