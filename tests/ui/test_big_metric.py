"""A run with 1,000,000 points in one metric charts from server-downsampled data."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.ui.conftest import T0, canvas_ink

pytestmark = pytest.mark.ui

POINTS = 1_000_000
CHUNK = 100_000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    from opsloop import Client

    home = tmp_path_factory.mktemp("ui-big") / "home"
    home.mkdir()
    with Client(home=home) as c:
        run = c.create_run(experiment_name="big", name="million")
        for start in range(0, POINTS, CHUNK):
            c.log_batch(
                run.id,
                metrics=[
                    ("loss", math.exp(-s / 200_000) + 0.05 * math.sin(s / 997), s, T0 + s)
                    for s in range(start, start + CHUNK)
                ],
            )
        c.flush()
    with live_server(Settings(home=home)) as srv:
        yield srv, run.id


def test_million_point_metric_is_charted_from_downsampled_data(
    page: Any, big_run: tuple[LiveServer, str], shots_dir: Path
) -> None:
    srv, run_id = big_run
    t = time.perf_counter()
    with page.expect_response(lambda r: "/metric-histories" in r.url) as resp:
        page.goto(f"{srv.url}/ui/#/runs/{run_id}")
    body = resp.value.json()
    (hist,) = body["histories"]
    assert hist["key"] == "loss"
    assert hist["total_points"] == POINTS
    assert hist["downsampled"] is True
    assert 100 < len(hist["steps"]) <= 2000
    assert hist["steps"][0] == 0 and hist["steps"][-1] == POINTS - 1  # the whole range is kept

    area = "[data-testid=metric-charts] [data-key=loss] .chart-area"
    page.wait_for_selector(f"{area}[data-drawn='1']")
    elapsed = time.perf_counter() - t
    assert canvas_ink(page, area) > 500
    caption = page.locator(
        "[data-testid=metric-charts] [data-key=loss] .chart-caption"
    ).inner_text()
    assert "1,000,000" in caption and "downsampled" in caption
    page.screenshot(path=shots_dir / "million-points.png")
    print(f"1M-point run page: chart drawn {elapsed:.2f} s after navigation")
