"""Evaluations pages: the list with aggregates and intervals, and the comparison with its
wins/losses, p-values, charts, highlighted differing examples, and markup shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.evaluation import evaluate
from opsloop.settings import Settings
from tests.conftest import live_server
from tests.ui.conftest import canvas_ink

pytestmark = pytest.mark.ui

XSS = "<img src=x onerror=window.__xss=1>"
ROWS = [{"id": f"q{i}", "question": f"{i} plus one", "answer": str(i + 1)} for i in range(70)]
ROWS[0]["answer"] = XSS


def _solve(x: dict[str, Any]) -> str:
    return str(int(str(x["question"]).split()[0]) + 1)


def _sloppy(x: dict[str, Any]) -> str:
    n = int(str(x["question"]).split()[0])
    return "nope" if n % 5 == 0 else str(n + 1)


def test_evaluations_list_and_compare(page: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    c = opsloop.Client(settings=Settings(home=home))
    a = evaluate(_sloppy, ROWS, metrics=["exact_match"], client=c, n_bootstrap=100, name="sloppy")
    b = evaluate(_solve, ROWS, metrics=["exact_match"], client=c, n_bootstrap=100, name="solver")
    c.close()
    with live_server(Settings(home=home)) as srv:
        page.goto(f"{srv.url}/ui/#/evaluations")
        row = page.locator(f"[data-testid=eval-row][data-id='{a.run_id}']")
        row.wait_for()
        agg = row.locator("[data-testid=eval-aggregates]").inner_text()
        lo, hi = a.metrics["exact_match_ci_low"], a.metrics["exact_match_ci_high"]
        assert (
            "exact_match" in agg
            and "0.8" in agg
            and f"{lo:.4g}"[:4] in agg
            and f"{hi:.4g}"[:4] in agg
        )
        for rid in (a.run_id, b.run_id):
            page.locator(f"[data-testid=eval-row][data-id='{rid}'] [data-testid=eval-pick]").check()
        page.locator("[data-testid=eval-compare]").click()
        page.wait_for_url("**/evaluations/compare?**")
        page.locator("[data-testid=eval-summary-row]").nth(1).wait_for()
        cand = page.locator(f"[data-testid=eval-summary-row][data-id='{b.run_id}']")
        # sloppy is wrong on 0, 5, ..., 65; both are wrong on q0 (its answer is markup): 13 wins
        assert cand.locator("[data-testid=eval-wins]").inner_text() == "13"
        assert cand.locator("[data-testid=eval-losses]").inner_text() == "0"
        assert float(cand.locator("[data-testid=eval-p-perm]").inner_text()) < 0.001
        assert canvas_ink(page, "[data-testid=eval-bar-chart]") > 200
        assert canvas_ink(page, "[data-testid=eval-diff-histogram]") > 200
        examples = page.locator("[data-testid=eval-example]")
        assert examples.count() == 50
        assert page.locator("[data-testid=eval-example][data-differs='1']").count() == 9
        page.locator("[data-testid=eval-more]").click()
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=eval-example]').length === 70"
        )
        assert XSS in page.locator("[data-testid=eval-example][data-id='q0']").inner_text()
        assert page.evaluate("window.__xss") is None
