"""The model selection page: the leaderboard of a real selection run, its marks, and the chart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.test_selection import QA, vendor_endpoints
from tests.ui.conftest import PageProbe, _require_chromium

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    _require_chromium()
    from opsloop import Client
    from opsloop.selection import select_model

    home = tmp_path_factory.mktemp("selection-ui") / "home"
    with vendor_endpoints() as urls, Client(home=home) as c:
        s = select_model(
            [
                f"openai:good@{urls['good']}",
                f"openai:half@{urls['half']}",
                f"openai:x@{urls['down']}",
            ],
            QA,
            metrics=["exact_match", "token_f1"],
            prompt="Answer briefly: {{question}}",
            max_tokens=8,
            constraints={"min_quality": 0.9},
            client=c,
        )
    with live_server(Settings(home=home)) as srv:
        yield srv, s


def test_selection_page_shows_the_leaderboard(
    probe: PageProbe, selection: tuple[LiveServer, Any], shots_dir: Path
) -> None:
    srv, s = selection
    page = probe.page
    page.goto(f"{srv.url}/ui/#/selections/{s.run_id}")
    page.get_by_test_id("selection-table").wait_for()
    rows = page.locator("[data-testid=selection-row]")
    assert rows.evaluate_all("els => els.map(e => e.dataset.candidate)") == [
        r.candidate for r in s.leaderboard
    ]
    best = page.locator(
        f"[data-testid=selection-row][data-candidate='{s.recommendation.candidate}']"
    )
    assert best.get_by_test_id("recommended").count() == 1
    assert page.get_by_test_id("recommended").count() == 1
    assert page.get_by_test_id("pareto").count() == len(s.pareto)
    half = page.locator("[data-testid=selection-row]").nth(1)
    assert "quality 0.5 < 0.9 (min_quality)" in half.get_by_test_id("violations").inner_text()
    assert s.recommendation.reason in page.get_by_test_id("selection-reason").inner_text()
    chart = page.get_by_test_id("selection-chart")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=chart.element_handle())
    page.screenshot(path=str(shots_dir / "selection.png"), full_page=True)
    assert probe.errors == [] and probe.dialogs == []


def test_a_run_without_a_leaderboard_says_so(
    probe: PageProbe, selection: tuple[LiveServer, Any]
) -> None:
    srv, s = selection
    child = s.leaderboard.rows[0].run_id
    probe.page.goto(f"{srv.url}/ui/#/selections/{child}")
    probe.page.get_by_text("This run holds no selection leaderboard.").wait_for()
    assert probe.errors == []
