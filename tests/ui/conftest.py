"""Browser fixtures for the UI tests: Debian's Chromium driven headless by Playwright,
against a real ``opsloop`` server on a loopback socket, with data logged through
``opsloop.Client`` into the server's own home.

Without /usr/bin/chromium the tests are skipped, except under CI=true where they fail.
Screenshots go to ``$OPSLOOP_UI_SHOTS`` when set, else to a pytest tmp folder.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opsloop.settings import Settings
from tests.conftest import (  # noqa: F401 (re-exported for the UI tests)
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveServer,
    _require_chromium,
    live_server,
)

T0 = 1_700_000_000_000

# What an XSS payload would set if the page ever parsed data as HTML.
XSS_TAG = '<script>window.__xss = 1; alert(1)</script><img src=x onerror="window.__xss=2;alert(2)">'
XSS_NAME = "<img src=x onerror=window.__xss=3>"


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG (a red-to-blue gradient), written by hand with zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes([255 - 60 * x, 40, 60 * x]) for x in range(width))
        for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("OPSLOOP_UI_SHOTS")
    if env:
        p = Path(env)
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("ui-shots")


@dataclass
class PageProbe:
    """A page plus what it reported: uncaught script errors and dialogs (alert etc.)."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def probe(browser: Any) -> Iterator[PageProbe]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    pr = PageProbe(page)
    page.on("pageerror", lambda e: pr.errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        pr.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield pr
    finally:
        ctx.close()
    assert not pr.errors, f"uncaught errors in the page: {pr.errors}"


@pytest.fixture
def page(probe: PageProbe) -> Any:
    return probe.page


def canvas_ink(page: Any, selector: str) -> int:
    """How many pixels of the first canvas under ``selector`` are painted (alpha > 0)."""
    return int(
        page.eval_on_selector(
            f"{selector} canvas",
            """(c) => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return n;
            }""",
        )
    )


@dataclass
class Seeded:
    server: LiveServer
    experiment_id: str
    runs: dict[str, str]  # run name -> id

    @property
    def url(self) -> str:
        return self.server.url

    def ui(self, fragment: str) -> str:
        return f"{self.server.url}/ui/#{fragment}"


def _curve(key: str, final: float, n: int = 60) -> list[tuple[str, float, int, int]]:
    return [(key, final * (1 - math.exp(-s / 10)), s, T0 + s * 1000) for s in range(n)]


def seed(home: Path) -> tuple[str, dict[str, str]]:
    """One experiment with three ordinary runs, one child run and one run full of markup."""
    from opsloop import Client

    c = Client(home=home)
    try:
        exp = c.create_experiment("ui-demo", "Runs for the <b>UI</b> tests", tags={"team": "web"})
        runs: dict[str, str] = {}
        specs = [
            ("alpha", {"lr": 0.1, "model": "rf", "depth": 3, "seed": 7, "zeta_param": "z1"}, 0.71),
            ("bravo", {"lr": 0.01, "model": "rf", "depth": 5, "seed": 7, "zeta_param": "z2"}, 0.93),
            (
                "charlie",
                {"lr": 0.001, "model": "cnn", "depth": 4, "seed": 7, "zeta_param": "z3"},
                0.85,
            ),
        ]
        for name, params, f1 in specs:
            r = c.create_run(exp.id, name=name, params=params, tags={"note": f"{name} run"})
            runs[name] = r.id
            pts = _curve("f1", f1) + _curve("loss", 1 - f1)
            pts += [
                ("system/cpu_percent", 40 + 5 * math.sin(s), s, T0 + s * 1000) for s in range(30)
            ]
            c.log_batch(r.id, metrics=pts)
            c.set_terminated(r.id)
        child = c.create_run(
            exp.id, name="alpha-fold-1", parent_run_id=runs["alpha"], params={"lr": 0.1}
        )
        c.log_batch(child.id, metrics=[("f1", 0.6, 0, T0)])
        runs["alpha-fold-1"] = child.id
        evil = c.create_run(
            exp.id,
            name=XSS_NAME,
            params={"lr": 0.5, "model": "<b>bold</b>"},
            tags={"evil": XSS_TAG},
            notes=XSS_TAG,
        )
        c.log_batch(evil.id, metrics=[("f1", 0.5, 0, T0)])
        runs["evil"] = evil.id

        a = runs["alpha"]
        c.log_text(
            a, "hello from the artifact browser\nsecond line <b>not bold</b>\n", "notes/readme.txt"
        )
        c.log_text(
            a, 'name,score,comment\nalpha,0.71,"fast, small"\nbravo,0.93,plain\n', "data/table.csv"
        )
        c.log_dict(a, {"lr": 0.1, "layers": [64, 32]}, "config.json")
        big_log = "".join(f"step {i:06d} loss={1 / (i + 1):.6f}\n" for i in range(12_000))
        c.log_text(a, big_log, "logs/train.log")  # ~330 KB: the preview shows the head only
        png = home.parent / "gradient.png"
        png.write_bytes(tiny_png())
        c.log_artifact(a, png, "plots")
        c.flush()
        return exp.id, runs
    finally:
        c.close()


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    _require_chromium()
    home = tmp_path_factory.mktemp("ui-home") / "home"
    home.mkdir()
    exp_id, runs = seed(home)
    with live_server(Settings(home=home)) as srv:
        yield Seeded(srv, exp_id, runs)
