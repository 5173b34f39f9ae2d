"""Experiments list and an experiment's runs table: sort, filter, columns, selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import Seeded

pytestmark = pytest.mark.ui


def _top_level_names(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "[data-testid=run-row]:not(.child-row) .run-link", "els => els.map(e => e.textContent)"
    )


def _wait_rows(page: Any) -> None:
    page.wait_for_selector("[data-testid=run-row]")
    page.wait_for_function(
        "() => !document.querySelector('.runs-wrap').classList.contains('is-loading')"
    )


def test_experiments_list_shows_the_experiment(page: Any, seeded: Seeded, shots_dir: Path) -> None:
    page.goto(seeded.ui("/experiments"))
    row = page.locator(f"[data-testid=experiment-row][data-id='{seeded.experiment_id}']")
    row.wait_for()
    assert row.locator("a").inner_text() == "ui-demo"
    assert row.locator("td").nth(1).inner_text() == "5"  # run count
    # The description's markup is text, not bold.
    assert "Runs for the <b>UI</b> tests" in row.inner_text()
    page.screenshot(path=shots_dir / "experiments.png", full_page=True)
    row.locator("a").click()
    page.wait_for_selector("[data-testid=experiment-name]")
    assert page.url.endswith(f"#/experiments/{seeded.experiment_id}")


def test_runs_table_sorts_by_metric_on_the_server(
    page: Any, seeded: Seeded, shots_dir: Path
) -> None:
    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}"))
    _wait_rows(page)
    assert page.get_by_test_id("run-count").inner_text().startswith("5 runs")
    default = _top_level_names(page)
    assert default[:3] == ["<img src=x onerror=window.__xss=3>", "charlie", "bravo"]  # newest first

    header = page.locator("th[data-kind=metric][data-key=f1]")
    with page.expect_request(lambda r: r.url.endswith("/runs/search")) as req:
        header.click()
    assert req.value.post_data_json["order_by"] == ["metrics.`f1` DESC"]
    _wait_rows(page)
    assert _top_level_names(page) == [
        "bravo",
        "charlie",
        "alpha",
        "<img src=x onerror=window.__xss=3>",
    ]
    # The child run stays under its parent.
    assert (
        page.eval_on_selector_all(
            "[data-testid=run-row]", "els => els.map(e => e.querySelector('.run-link').textContent)"
        )[3]
        == "alpha-fold-1"
    )
    page.screenshot(path=shots_dir / "runs-sorted.png", full_page=True)

    header.click()  # second click flips to ascending
    page.wait_for_function(
        "() => document.querySelector('th[data-key=f1]').getAttribute('aria-sort') === 'ascending'"
    )
    _wait_rows(page)
    assert _top_level_names(page) == [
        "<img src=x onerror=window.__xss=3>",
        "alpha",
        "charlie",
        "bravo",
    ]
    assert "sort=metric%3Af1%3Aasc" in page.url or "sort=metric:f1:asc" in page.url


def test_filter_narrows_rows_and_bad_filter_shows_the_api_error(
    page: Any, seeded: Seeded, shots_dir: Path
) -> None:
    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}"))
    _wait_rows(page)
    box = page.get_by_test_id("filter-input")
    box.fill('metrics.f1 > 0.8 and params.model = "rf"')
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 1")
    assert _top_level_names(page) == ["bravo"]
    assert page.get_by_test_id("run-count").inner_text().startswith("1 run")

    bad = "metrics.f1 >> 2"
    expected = httpx.post(
        f"{seeded.url}/api/v1/runs/search",
        json={"experiment_ids": [seeded.experiment_id], "filter": bad},
    ).json()["error"]["message"]
    box.fill(bad)
    box.press("Enter")
    err = page.get_by_test_id("filter-error")
    err.wait_for(state="visible")
    assert expected in err.inner_text()
    assert box.get_attribute("aria-invalid") == "true"
    assert page.locator("[data-testid=run-row]").count() == 0
    page.screenshot(path=shots_dir / "runs-bad-filter.png", full_page=True)

    box.fill("")
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 5")
    assert err.is_hidden()


def test_column_chooser_adds_a_param_column(page: Any, seeded: Seeded, shots_dir: Path) -> None:
    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}"))
    _wait_rows(page)
    col = page.locator("th[data-kind=param][data-key=zeta_param]")
    assert col.count() == 0  # not among the default columns
    page.get_by_test_id("columns-button").click()
    option = page.locator("[data-testid=column-option-param][data-key=zeta_param]")
    option.check()
    page.screenshot(path=shots_dir / "columns-chooser.png")
    col.wait_for()
    alpha = page.locator(f"[data-testid=run-row][data-id='{seeded.runs['alpha']}']")
    assert "z1" in alpha.inner_text()
    # The choice survives a reload (kept per experiment in localStorage).
    page.reload()
    _wait_rows(page)
    assert page.locator("th[data-kind=param][data-key=zeta_param]").count() == 1


def test_selecting_runs_opens_the_compare_page(page: Any, seeded: Seeded) -> None:
    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}"))
    _wait_rows(page)
    button = page.get_by_test_id("compare-button")
    assert button.is_disabled()
    for name in ("bravo", "charlie"):
        page.locator(
            f"[data-testid=run-row][data-id='{seeded.runs[name]}'] [data-testid=run-check]"
        ).check()
    assert button.inner_text() == "Compare (2)"
    button.click()
    page.wait_for_selector("[data-testid=param-diff]")
    assert seeded.runs["bravo"] in page.url and seeded.runs["charlie"] in page.url
    assert page.locator("h1").inner_text() == "Comparing 2 runs"


def test_next_and_prev_pages_use_the_page_token(page: Any, seeded: Seeded) -> None:
    page.goto(seeded.ui(f"/experiments/{seeded.experiment_id}?size=2"))
    _wait_rows(page)
    seen = [page.eval_on_selector_all("[data-testid=run-row]", "els => els.map(e => e.dataset.id)")]
    assert len(seen[0]) == 2
    nxt = page.get_by_test_id("next-page")
    prev = page.get_by_test_id("prev-page")
    assert prev.is_disabled()
    for _ in range(2):
        with page.expect_request(lambda r: r.url.endswith("/runs/search")) as req:
            nxt.click()
        assert req.value.post_data_json["page_token"]
        _wait_rows(page)
        seen.append(
            page.eval_on_selector_all("[data-testid=run-row]", "els => els.map(e => e.dataset.id)")
        )
    assert [len(p) for p in seen] == [2, 2, 1]
    assert len({i for p in seen for i in p}) == 5
    assert nxt.is_disabled()
    prev.click()
    _wait_rows(page)
    assert (
        page.eval_on_selector_all("[data-testid=run-row]", "els => els.map(e => e.dataset.id)")
        == seen[1]
    )
