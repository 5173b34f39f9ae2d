"""The compare page: param diff, best metrics, overlaid curves, parallel coordinates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Seeded, canvas_ink

pytestmark = pytest.mark.ui


def _open(page: Any, seeded: Seeded, *names: str) -> None:
    ids = ",".join(seeded.runs[n] for n in names)
    page.goto(seeded.ui(f"/compare?runs={ids}"))
    page.get_by_test_id("param-diff").wait_for()


def test_param_diff_highlights_differing_params(page: Any, seeded: Seeded, shots_dir: Path) -> None:
    _open(page, seeded, "alpha", "bravo", "charlie")
    diff = page.get_by_test_id("param-diff")
    lr = diff.locator("tr[data-key=lr]")
    seed_row = diff.locator("tr[data-key=seed]")
    assert lr.get_attribute("class") == "diff-row"
    assert lr.locator("td").all_inner_texts()[1:] == ["0.1", "0.01", "0.001"]
    assert seed_row.get_attribute("class") is None  # the same in every run
    # The highlight is visible: a differing row is painted differently from a same row.
    bg = "el => getComputedStyle(el.querySelector('td:nth-child(2)')).backgroundColor"
    assert lr.evaluate(bg) != seed_row.evaluate(bg)

    only = page.get_by_test_id("only-diff")
    only.check()
    assert diff.locator("tr[data-key=seed]").count() == 0
    assert diff.locator("tr[data-key=lr]").count() == 1
    only.uncheck()
    assert diff.locator("tr[data-key=seed]").count() == 1


def test_best_metric_is_marked(page: Any, seeded: Seeded) -> None:
    _open(page, seeded, "alpha", "bravo", "charlie")
    table = page.get_by_test_id("metric-compare")
    best_f1 = table.locator("tr[data-key=f1] td[data-best=true]")
    assert best_f1.count() == 1
    assert best_f1.evaluate("td => td.cellIndex") == 2  # bravo: highest f1
    best_loss = table.locator("tr[data-key=loss] td[data-best=true]")
    assert best_loss.evaluate("td => td.cellIndex") == 2  # bravo: lowest loss


def test_overlaid_curves_and_parallel_coordinates(
    page: Any, seeded: Seeded, shots_dir: Path
) -> None:
    _open(page, seeded, "alpha", "bravo", "charlie")
    chart = "[data-testid=compare-charts] [data-key=f1] .chart-area"
    page.wait_for_selector(f"{chart}[data-drawn='1']")
    assert canvas_ink(page, chart) > 500
    legend = page.locator(f"{chart} .u-legend").inner_text()
    for name in ("alpha", "bravo", "charlie"):
        assert name in legend

    pc = page.get_by_test_id("parcoords")
    page.wait_for_selector("[data-testid=parcoords][data-drawn='1']")
    assert pc.get_attribute("data-lines") == "3"
    # Axes: the differing params depth, lr, model (categorical), zeta_param (categorical),
    # then the metrics f1 and loss; seed is the same everywhere and gets no axis.
    assert pc.get_attribute("data-axes") == "6"
    assert canvas_ink(page, "[data-testid=parcoords]") > 2000
    page.select_option("[data-testid=color-by]", label="loss")
    assert "loss" in page.locator(".pc-legend").inner_text()
    page.screenshot(path=shots_dir / "compare.png", full_page=True)


def test_compare_with_an_unknown_run_shows_the_error(page: Any, seeded: Seeded) -> None:
    page.goto(seeded.ui(f"/compare?runs={seeded.runs['alpha']},nosuchrun"))
    box = page.locator(".error-box")
    box.wait_for()
    assert "nosuchrun" in box.inner_text()


def test_goals_and_best_come_from_the_server(page: Any, tmp_path: Path) -> None:
    """The page marks the best run by the goal the server returns (set on the experiment
    through the REST client, or inferred there), never by guessing from the name."""
    import opsloop
    from opsloop.settings import Settings
    from tests.conftest import live_server

    with live_server(Settings(home=tmp_path / "home")) as srv:
        with opsloop.Client(srv.url) as c:
            exp = c.create_experiment("goals")
            ids = []
            for name, f1, loss, acc in [("a", 0.9, 0.3, 0.6), ("b", 0.7, 0.5, 0.8)]:
                r = c.create_run(exp.id, name=name)
                c.log_batch(
                    r.id,
                    metrics=[
                        ("f1", f1, 0, 1),
                        ("loss", loss, 0, 1),
                        ("accuracy", acc, 0, 1),
                        ("system/cpu_percent", acc * 100, 0, 1),
                    ],
                )
                ids.append(r.id)
            c.set_metric_goal(exp.id, "f1", "minimize")  # against its name
        page.goto(f"{srv.url}/ui/#/compare?runs={','.join(ids)}")
        table = page.get_by_test_id("metric-compare")
        table.wait_for()

        def best_col(key: str) -> list[int]:
            cells = table.locator(f"tr[data-key='{key}'] td[data-best=true]")
            return [cells.nth(i).evaluate("td => td.cellIndex") for i in range(cells.count())]

        def arrow(key: str) -> tuple[str | None, str]:
            d = table.locator(f"tr[data-key='{key}'] .dir")
            return d.get_attribute("data-goal"), d.inner_text().strip()

        assert arrow("f1") == ("minimize", "↓") and best_col("f1") == [2]  # b: the lower f1
        assert arrow("loss") == ("minimize", "↓") and best_col("loss") == [1]
        assert arrow("accuracy") == ("maximize", "↑") and best_col("accuracy") == [2]
        assert arrow("system/cpu_percent") == ("none", "") and best_col("system/cpu_percent") == []
