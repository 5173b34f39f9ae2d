"""Workflows pages: the runs list with triggers, and a run's DAG, cache hits and lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.settings import Settings
from opsloop.workflows import Workflows
from tests.conftest import live_server
from tests.test_workflows_runs import STATE, chain

pytestmark = pytest.mark.ui


def test_workflow_pages_show_dag_cache_hits_and_lineage(page: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    STATE["dir"] = tmp_path
    with Client(settings=settings) as client:
        wf = Workflows(client)
        first = wf.run(chain, {"n": 3})
        second = wf.run(chain, {"n": 3})
        wf.schedule("nightly", chain, "0 3 * * *")
    made = {s.name: s for s in first.steps}
    with live_server(settings) as srv:
        page.goto(f"{srv.url}/ui/#/workflows")
        page.locator(f"[data-testid=workflow-run-row][data-id='{second.run_id}']").wait_for()
        assert page.locator("[data-testid=workflow-run-row]").count() == 2
        assert "cron 0 3 * * *" in page.get_by_test_id("workflow-triggers").inner_text()
        page.locator(f"[data-testid=workflow-run-row][data-id='{second.run_id}'] a").click()
        page.get_by_test_id("workflow-steps").wait_for()
        rows = page.locator("[data-testid=step-row]")
        assert rows.count() == 4
        assert page.locator("[data-testid=step-row][data-cache=hit]").count() == 4
        gated = page.locator("[data-testid=step-row][data-name=gated]")
        assert gated.get_by_test_id("step-cached-from").get_attribute("href") == (
            f"#/runs/{made['gated'].run_id}"
        )
        # lineage: gated's input links to the run that produced it
        link = gated.get_by_test_id("step-input").locator("a").get_attribute("href")
        assert link == f"#/runs/{made['flaky'].run_id}"
        assert page.locator("[data-testid=dag-node]").count() == 4
        assert "← flaky" in page.locator("[data-testid=dag-node][data-name=gated]").inner_text()
