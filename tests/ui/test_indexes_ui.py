"""Indexes page: the vector indexes in the server's home, an index's info, and its keyword
search box showing hits with scores and metadata (markup in data shown as text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from opsloop.settings import Settings
from tests.conftest import live_server

pytestmark = pytest.mark.ui

XSS = "<img src=x onerror=window.__xss=1>"


def test_indexes_page_lists_and_searches(page: Any, tmp_path: Path) -> None:
    with live_server(Settings(home=tmp_path / "home")) as srv:
        api = f"{srv.url}/api/v1/indexes"
        httpx.post(api, json={"name": "handbook", "dim": 3}).raise_for_status()
        httpx.post(api, json={"name": "empty", "dim": 8, "metric": "l2"}).raise_for_status()
        items = {
            "ids": ["warranty", "shipping", "xss"],
            "vectors": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            "texts": [
                "The kettle warranty lasts two years.",
                "Shipping is free for orders over 50 euros.",
                f"A kettle named {XSS}",
            ],
            "metadata": [{"source": "warranty.md"}, {"source": "shipping.md"}, {"source": XSS}],
        }
        httpx.post(f"{api}/handbook/items", json=items).raise_for_status()

        page.goto(f"{srv.url}/ui/#/indexes")
        row = page.locator("[data-testid=index-row][data-name=handbook]")
        row.wait_for()
        assert row.locator("td").all_inner_texts()[:5] == ["handbook", "3", "3", "cosine", "exact"]
        assert page.locator("[data-testid=index-row]").count() == 2
        assert page.locator(".nav-link.active").inner_text() == "Indexes"

        row.get_by_test_id("index-link").click()
        page.get_by_test_id("index-info").wait_for()
        assert page.get_by_test_id("index-name").inner_text() == "handbook"
        assert page.get_by_test_id("index-count").inner_text() == "3"
        page.get_by_test_id("index-query").fill("kettle warranty")
        page.get_by_test_id("index-query").press("Enter")
        page.get_by_test_id("hits-table").wait_for()
        hits = page.locator("[data-testid=hit-row]")
        assert hits.count() == 2
        assert hits.nth(0).get_by_test_id("hit-id").inner_text() == "warranty"
        assert float(hits.nth(0).get_by_test_id("hit-score").inner_text()) > float(
            hits.nth(1).get_by_test_id("hit-score").inner_text()
        )
        md = json.loads(hits.nth(0).get_by_test_id("hit-metadata").inner_text())
        assert md == {"source": "warranty.md"}
        assert XSS in hits.nth(1).get_by_test_id("hit-text").inner_text()  # text, not markup
        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("window.__xss") is None

        # A filter narrows the hits; a bad one shows the server's error.
        page.get_by_test_id("index-filter").fill('{"source": "warranty.md"}')
        page.get_by_test_id("index-search-button").click()
        expect(page.locator("[data-testid=hit-row]")).to_have_count(1)
        assert hits.nth(0).get_by_test_id("hit-id").inner_text() == "warranty"
        page.get_by_test_id("index-filter").fill('{"source": {"$regex": "x"}}')
        page.get_by_test_id("index-search-button").click()
        page.get_by_text("unknown operator").wait_for()

        page.goto(f"{srv.url}/ui/#/indexes/nope")
        page.get_by_text("does not exist").wait_for()
