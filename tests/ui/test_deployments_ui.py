"""Deployments page: recorded model servers with their model, version, alias, URL and
status, refreshed every 5 s (a stop shows without reloading), and markup shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.settings import Settings
from tests.conftest import live_server

pytestmark = pytest.mark.ui

XSS = "<img src=x onerror=alert(1)>"


def test_deployments_page_lists_servers_and_refreshes(page: Any, tmp_path: Path) -> None:
    with live_server(Settings(home=tmp_path / "home")) as srv:
        api = f"{srv.url}/api/v1/deployments"
        body = {
            "name": "models:/churn@champion",
            "model_uri": "models:/churn/3",
            "model_name": "churn",
            "version": 3,
            "alias": "champion",
            "url": "http://127.0.0.1:5001",
            "flavor": "sklearn",
        }
        dep = httpx.post(api, json=body).json()
        odd = httpx.post(api, json={**body, "name": XSS, "alias": None, "version": None}).json()
        httpx.post(f"{api}/{odd['id']}/stop", json={"failed": True}).raise_for_status()

        page.goto(f"{srv.url}/ui/#/deployments")
        row = page.locator(f"[data-testid=deployment-row][data-id='{dep['id']}']")
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        assert cells[:6] == [
            "models:/churn@champion",
            "churn",
            "v3",
            "@champion",
            "http://127.0.0.1:5001",
            "RUNNING",
        ]
        assert row.get_by_test_id("deployment-model").get_attribute("href") == "#/models/churn"
        assert row.get_by_test_id("deployment-url").get_attribute("href") == body["url"]
        assert page.locator(".nav-link.active").inner_text() == "Deployments"

        other = page.locator(f"[data-testid=deployment-row][data-id='{odd['id']}']")
        assert other.locator("td").first.inner_text() == XSS  # text, not markup
        assert other.get_attribute("data-status") == "failed"
        assert page.locator("img[src=x]").count() == 0

        # Stopping it shows on the next refresh, without reloading the page.
        httpx.post(f"{api}/{dep['id']}/stop").raise_for_status()
        page.wait_for_selector(
            f"[data-testid=deployment-row][data-id='{dep['id']}'][data-status=stopped]",
            timeout=12_000,
        )
        assert row.get_by_test_id("deployment-status").inner_text() == "STOPPED"


def test_deployment_url_is_a_link_only_when_http(page: Any, tmp_path: Path) -> None:
    """A recorded URL is data: javascript:, data: and other schemes must not become live links."""
    unsafe = [
        "javascript:window.__pwned=1",
        "JaVaScRiPt:window.__pwned=1",
        " javascript:window.__pwned=1",  # browsers strip leading spaces from hrefs
        "data:text/html,<script>window.__pwned=1</script>",
        "//evil.example/x",  # protocol-relative: not an http(s) address as given
        "ftp://127.0.0.1/x",
    ]
    safe = ["http://127.0.0.1:5001", "https://models.example.com/churn"]
    with live_server(Settings(home=tmp_path / "home")) as srv:
        api = f"{srv.url}/api/v1/deployments"
        ids: dict[str, str] = {}
        for i, url in enumerate(unsafe + safe):
            body = {
                "name": f"dep-{i}",
                "model_uri": "models:/churn/1",
                "model_name": "churn",
                "version": 1,
                "url": url,
            }
            r = httpx.post(api, json=body)
            assert r.status_code == 201, r.text
            ids[url] = r.json()["id"]

        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{srv.url}/ui/#/deployments")
        page.locator("[data-testid=deployment-row]").nth(len(ids) - 1).wait_for()

        def cell(url: str) -> Any:
            row = page.locator(f"[data-testid=deployment-row][data-id='{ids[url]}']")
            return row.get_by_test_id("deployment-url")

        for url in unsafe:
            c = cell(url)
            assert c.evaluate("el => el.tagName") == "SPAN", url
            assert c.get_attribute("href") is None
            assert c.inner_text() == url.strip()  # shown, as text
            c.click()
        for url in safe:
            c = cell(url)
            assert c.evaluate("el => el.tagName") == "A", url
            assert c.get_attribute("href") == url
            assert c.get_attribute("rel") == "noopener noreferrer"
        # No link anywhere on the page points at a script or data URL, and nothing ran.
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        assert not [h for h in hrefs if not h.startswith(("#", "/", "http://", "https://"))]
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []
