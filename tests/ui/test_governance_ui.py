"""With auth on, the UI signs in on its own page (a session cookie and a CSRF token); the audit
and approvals pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from opsloop import Client
from opsloop.settings import Settings
from tests.conftest import live_server

pytestmark = pytest.mark.ui

XSS = "<img src=x onerror=window.__xss=1>"


def test_the_ui_signs_in_with_a_token_and_out_again(browser: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", auth=True)
    with Client(settings=settings) as c:
        c.create_experiment("guarded-exp")
        secret = c.governance.create_token("vera", "editor").secret
    with live_server(settings) as srv:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            # Not signed in: the UI sends the browser to the sign-in page, and back afterwards.
            page.goto(f"{srv.url}/ui/#/experiments")
            page.wait_for_url("**/auth/login?next=*")
            page.fill("#token", "ols_not-a-real-token")
            page.click("button[type=submit]")
            expect(page.locator("#login-error")).to_contain_text("TOKEN_INVALID")
            page.fill("#token", secret)
            page.click("button[type=submit]")
            page.wait_for_url("**/ui/#/experiments")
            page.get_by_text("guarded-exp").first.wait_for()
            expect(page.locator("#session-user")).to_have_text("vera (editor)")
            cookies = {c["name"]: c for c in ctx.cookies()}
            assert cookies["opsloop_session"]["httpOnly"] is True
            assert cookies["opsloop_session"]["sameSite"] == "Strict"
            assert cookies["opsloop_csrf"]["httpOnly"] is False
            # The page's script cannot read the session cookie, only the CSRF token.
            seen = page.evaluate("document.cookie")
            assert "opsloop_csrf=" in seen and "opsloop_session" not in seen
            # A change from the page carries the CSRF token; one without it is refused.
            made = page.evaluate(
                """async () => {
                    const { api } = await import("/ui/static/js/api.js");
                    return (await api("/experiments", { method: "POST", body: { name: "from-ui" } })).name;
                }"""
            )
            assert made == "from-ui"
            status = page.evaluate(
                """async () => (await fetch("/api/v1/experiments", { method: "POST",
                    headers: { "Content-Type": "application/json" },
                    body: JSON.stringify({ name: "forged" }) })).status"""
            )
            assert status == 403
            page.reload()  # the session outlives the page
            expect(page.locator("#session-user")).to_have_text("vera (editor)")
            page.click("#sign-out")
            page.wait_for_url("**/auth/login")
            assert "opsloop_session" not in {c["name"] for c in ctx.cookies()}
            page.goto(f"{srv.url}/ui/#/experiments")
            page.wait_for_url("**/auth/login?next=*")
        finally:
            ctx.close()


def test_audit_page_lists_filters_and_shows_the_chain(page: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", audit=True)
    with live_server(settings) as srv:
        api = f"{srv.url}/api/v1"
        for who, name in (("zoe", "m1"), ("max", "m2"), ("zoe", XSS)):
            r = httpx.post(
                f"{api}/registry/models", json={"name": name}, headers={"X-Opsloop-User": who}
            )
            assert r.status_code in (201, 400), r.text
        httpx.patch(
            f"{api}/registry/models/m1",
            json={"description": "v2"},
            headers={"X-Opsloop-User": "zoe"},
        ).raise_for_status()
        page.goto(f"{srv.url}/ui/#/audit")
        page.locator("[data-testid=audit-row]").first.wait_for()
        assert "Chain intact" in page.get_by_test_id("audit-chain").inner_text()
        actors = page.locator("[data-testid=audit-actor]").all_inner_texts()
        assert actors[0] == "zoe" and "max" in actors  # newest first
        page.get_by_test_id("audit-actor-filter").fill("max")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("[data-testid=audit-row]")).to_have_count(1)
        assert page.locator("[data-testid=audit-path]").inner_text() == "/api/v1/registry/models"
        page.get_by_test_id("audit-actor-filter").fill("zoe")
        page.get_by_test_id("audit-method-filter").select_option("PATCH")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("[data-testid=audit-row]")).to_have_count(1)
        row = page.locator("[data-testid=audit-row]")
        row.locator("summary").click()
        shown = row.locator("pre").all_inner_texts()
        assert '"description": ""' in shown[0] and '"description": "v2"' in shown[1]
        assert page.evaluate("window.__xss") is None


def test_approvals_page_shows_the_gate_and_approves(page: Any, tmp_path: Path) -> None:
    from tests.test_governance_approvals import _two_versions

    settings = Settings(home=tmp_path / "home", user="root")
    with Client(settings=settings) as c:
        _two_versions(c, tmp_path)
        c.registry.set_alias("churn", "production", 1)
        c.evaluation.set_gate("churn", [{"metric": "acc", "min": 0.9}], aliases=["production"])
        c.governance.protect_alias("churn", "production", reviewers=["vera"])
    with live_server(settings) as srv:
        asked = httpx.post(
            f"{srv.url}/api/v1/approvals",
            json={"model": "churn", "alias": "production", "version": 2, "note": XSS},
            headers={"X-Opsloop-User": "alice"},
        )
        assert asked.status_code == 201, asked.text
        page.goto(f"{srv.url}/ui/#/approvals")
        row = page.locator("[data-testid=approval-row]")
        expect(row).to_have_count(1)
        assert row.get_by_test_id("approval-move").inner_text() == "v1 → v2"
        assert row.get_by_test_id("approval-gate").inner_text().strip() == "passed"
        row.get_by_test_id("approval-comment").fill("ship it")
        row.get_by_role("button", name="Approve").click()
        expect(page.locator("[data-testid=approval-row]")).to_have_count(0)  # no longer pending
        page.get_by_test_id("approval-state-filter").select_option("approved")
        expect(page.get_by_text("approved by root: ship it")).to_be_visible()
        with Client(settings=settings) as c:
            assert c.registry.get_version_by_alias("churn", "production").version == 2
        assert page.evaluate("window.__xss") is None
