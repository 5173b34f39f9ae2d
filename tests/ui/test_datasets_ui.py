"""Dataset pages: the list, a dataset's versions, schema, drawn profile, sample and rows,
the validation report of a flagged version, the diff page, lineage, and XSS safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui._lineage_seed import (  # noqa: F401 (lineage_fixture: the fixture 'lineage')
    MARKUP_NOTE,
    XSS_DESC,
    Lineage,
    lineage_fixture,
    v1_records,
)
from tests.ui.conftest import PageProbe

pytestmark = pytest.mark.ui

COLUMNS = ["id", "age", "income", "country", "note", "label"]


def rows_info(first: int, last: int, total: int) -> str:
    """The rows browser's caption (with an en dash)."""
    return f"rows {first}\u2013{last} of {total}"


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _wait_info(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('[data-testid=rows-info]')?.textContent === t", arg=text
    )


def _open_tab(page: Any, tab: str) -> None:
    page.get_by_test_id(f"tab-{tab}").click()
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=tab-{tab}]').classList.contains('active')"
    )


def test_datasets_list_shows_the_dataset(probe: PageProbe, lineage: Lineage) -> None:
    page = probe.page
    page.goto(lineage.ui("/datasets"))
    row = page.locator("[data-testid=dataset-row][data-name=customers]")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "customers" and cells[1] == "tabular"
    assert cells[2] == "2" and cells[3] == "v2"
    assert cells[5] == XSS_DESC  # markup shown as text
    assert page.locator(".nav-link.active").inner_text() == "Datasets"
    page.get_by_test_id("dataset-search").fill("nothing-like-this")
    assert page.locator("[data-testid=dataset-row]").count() == 0
    page.get_by_test_id("dataset-search").fill("cust")
    row.locator("a.strong").click()
    page.get_by_test_id("dataset-name").wait_for()
    assert page.get_by_test_id("dataset-name").inner_text() == "customers"


def test_dataset_page_shows_versions_schema_profile_and_sample(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/datasets/customers"))
    page.get_by_test_id("schema-table").wait_for()
    versions = page.locator("[data-testid=version-row]")
    assert versions.count() == 2
    v2 = page.locator("[data-testid=version-row][data-version='2']")
    assert "selected" in (v2.get_attribute("class") or "")  # the latest is opened
    assert v2.get_by_test_id("status-badge").inner_text() == "FLAGGED"
    v1 = page.locator("[data-testid=version-row][data-version='1']")
    assert v1.get_by_test_id("status-badge").inner_text() == "VALID"
    assert "second load" in v2.inner_text() and "195" in v2.inner_text()

    # Schema: every column with its type and nullability.
    assert _texts(page, "[data-testid=schema-row] td:nth-child(2)") == COLUMNS
    note = page.locator("[data-testid=schema-row][data-column=note] td").all_inner_texts()
    assert note[2:4] == ["string", "yes"]
    age = page.locator("[data-testid=schema-row][data-column=age] td").all_inner_texts()
    assert age[2:4] == ["int64", "no"]

    # Profile: drawn, not just written.
    _open_tab(page, "profile")
    assert "tab=profile" in page.evaluate("location.hash")
    cards = page.locator("[data-testid=profile-card]")
    assert cards.count() == len(COLUMNS)
    box = page.locator("[data-testid=profile-card][data-column=age] [data-testid=box-plot]")
    assert box.get_attribute("data-drawn") == "1"
    width = box.locator("rect.bp-box").evaluate("r => r.getBoundingClientRect().width")
    assert width > 5  # the p25..p75 box has a visible size
    bars = page.locator("[data-testid=profile-card][data-column=country] .bar-row")
    assert bars.count() == 4
    assert bars.first.locator(".bar-label").inner_text() == "US"
    fills = bars.locator(".bar-fill").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert fills[0] > fills[-1] > 0  # most frequent is the longest bar
    length = page.locator("[data-testid=profile-card][data-column=note] [data-testid=length-plot]")
    assert length.get_attribute("data-drawn") == "1"
    nulls = page.get_by_test_id("nulls-chart")
    assert _texts(page, "[data-testid=nulls-chart] .bar-label") == ["note"]
    assert nulls.locator(".bar-value").inner_text().endswith("%")
    page.screenshot(path=shots_dir / "dataset-profile.png", full_page=True)

    # A reload keeps the version and the tab.
    page.reload()
    page.get_by_test_id("profile").wait_for()

    _open_tab(page, "sample")
    sample = page.get_by_test_id("sample-table")
    sample.wait_for()
    assert _texts(page, "[data-testid=sample-table] thead th") == ["row", *COLUMNS]
    assert sample.locator("tbody tr").count() == 25  # 20 first rows + 5 random ones
    first = sample.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first[:3] == ["0", "10", "99"]
    assert MARKUP_NOTE in sample.inner_text()  # a value with markup is text
    assert page.locator("main b").count() == 0
    page.screenshot(path=shots_dir / "dataset-sample.png", full_page=True)


def test_flagged_version_shows_its_validation_report(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/datasets/customers?v=2&tab=validation"))
    report = page.get_by_test_id("validation-report")
    report.wait_for()
    assert page.get_by_test_id("validation-summary").inner_text().startswith("10 violations")
    rules = page.locator("[data-testid=rule-row]")
    assert rules.count() == 2
    assert rules.nth(0).locator("td").all_inner_texts()[:4] == [
        "range(age)",
        "age",
        "min=0; max=120",
        "5",
    ]
    assert rules.nth(1).locator("td").nth(3).inner_text() == "5"
    failures = page.locator("[data-testid=failure]")
    assert failures.count() == 10
    assert failures.first.locator("td").all_inner_texts() == ["range(age)", "190", "age", "150"]
    assert (
        page.locator("[data-testid=failure][data-column=country]")
        .first.locator("td")
        .nth(3)
        .inner_text()
        == "XX"
    )
    page.screenshot(path=shots_dir / "dataset-validation.png", full_page=True)

    # A failure's row number opens the rows browser on that row, failed cells marked.
    failures.nth(3).get_by_test_id("failure-row").click()
    page.get_by_test_id("rows-browser").wait_for()
    row = page.locator("[data-testid=rows-table] tr[data-row='193']")
    row.wait_for()
    assert "selected" in (row.get_attribute("class") or "")
    bad = row.get_by_test_id("bad-cell")
    assert bad.count() == 2
    assert bad.nth(0).inner_text() == "153" and bad.nth(1).inner_text() == "XX"
    assert page.get_by_test_id("rows-info").inner_text() == rows_info(150, 194, 195)

    # v1 had no rules.
    page.goto(lineage.ui("/datasets/customers?v=1&tab=validation"))
    page.locator(".empty").wait_for()
    assert "No validation rules" in page.get_by_test_id("tab-panel").inner_text()


def test_rows_browser_pages_through_a_version(page: Any, lineage: Lineage) -> None:
    page.goto(lineage.ui("/datasets/customers?v=1&tab=rows"))
    info = page.get_by_test_id("rows-info")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=rows-info]')?.textContent.startsWith('rows')"
    )
    assert info.inner_text() == rows_info(0, 49, 200)
    assert page.get_by_test_id("rows-prev").is_disabled()
    page.get_by_test_id("rows-next").click()
    _wait_info(page, rows_info(50, 99, 200))
    assert page.locator("[data-testid=rows-table] tbody tr").first.get_attribute("data-row") == "50"
    page.get_by_test_id("rows-last").click()
    _wait_info(page, rows_info(150, 199, 200))
    assert page.get_by_test_id("rows-next").is_disabled()
    page.get_by_test_id("rows-jump").fill("7")
    page.get_by_test_id("rows-jump").press("Enter")
    page.wait_for_selector("[data-testid=rows-table] tr.selected[data-row='7']")
    cells = page.locator("tr[data-row='7'] td").all_inner_texts()
    assert cells[:2] == ["7", "7"]  # row index 7 holds id 7 in v1


def test_diff_page_counts_rows_and_marks_changed_cells(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/datasets/customers"))
    page.get_by_test_id("diff-link").click()
    page.get_by_test_id("count-added").wait_for()
    assert page.get_by_test_id("diff-title").inner_text() == "customers: v1 → v2"

    def count(name: str) -> str:
        return page.locator(f"[data-testid=count-{name}] .count-value").inner_text()

    # Whole rows: the changed row counts as one removed and one added.
    assert (count("before"), count("after")) == ("200", "195")
    assert (count("added"), count("removed"), count("changed")) == ("6", "11", "0")
    assert page.locator("[data-testid=diff-bar] .diff-seg").count() == 3
    assert "did not change" in page.get_by_test_id("schema-changes").inner_text()

    # Matched by id: 5 new ids, 10 gone, 1 changed, with the changed cell marked.
    page.get_by_test_id("diff-key").select_option("id")
    page.wait_for_function("() => location.hash.includes('key=id')")
    page.get_by_test_id("changed-table").wait_for()
    assert (count("added"), count("removed"), count("changed")) == ("5", "10", "1")
    changed = page.locator("[data-testid=changed-cell]")
    assert changed.count() == 1
    assert changed.get_attribute("data-column") == "age"
    assert changed.inner_text() == f"{v1_records()[10]['age']} → 99"
    assert page.locator("[data-testid=added-table] tbody tr").count() == 5
    assert page.locator("[data-testid=removed-table] tbody tr").count() == 10
    page.screenshot(path=shots_dir / "dataset-diff.png", full_page=True)

    page.get_by_test_id("diff-swap").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=diff-title]')?.textContent === "
        "'customers: v2 → v1'"
    )
    page.get_by_test_id("count-added").wait_for()
    assert (count("added"), count("removed")) == ("10", "5")


def test_lineage_tab_lists_the_runs_that_read_a_version(
    page: Any,
    lineage: Lineage,
    shots_dir: Path,
) -> None:
    page.goto(lineage.ui("/datasets/customers?v=2&tab=lineage"))
    page.get_by_test_id("lineage-runs").wait_for()
    runs = page.locator("[data-testid=lineage-run]")
    assert runs.count() == 2
    train = page.locator(f"[data-testid=lineage-run][data-id='{lineage.train_run}']")
    assert train.get_by_test_id("run-link").inner_text() == "train-lr"
    assert train.get_by_test_id("run-link").get_attribute("href") == f"#/runs/{lineage.train_run}"
    assert "train" in train.inner_text()
    assert _texts(
        page, f"[data-testid=lineage-run][data-id='{lineage.train_run}'] a.chip-link"
    ) == [
        "card-scratch v1",
        "churn-lr v1",
    ]
    ev = page.locator(f"[data-testid=lineage-run][data-id='{lineage.eval_run}']")
    assert "eval" in ev.inner_text() and "none" in ev.inner_text()

    graph = page.get_by_test_id("lineage-graph")
    assert graph.get_attribute("data-drawn") == "1"
    ids = graph.locator("[data-testid=lineage-node]").evaluate_all(
        "els => els.map(e => e.dataset.id)"
    )
    assert f"dataset:{lineage.v2_id}" in ids
    assert {f"run:{lineage.train_run}", f"run:{lineage.eval_run}"} <= set(ids)
    assert f"model:{lineage.model_version_id}" in ids
    page.screenshot(path=shots_dir / "dataset-lineage.png", full_page=True)

    train.get_by_test_id("run-link").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-name]')?.textContent === 'train-lr'"
    )


def test_lineage_tab_shows_splits_both_ways(page: Any, lineage: Lineage) -> None:
    page.goto(lineage.ui("/datasets/customers?v=1&tab=lineage"))
    kids = page.get_by_test_id("lineage-children")
    kids.wait_for()
    assert _texts(page, "[data-testid=child-link]") == ["customers.test v1", "customers.train v1"]
    assert "No run has read this version" in page.get_by_test_id("tab-panel").inner_text()
    ids = page.locator("[data-testid=lineage-node]").evaluate_all(
        "els => els.map(e => e.dataset.kind + ' ' + e.textContent)"
    )
    assert len(ids) == 3 and all(i.startswith("dataset ") for i in ids)
    page.locator("[data-testid=child-link]", has_text="customers.train").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=dataset-name]')?.textContent === "
        "'customers.train'"
    )
    page.get_by_test_id("tab-lineage").click()
    parent = page.get_by_test_id("lineage-parent")
    parent.wait_for()
    assert parent.get_by_test_id("parent-link").inner_text() == "customers v1"
    assert parent.get_by_test_id("parent-link").get_attribute("href") == "#/datasets/customers?v=1"


def test_markup_in_dataset_descriptions_is_text(
    probe: PageProbe,
    lineage: Lineage,
) -> None:
    page = probe.page
    page.goto(lineage.ui("/datasets/customers?v=2&tab=sample"))
    page.get_by_test_id("sample-table").wait_for()
    assert page.get_by_test_id("dataset-description").inner_text() == XSS_DESC
    assert page.locator("main img, main script, main b").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__xss") is None
    assert probe.dialogs == []


def test_unknown_dataset_and_version_show_readable_errors(
    page: Any,
    lineage: Lineage,
) -> None:
    page.goto(lineage.ui("/datasets/nope"))
    page.locator(".error-box").wait_for()
    assert "NOT_FOUND" in page.locator(".error-box").inner_text()
    page.goto(lineage.ui("/datasets/customers?v=9"))
    page.get_by_test_id("version-detail").locator(".error-box").wait_for()
    assert "NOT_FOUND" in page.locator(".error-box").inner_text()
