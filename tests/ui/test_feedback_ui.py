"""Feedback in the UI (Chromium): the trace list's score filter, a trace's feedback panel
(thumbs, a score form whose input follows the score's kind, refused values shown with
their code), and the Feedback page's scores and agreement, on data recorded via the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.ui.conftest import PageProbe, _require_chromium

pytestmark = pytest.mark.ui

XSS_COMMENT = "<img src=x onerror=window.__xss=1>"


@dataclass
class FeedbackHome:
    server: LiveServer
    ids: dict[str, str]

    def ui(self, fragment: str) -> str:
        return f"{self.server.url}/ui/#{fragment}"


def _seed(home: Path) -> dict[str, str]:
    from opsloop import Client

    ids: dict[str, str] = {}
    with Client(home=home) as c:
        fb = c.feedback
        fb.define_score("helpful", "numeric", min_value=1, max_value=5, description="1 to 5")
        fb.define_score("tone", "categorical", categories=["polite", "rude"])
        for name in ("good", "bad", "unscored"):
            with c.tracing.start_trace(name, inputs={"question": name}) as root:
                root.set_output({"answer": name})
            ids[name] = root.trace_id
        c.tracing.flush()
        fb.annotate("helpful", 5, trace_id=ids["good"], author="ann", comment=XSS_COMMENT)
        fb.annotate("helpful", 4, trace_id=ids["good"], author="bob")
        fb.annotate("helpful", 1, trace_id=ids["bad"], author="ann")
        fb.annotate("helpful", 2, trace_id=ids["bad"], author="bob")
        fb.annotate("helpful", 1, trace_id=ids["bad"], author="judge", source="llm_judge")
    return ids


@pytest.fixture(scope="module")
def fb_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedbackHome]:
    _require_chromium()
    home = tmp_path_factory.mktemp("feedback-ui") / "home"
    home.mkdir()
    ids = _seed(home)
    with live_server(Settings(home=home)) as srv:
        yield FeedbackHome(srv, ids)


def _wait_rows(page: Any, ids: set[str]) -> None:
    page.wait_for_function(
        """(want) => {
            const got = [...document.querySelectorAll('[data-testid=trace-row]')].map((r) => r.dataset.id);
            return JSON.stringify(got.sort()) === JSON.stringify(want.sort());
        }""",
        arg=sorted(ids),
    )


def test_trace_list_filters_by_score(probe: PageProbe, fb_home: FeedbackHome) -> None:
    page, ids = probe.page, fb_home.ids
    page.goto(fb_home.ui("/traces"))
    _wait_rows(page, set(ids.values()))
    page.get_by_test_id("score-filter").wait_for(state="visible")
    page.get_by_test_id("score-name").select_option("helpful")
    page.get_by_test_id("score-op").select_option(">=")
    page.get_by_test_id("score-value").fill("4")
    page.get_by_test_id("score-add").click()
    _wait_rows(page, {ids["good"]})
    assert page.get_by_test_id("trace-filter-input").input_value() == "score.helpful >= 4"
    # Missing: the traces nobody scored.
    page.get_by_test_id("trace-filter-input").fill("")
    page.get_by_test_id("score-op").select_option("missing")
    page.get_by_test_id("score-add").click()
    _wait_rows(page, {ids["unscored"]})
    # From one source only, typed into the filter language.
    box = page.get_by_test_id("trace-filter-input")
    box.fill("score.helpful.llm_judge <= 2")
    box.press("Enter")
    _wait_rows(page, {ids["bad"]})
    box.fill("score.helpful.nope > 1")
    box.press("Enter")
    page.get_by_test_id("trace-filter-error").wait_for(state="visible")


def test_trace_feedback_panel_adds_and_refuses(probe: PageProbe, fb_home: FeedbackHome) -> None:
    page, ids = probe.page, fb_home.ids
    page.goto(fb_home.ui(f"/traces/{ids['unscored']}"))
    panel = page.get_by_test_id("trace-feedback")
    panel.get_by_test_id("feedback-empty").wait_for()
    panel.get_by_test_id("thumbs-up").click()
    row = panel.locator("[data-testid=feedback-row][data-name=thumbs]")
    row.wait_for()
    assert row.get_by_test_id("feedback-row-value").inner_text() == "true"
    # The value input follows the score's kind: a select of categories, a bounded number.
    panel.get_by_test_id("feedback-score").select_option("tone")
    assert panel.get_by_test_id("feedback-value").evaluate("e => e.tagName") == "SELECT"
    panel.get_by_test_id("feedback-value").select_option("rude")
    panel.get_by_test_id("feedback-comment").fill(XSS_COMMENT)
    panel.get_by_test_id("feedback-submit").click()
    panel.locator("[data-testid=feedback-row][data-name=tone]").wait_for()
    assert XSS_COMMENT in panel.get_by_test_id("feedback-list").inner_text()
    panel.get_by_test_id("feedback-score").select_option("helpful")
    assert panel.get_by_test_id("feedback-value").get_attribute("max") == "5"
    panel.get_by_test_id("feedback-value").fill("9")
    panel.get_by_test_id("feedback-submit").click()
    err = panel.get_by_test_id("feedback-error")
    err.wait_for(state="visible")
    assert err.inner_text().startswith("SCORE_VALUE_INVALID")
    assert page.evaluate("window.__xss") is None
    stored = httpx.get(
        f"{fb_home.server.url}/api/v1/feedback/annotations", params={"trace_id": ids["unscored"]}
    ).json()["annotations"]
    assert sorted((a["name"], a["value"]) for a in stored) == [("thumbs", True), ("tone", "rude")]


def test_feedback_page_shows_scores_and_agreement(probe: PageProbe, fb_home: FeedbackHome) -> None:
    page = probe.page
    page.goto(fb_home.ui("/feedback"))
    assert page.locator(".nav-link.active").inner_text() == "Feedback"
    row = page.locator("[data-testid=score-row][data-name=helpful]")
    row.wait_for()
    assert "1 to 5" in row.inner_text()
    assert page.locator("[data-testid=score-row][data-name=thumbs]").count() == 1
    row.get_by_test_id("show-agreement").click()
    alpha = page.get_by_test_id("alpha")
    alpha.wait_for()
    want = httpx.get(f"{fb_home.server.url}/api/v1/feedback/scores/helpful/agreement").json()
    assert f"{want['alpha']:.3f}" in alpha.inner_text()
    assert page.get_by_test_id("judge-agreement").is_visible()
    assert page.get_by_test_id("pairwise").locator("tbody tr").count() == 1


def test_annotation_queue_by_keyboard(probe: PageProbe, tmp_path: Path) -> None:
    """A queue filled by its rule (negative feedback), annotated with the keyboard: the
    trace's input, output and retrieved context shown; 2, j, 4, Enter; then s to skip."""
    from opsloop import Client

    home = tmp_path / "home"
    with Client(home=home) as c:
        fb = c.feedback
        fb.define_score("tone", "categorical", categories=["polite", "rude"])
        fb.define_score("helpful", "numeric", min_value=1, max_value=5)
        ids = []
        for i in range(3):
            with c.tracing.start_trace(f"chat-{i}", inputs={"question": f"question {i}"}) as root:
                with c.tracing.span("search", "retriever", inputs={"q": "x"}) as r:
                    r.set_output([f"context passage {i}"])
                root.set_output({"answer": f"answer {i}"})
            ids.append(root.trace_id)
        c.tracing.flush()
        for t in ids[:2]:
            fb.thumbs(False, trace_id=t, author="end-user")
        fb.create_queue("negative", filter='score.thumbs = "false"', scores=["tone", "helpful"])
        assert fb.fill_queue("negative") == 2
        first = fb.queue_items("negative")[0].trace_id
    page = probe.page
    with live_server(Settings(home=home)) as srv:
        page.goto(f"{srv.url}/ui/#/feedback")
        page.locator("[data-testid=queue-row][data-name=negative]").get_by_test_id(
            "queue-annotate"
        ).click()
        page.get_by_test_id("annotator").fill("ann")
        page.get_by_test_id("annotate-start").click()
        card = page.get_by_test_id("annotate-trace")
        card.wait_for()
        assert card.get_attribute("data-trace-id") == first
        n = ids.index(first)
        assert f"question {n}" in page.get_by_test_id("annotate-input").inner_text()
        assert f"answer {n}" in page.get_by_test_id("annotate-output").inner_text()
        assert f"context passage {n}" in page.get_by_test_id("annotate-context").inner_text()
        page.keyboard.press("2")  # tone: rude
        page.keyboard.press("j")  # the next score
        page.keyboard.press("4")  # helpful: 4
        active = page.locator("[data-testid=annotate-score][data-active=true]")
        assert active.get_attribute("data-name") == "helpful"
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(t) => { const c = document.querySelector('[data-testid=annotate-trace]');"
            " return c && c.dataset.traceId !== t; }",
            arg=first,
        )
        page.keyboard.press("s")
        page.get_by_test_id("queue-empty").wait_for()
        assert (
            "1 done, 1 skipped, 0 pending of 2"
            in page.get_by_test_id("queue-progress").inner_text()
        )
        api = f"{srv.url}/api/v1/feedback"
        got = httpx.get(f"{api}/annotations", params={"trace_id": first, "author": "ann"}).json()
        assert sorted((a["name"], a["value"]) for a in got["annotations"]) == [
            ("helpful", 4.0),
            ("tone", "rude"),
        ]
        prog = httpx.get(f"{api}/queues/negative/progress").json()
        assert prog["annotators"] == [{"annotator": "ann", "done": 1, "skipped": 1, "locked": 0}]
