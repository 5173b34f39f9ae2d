"""Gateway page: routes, keys with their status (never a secret), and usage per day as bars,
regrouped without reloading; stored text shown as text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.gateway import GatewayService
from opsloop.settings import Settings
from opsloop.store import Database
from tests.conftest import live_server

pytestmark = pytest.mark.ui

XSS_URL = "http://h/<img src=x onerror=window.__xss=1>/v1"


def test_gateway_page_shows_routes_keys_and_usage(page: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with live_server(settings) as srv, Client(settings=settings) as c:
        gw = c.gateway
        gw.set_route(
            "chat",
            upstreams=[{"url": XSS_URL}],
            cache={"ttl_s": 60},
            guards={"injection": "block"},
            prices={"input_per_mtok": 1, "output_per_mtok": 2},
        )
        live = gw.create_key("app", routes=["chat"], team="research")
        gone = gw.create_key("old", routes=["*"])
        gw.revoke_key(gone.key.id)
        now = int(time.time() * 1000)
        db = Database(settings.resolved_database_url)
        rows = [
            {
                "id": f"u{i}",
                "ts": now - day * 86_400_000,
                "key_id": live.key.id,
                "team": "research",
                "route": "chat",
                "model": "m",
                "endpoint": "chat",
                "status": 200,
                "code": None,
                "input_tokens": 100 * (day + 1),
                "output_tokens": 10,
                "cost_micros": 120 * (day + 1),
                "latency_ms": 5.0,
                "overhead_ms": 0.4,
                "cache": None,
                "decisions": [],
            }
            for i, day in enumerate([0, 0, 1])
        ]
        GatewayService(db).record_usage(rows)
        db.dispose()

        page.goto(f"{srv.url}/ui/#/gateway")
        route = page.locator("[data-testid=gateway-route][data-name=chat]")
        route.wait_for()
        cells = route.locator("td").all_inner_texts()
        assert cells[1] == XSS_URL and cells[4] == "60 s" and "injection:block" in cells[5]
        assert page.locator("img[src=x]").count() == 0 and page.evaluate("window.__xss") is None
        assert (
            page.locator(f"[data-testid=gateway-key][data-id='{live.key.id}']").get_attribute(
                "data-status"
            )
            == "active"
        )
        assert (
            page.locator(f"[data-testid=gateway-key][data-id='{gone.key.id}']").get_attribute(
                "data-status"
            )
            == "revoked"
        )
        assert live.secret not in page.content()

        bars = page.locator("[data-testid=gateway-usage-row]")
        bars.first.wait_for()
        assert bars.count() == 2  # two days of route "chat"
        values = page.locator("[data-testid=gateway-usage-value]").all_inner_texts()
        assert any("2 req" in v and "$0.000240" in v for v in values)  # today: 2 x 120 micro-USD
        page.get_by_test_id("gateway-group").select_option("team")
        page.wait_for_selector("[data-testid=gateway-usage-row][data-group=research]")
        assert page.locator("[data-testid=gateway-usage-row][data-group=research]").count() == 2
