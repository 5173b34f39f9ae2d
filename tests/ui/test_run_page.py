"""The run page: header, params, charts, system metrics, artifacts, and XSS safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import XSS_NAME, XSS_TAG, PageProbe, Seeded, canvas_ink

pytestmark = pytest.mark.ui


def test_run_page_shows_params_and_draws_metric_charts(
    page: Any, seeded: Seeded, shots_dir: Path
) -> None:
    run_id = seeded.runs["alpha"]
    with page.expect_response(lambda r: "/metric-histories" in r.url and "f1" in r.url) as resp:
        page.goto(seeded.ui(f"/runs/{run_id}"))
    assert "max_points=2000" in resp.value.url
    assert page.get_by_test_id("run-name").inner_text() == "alpha"
    params = page.get_by_test_id("params-table")
    assert params.locator("tr[data-key=lr] td").nth(1).inner_text() == "0.1"
    assert params.locator("tr[data-key=model] td").nth(1).inner_text() == "rf"
    # The name replaces the id once the experiment has loaded: wait for it.
    expect(page.get_by_test_id("experiment-link")).to_have_text("ui-demo")

    f1 = "[data-testid=metric-charts] [data-key=f1] .chart-area"
    page.wait_for_selector(f"{f1}[data-drawn='1']")
    assert canvas_ink(page, f1) > 500
    # system/ keys chart in their own section, not among the metric charts.
    keys = page.eval_on_selector_all(
        "[data-testid=metric-charts] [data-testid=chart-card]", "els => els.map(e => e.dataset.key)"
    )
    assert keys == ["f1", "loss"]
    sys_chart = "[data-testid=system-charts] [data-key='system/cpu_percent'] .chart-area"
    page.wait_for_selector(f"{sys_chart}[data-drawn='1']")
    assert canvas_ink(page, sys_chart) > 200
    page.screenshot(path=shots_dir / "run-page.png", full_page=True)

    # Wall time on x asks the server for time-bucketed points and redraws.
    with page.expect_response(lambda r: "/metric-histories" in r.url and "x=time" in r.url):
        page.get_by_test_id("x-time").first.click()
    page.wait_for_selector(f"{f1}[data-drawn='1']")
    assert canvas_ink(page, f1) > 500


def test_child_run_links_to_its_parent(page: Any, seeded: Seeded) -> None:
    page.goto(seeded.ui(f"/runs/{seeded.runs['alpha-fold-1']}"))
    link = page.get_by_test_id("parent-link")
    link.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=parent-link]').textContent === 'alpha'"
    )
    link.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-name]')?.textContent === 'alpha'"
    )
    page.get_by_test_id("children-table").wait_for()
    assert "alpha-fold-1" in page.get_by_test_id("children-table").inner_text()


def _open_file(page: Any, folder: str | None, path: str) -> Any:
    if folder:
        page.locator(f"[data-testid=artifact-dir][data-path='{folder}']").click()
    page.locator(f"[data-testid=artifact-file][data-path='{path}']").click()
    return page.get_by_test_id("artifact-preview")


def test_artifact_browser_previews_text_csv_and_png(
    page: Any, seeded: Seeded, shots_dir: Path
) -> None:
    run_id = seeded.runs["alpha"]
    page.goto(seeded.ui(f"/runs/{run_id}"))
    page.get_by_test_id("artifact-tree").locator("[data-testid=artifact-dir]").first.wait_for()

    preview = _open_file(page, "notes", "notes/readme.txt")
    text = preview.get_by_test_id("artifact-text")
    text.wait_for()
    assert text.inner_text().startswith("hello from the artifact browser")
    assert "<b>not bold</b>" in text.inner_text()  # shown as text
    download = preview.get_by_test_id("artifact-download")
    assert download.get_attribute("href") == f"/api/v1/runs/{run_id}/artifacts/notes/readme.txt"

    preview = _open_file(page, "logs", "logs/train.log")
    notice = preview.locator(".notice")
    notice.wait_for()
    assert notice.inner_text().startswith("Showing the first 200 KB of")
    shown = preview.get_by_test_id("artifact-text").inner_text()
    assert shown.startswith("step 000000 loss=1.000000")
    assert 190 * 1024 < len(shown) <= 200 * 1024

    preview = _open_file(page, None, "config.json")
    text = preview.get_by_test_id("artifact-text")
    text.wait_for()
    assert '"layers": [' in text.inner_text()  # pretty-printed JSON

    preview = _open_file(page, "data", "data/table.csv")
    table = preview.get_by_test_id("artifact-table")
    table.wait_for()
    heads = table.locator("thead th").all_inner_texts()
    assert heads == ["#", "name", "score", "comment"]
    assert table.locator("tbody tr").count() == 2
    assert table.locator("tbody tr").first.locator("td").all_inner_texts() == [
        "1",
        "alpha",
        "0.71",
        "fast, small",
    ]
    page.get_by_test_id("artifact-tree").screenshot(path=shots_dir / "artifact-tree.png")
    preview.screenshot(path=shots_dir / "artifact-csv.png")

    preview = _open_file(page, "plots", "plots/gradient.png")
    img = preview.get_by_test_id("artifact-image")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=artifact-image]').complete")
    size = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size == [4, 3]  # the browser decoded the PNG
    preview.screenshot(path=shots_dir / "artifact-png.png")


def _hover_tooltips(page: Any, want: str) -> str:
    """Sweep the mouse down each axis of the parallel-coordinates plot until a tooltip
    holds ``want``; answer the tooltips seen."""
    box = page.locator("[data-testid=parcoords] canvas").bounding_box()
    n = int(page.get_by_test_id("parcoords").get_attribute("data-axes") or 0)
    left, right, top, bottom = 70, box["width"] - 70, 44, box["height"] - 28
    seen = []
    for i in range(n):
        x = left + (right - left) * i / max(1, n - 1)
        for y in range(int(top), int(bottom) + 1, 6):
            page.mouse.move(box["x"] + x, box["y"] + y)
            tip = page.locator(".pc-tip")
            if tip.is_visible():
                seen.append(tip.inner_text())
                if want in seen[-1]:
                    return "\n".join(seen)
    return "\n".join(seen)


def test_markup_in_names_tags_and_notes_is_shown_as_text(
    probe: PageProbe, seeded: Seeded, shots_dir: Path
) -> None:
    page = probe.page
    evil = seeded.runs["evil"]
    page.goto(seeded.ui(f"/runs/{evil}"))
    tags = page.get_by_test_id("tags-table")
    tags.wait_for()
    assert tags.locator("tr[data-key=evil] td").nth(1).inner_text() == XSS_TAG
    assert page.get_by_test_id("run-name").inner_text() == XSS_NAME
    assert page.get_by_test_id("notes").inner_text() == XSS_TAG
    assert (
        page.get_by_test_id("params-table").locator("tr[data-key=model] td").nth(1).inner_text()
        == "<b>bold</b>"
    )
    # No element was created from the payloads.
    assert page.locator("main script, main img[src=x], main b").count() == 0
    page.screenshot(path=shots_dir / "xss-run.png", full_page=True)

    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}"))
    page.wait_for_selector(f"[data-testid=run-row][data-id='{evil}']")
    assert (
        page.locator(f"[data-testid=run-row][data-id='{evil}'] .run-link").inner_text() == XSS_NAME
    )
    page.goto(seeded.ui(f"/compare?runs={evil},{seeded.runs['alpha']}"))
    page.wait_for_selector("[data-testid=param-diff]")
    assert XSS_NAME in page.get_by_test_id("compare-runs").inner_text()
    # The chart legend (uPlot) carries the run name too.
    legend = "[data-testid=compare-charts] [data-key=f1] .chart-area"
    page.wait_for_selector(f"{legend}[data-drawn='1']")
    assert XSS_NAME in page.locator(f"{legend} .u-legend").inner_text()
    # Hover the parallel-coordinates plot until its tooltip shows the run's name.
    page.wait_for_selector("[data-testid=parcoords][data-drawn='1']")
    assert XSS_NAME in _hover_tooltips(page, XSS_NAME)

    page.wait_for_timeout(300)  # give any injected handler the chance to run
    assert page.evaluate("() => window.__xss") is None
    assert probe.dialogs == []


def test_unknown_run_shows_a_readable_error(page: Any, seeded: Seeded) -> None:
    page.goto(seeded.ui("/runs/doesnotexist"))
    box = page.locator(".error-box")
    box.wait_for()
    assert "doesnotexist" in box.inner_text() or "not" in box.inner_text().lower()
    assert "NOT_FOUND" in box.inner_text()
