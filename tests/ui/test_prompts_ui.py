"""Prompt pages: the list with label chips, a prompt's versions with commit messages and
labels, the template view, a diff between two chosen versions, the render box calling the
render API (with its PROMPT_VARIABLES error), and XSS safety."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.ui.conftest import XSS_TAG, PageProbe, _require_chromium

pytestmark = pytest.mark.ui

CHAT_V2 = [
    {"role": "system", "content": "You answer as {{ persona }}."},
    {"role": "user", "content": "Question: {{ question }}"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_chromium()
    from opsloop import Client

    home = tmp_path_factory.mktemp("prompts-ui") / "home"
    with Client(home=home) as c:
        c.prompts.create(
            "qa", "Question: {{ question }}", message="first cut", labels=["production"]
        )
        c.prompts.create("qa", CHAT_V2, message="as chat, with a persona", labels=["staging"])
        c.prompts.create(
            "evil",
            f"{XSS_TAG} {{{{ x }}}}",
            message=XSS_TAG,
            metadata={"note": XSS_TAG},
        )
        c.prompts.create("evil", f"{XSS_TAG} v2 {{{{ x }}}}", message="second")
        c.prompts.create("gone", "first {{ y }}")
        c.prompts.create("gone", "second {{ y }}")
    with live_server(Settings(home=home)) as srv:
        yield srv


def test_prompt_list_and_page(page: Any, server: LiveServer, shots_dir: Path) -> None:
    page.goto(f"{server.url}/ui/#/prompts")
    row = page.locator("[data-testid=prompt-row][data-name=qa]")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["qa", "v2", "2"]
    chips = row.get_by_test_id("label-chip").evaluate_all("els => els.map(e => e.dataset.label)")
    assert chips == ["production", "staging"]
    assert page.locator(".nav-link.active").inner_text() == "Prompts"
    page.get_by_test_id("prompt-search").fill("evi")
    assert page.locator("[data-testid=prompt-row]").count() == 1

    page.goto(f"{server.url}/ui/#/prompts/qa")
    page.get_by_test_id("prompt-version-title").wait_for()
    assert page.get_by_test_id("prompt-name").inner_text() == "qa"
    rows = page.locator("[data-testid=prompt-version-row]")
    assert rows.evaluate_all("els => els.map(e => e.dataset.version)") == ["2", "1"]
    assert rows.nth(0).get_by_test_id("commit-message").inner_text() == "as chat, with a persona"
    labels_v2 = (
        rows.nth(0)
        .get_by_test_id("label-chip")
        .evaluate_all("els => els.map(e => e.dataset.label)")
    )
    assert labels_v2 == ["staging", "latest"]
    assert rows.nth(1).get_by_test_id("label-chip").inner_text() == "@production"

    # The newest version's template: one block per chat message, variables highlighted.
    assert page.get_by_test_id("prompt-version-title").inner_text() == "qa v2"
    msgs = page.locator("[data-testid=prompt-message]")
    assert msgs.evaluate_all("els => els.map(e => e.dataset.role)") == ["system", "user"]
    assert msgs.nth(1).locator(".prompt-var").inner_text() == "{{ question }}"

    # The diff between the two versions (chosen by default: previous -> newest).
    diff = page.get_by_test_id("diff-text")
    diff.wait_for()
    assert diff.locator(".dl-add").all_inner_texts() == [
        "+[system]",
        "+You answer as {{ persona }}.",
        "+[user]",
    ]
    assert diff.locator(".dl-del").count() == 0  # the question line is in both versions
    assert " Question: {{ question }}" in diff.locator(".dl").all_inner_texts()
    assert page.get_by_test_id("vars-added").inner_text() == "variables added: persona"
    page.screenshot(path=shots_dir / "prompt-page.png", full_page=True)

    # Choosing the same version on both sides: identical.
    page.get_by_test_id("diff-a").select_option("2")
    page.get_by_test_id("diff-identical").wait_for()
    assert "a=2" in page.evaluate("location.hash") and "b=2" in page.evaluate("location.hash")

    # Older version by clicking its row: a text template.
    rows.nth(1).click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=prompt-version-title]').textContent === 'qa v1'"
    )
    assert page.get_by_test_id("prompt-template").inner_text() == "Question: {{ question }}"


def test_render_box_calls_the_api(page: Any, server: LiveServer, shots_dir: Path) -> None:
    page.goto(f"{server.url}/ui/#/prompts/qa?v=2")
    box = page.get_by_test_id("render-box")
    box.wait_for()
    names = box.get_by_test_id("render-var").evaluate_all("els => els.map(e => e.dataset.var)")
    assert names == ["persona", "question"]
    box.locator("[data-var=persona]").fill("a pirate")
    box.locator("[data-var=question]").fill("Where is <b>the</b> treasure?")
    with page.expect_response(lambda r: r.url.endswith("/prompts/qa/render")) as resp:
        box.get_by_test_id("render-go").click()
    assert resp.value.status == 200
    out = box.locator("[data-testid=rendered-message]")
    out.first.wait_for()
    assert out.evaluate_all("els => els.map(e => e.dataset.role)") == ["system", "user"]
    assert out.nth(0).locator("pre").inner_text() == "You answer as a pirate."
    assert out.nth(1).locator("pre").inner_text() == "Question: Where is <b>the</b> treasure?"
    assert box.locator("b").count() == 0
    page.screenshot(path=shots_dir / "prompt-render.png", full_page=True)

    # The text version: render with an empty value is fine; the API error reads clearly.
    page.goto(f"{server.url}/ui/#/prompts/evil?v=1")
    box = page.get_by_test_id("render-box")
    box.wait_for()
    box.locator("[data-var=x]").fill("X")
    box.get_by_test_id("render-go").click()
    box.get_by_test_id("render-output").wait_for()
    assert box.get_by_test_id("render-output").inner_text() == f"{XSS_TAG} X"


def test_render_errors_are_shown(page: Any, server: LiveServer) -> None:
    # The API's variable check, as the SDK and the page rely on it.
    r = httpx.post(
        f"{server.url}/api/v1/prompts/qa/render", json={"version": 1, "variables": {"q": "x"}}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "PROMPT_VARIABLES"
    assert "missing variable question" in r.json()["error"]["message"]
    # A version deleted after the page loaded: the render box says so.
    page.goto(f"{server.url}/ui/#/prompts/gone?v=1")
    box = page.get_by_test_id("render-box")
    box.wait_for()
    gone = httpx.delete(f"{server.url}/api/v1/registry/models/gone/versions/1")
    assert gone.status_code == 204
    box.locator("[data-var=y]").fill("Y")
    box.get_by_test_id("render-go").click()
    err = box.locator(".error-box")
    err.wait_for()
    assert "has no version 1" in err.inner_text()
    assert err.locator(".error-code").inner_text() == "NOT_FOUND"


def test_markup_in_prompts_stays_text(probe: PageProbe, server: LiveServer) -> None:
    page = probe.page
    page.goto(f"{server.url}/ui/#/prompts/evil?v=1&a=1&b=2")
    page.get_by_test_id("prompt-version-title").wait_for()
    page.get_by_test_id("diff-text").wait_for()
    assert XSS_TAG in page.get_by_test_id("prompt-template").inner_text()
    assert page.get_by_test_id("prompt-version-message").inner_text() == XSS_TAG
    assert XSS_TAG in page.get_by_test_id("prompt-metadata").inner_text()
    assert XSS_TAG in page.get_by_test_id("diff-text").inner_text()
    assert page.locator("main script, main img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert probe.dialogs == []
