"""The monitoring page: metric charts of a deployment, the LLM gateway's usage, score trends
per prompt version and model, and the alert history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from opsloop import Client
from opsloop.gateway import GatewayService
from opsloop.settings import Settings
from opsloop.store import Database
from tests.test_monitoring_scores import _answer
from tests.test_monitoring_usage import _row
from tests.ui.conftest import XSS_NAME, canvas_ink, live_server


def test_monitoring_page_charts_metrics_and_lists_alerts(page: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with live_server(settings) as srv, Client(settings=settings) as c:
        mon = c.monitoring
        t0 = (int(time.time()) // 60 - 30) * 60_000
        mon.ingest(
            [],
            [
                {
                    "minute": t0 + k * 60_000,
                    "deployment": XSS_NAME,
                    "version": "1",
                    "route": "/v1/predict",
                    "requests": 60,
                    "errors": k % 3,
                    "b3": 60,
                }
                for k in range(20)
            ],
        )
        mon.ingest(
            [
                {
                    "request_id": f"p{i}",
                    "deployment": XSS_NAME,
                    "route": "/v1/predict_proba",
                    "inputs": {"x": i},
                    "output": [0.9, 0.1],
                    "latency_ms": 1.0,
                    "ts": t0 + i * 60_000,
                }
                for i in range(20)
            ]
        )
        mon.labels([{"request_id": f"p{i}", "label": 0} for i in range(10)])
        mon.create_monitor(
            "errs",
            deployment=XSS_NAME,
            metric="error_rate",
            threshold=0.01,
            interval_s=60,
            window_s=60,
            min_rows=1,
        )
        mon.run_monitor("errs", now=t0 + 2 * 60_000 + 5_000)  # minute 1 had errors: opens
        GatewayService(Database(settings.resolved_database_url)).record_usage(
            [_row(t0 + k * 300_000, XSS_NAME, "small-llm", cache="hit") for k in range(6)]
        )
        c.feedback.define_score("judge", "numeric")
        v1 = c.prompts.create("qa", "Answer: {{ q }}")
        for hours_ago, up in ((3, False), (2, True), (1, True)):
            trace_id = _answer(c, v1.uri, "small-llm", hours_ago)
            c.tracing.flush()
            c.feedback.annotate("thumbs", up, trace_id=trace_id)

        page.goto(f"{srv.url}/ui/#/monitoring")
        row = page.locator("[data-testid=alert-row]")
        row.first.wait_for()
        assert row.count() == 1 and row.first.get_attribute("data-state") == "firing"
        assert "error_rate" in row.first.inner_text()
        charts = page.locator("[data-testid=monitoring-chart]")
        charts.nth(2).locator(".chart-area[data-drawn='1']").wait_for()
        assert charts.count() == 3
        page.locator("[data-testid=performance-chart] .chart-area[data-drawn='1']").wait_for()
        assert canvas_ink(page, "[data-testid=monitoring-chart]") > 0
        gw = page.locator("[data-testid=gateway-chart]")
        gw.nth(2).locator(".chart-area[data-drawn='1']").wait_for()
        assert gw.count() == 3 and "guardrail" in gw.nth(2).inner_text()
        score = page.locator("[data-testid=score-chart]")
        score.locator(".chart-area[data-drawn='1']").wait_for()
        assert "qa@1 / small-llm" in score.inner_text()
        page.fill("[data-testid=score-name]", "judge")  # defined, never given
        page.keyboard.press("Enter")
        page.locator("[data-testid=no-scores]").wait_for()
        page.fill("[data-testid=score-name]", "no-such-score")  # not a score name
        page.keyboard.press("Enter")
        err = page.locator("[data-testid=score-charts] .error-box")
        err.wait_for()
        assert "no-such-score" in err.inner_text()
        assert page.locator("img[src=x]").count() == 0 and page.evaluate("window.__xss") is None
