"""With auth on, the UI asks once for an API token, keeps it in the browser and sends it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsloop import Client
from opsloop.settings import Settings
from tests.conftest import live_server

pytestmark = pytest.mark.ui


def test_the_ui_asks_for_a_token_once_and_keeps_it(browser: Any, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", auth=True)
    with Client(settings=settings) as c:
        c.create_experiment("guarded-exp")
        secret = c.governance.create_token("vera", "viewer").secret
    asked: list[str] = []

    def on_dialog(d: Any) -> None:
        asked.append(d.message)
        d.accept(secret)

    with live_server(settings) as srv:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.on("dialog", on_dialog)
            page.goto(f"{srv.url}/ui/#/experiments")
            page.get_by_text("guarded-exp").first.wait_for()
            assert len(asked) == 1 and "needs an API token" in asked[0]
            page.reload()
            page.get_by_text("guarded-exp").first.wait_for()
            assert len(asked) == 1  # kept in the browser, sent with every call
        finally:
            ctx.close()
