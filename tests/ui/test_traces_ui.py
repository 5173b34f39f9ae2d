"""Trace views: the traces list (server-side filter, sort, pages, quick filters,
auto-refresh, empty state) and one trace (span tree, waterfall bars sized by duration,
span details, error spans, markup shown as text), on traces recorded through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from opsloop.settings import Settings
from tests.conftest import LiveServer, live_server
from tests.ui.conftest import PageProbe, _require_chromium

pytestmark = pytest.mark.ui

XSS_INPUT = "<img src=x onerror=window.__xss=1>"
XSS_TRACE = "evil <img src=x onerror=window.__xss=2>"
LONG_QUERY = "refund policy " * 300  # ~4,200 characters: shown cut, with "show more"


@dataclass
class TraceHome:
    server: LiveServer
    ids: dict[str, str]  # label -> trace id
    experiment_id: str

    def ui(self, fragment: str) -> str:
        return f"{self.server.url}/ui/#{fragment}"

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.server.url}/api/v1{path}", params=params)
        r.raise_for_status()
        return r.json()


def _seed(home: Path) -> tuple[dict[str, str], str]:
    from opsloop import Client
    from opsloop.tracing import Tracing

    c = Client(home=home)
    tr = Tracing(c)
    ids: dict[str, str] = {}
    try:
        exp = c.create_experiment("rag-eval")
        # An old call, two days back: outside the "last 24 h" quick filter.
        old = tr.record_llm_call(
            model="gpt-4o",
            input_messages="hello",
            output="hi",
            input_tokens=3,
            output_tokens=2,
            start_time=time.time() - 2 * 86400,
            end_time=time.time() - 2 * 86400 + 0.5,
        )
        ids["old"] = old.trace_id
        with tr.start_trace("rag-answer", user_id="u-bob", session_id="chat-7", tags=["prod"]) as b:
            time.sleep(0.01)
        ids["bob"] = b.trace_id
        for i in range(4):
            with tr.start_trace(f"batch-{i}", tags=["batch"]) as s:
                time.sleep(0.004 * (i + 1))
            ids[f"batch-{i}"] = s.trace_id
        with tr.start_trace(
            "rag-answer",
            user_id="u-alice",
            session_id="chat-7",
            tags=["prod", "v2"],
            experiment_id=exp.id,
            inputs={"question": "What is the refund policy?"},
        ) as root:
            with tr.span("retrieve", kind="retriever", inputs={"query": LONG_QUERY}) as ret:
                t0 = time.time()
                time.sleep(0.03)
                tr.record_llm_call(
                    model="text-embedding-3-small",
                    operation="embeddings",
                    input_messages=["What is the refund policy?"],
                    input_tokens=7,
                    start_time=t0,
                    end_time=time.time(),
                )
                time.sleep(0.03)
                ret.set_output(["Refunds within 30 days.", "Keep the receipt."])
            try:
                with tr.span("lookup-order", kind="tool", inputs={"order": 42}):
                    time.sleep(0.02)
                    raise ValueError("order 42 not found")
            except ValueError:
                pass
            t1 = time.time()
            time.sleep(0.08)
            tr.record_llm_call(
                model="gpt-4o-mini",
                provider="openai",
                input_messages=[
                    {"role": "system", "content": "Answer from the documents."},
                    {"role": "user", "content": XSS_INPUT},
                ],
                output="Refunds are accepted within 30 days.",
                input_tokens=812,
                output_tokens=64,
                params={"temperature": 0.2, "max_tokens": 256},
                start_time=t1,
                end_time=time.time(),
            )
            root.set_output("Refunds are accepted within 30 days.")
        ids["alice"] = root.trace_id
        with tr.start_trace(XSS_TRACE, inputs=XSS_INPUT) as evil:
            pass
        ids["evil"] = evil.trace_id
        tr.flush()
        return ids, exp.id
    finally:
        tr.close()
        c.close()


@pytest.fixture(scope="module")
def traces_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceHome]:
    _require_chromium()
    home = tmp_path_factory.mktemp("trace-ui") / "home"
    home.mkdir()
    ids, exp_id = _seed(home)
    with live_server(Settings(home=home)) as srv:
        yield TraceHome(srv, ids, exp_id)


def _row_ids(page: Any) -> list[str]:
    rows = page.locator("[data-testid=trace-row]")
    return [rows.nth(i).get_attribute("data-id") for i in range(rows.count())]


def _wait_rows(page: Any, ids: list[str]) -> None:
    """Wait until the table shows exactly these trace ids, in this order."""
    page.wait_for_function(
        """(want) => {
            const got = [...document.querySelectorAll('[data-testid=trace-row]')].map((r) => r.dataset.id);
            return JSON.stringify(got) === JSON.stringify(want);
        }""",
        arg=ids,
    )


def test_traces_list_filters_sorts_and_pages(probe: PageProbe, traces_home: TraceHome) -> None:
    page, th = probe.page, traces_home
    newest = [t["id"] for t in th.api("/traces", limit=100)["traces"]]
    assert len(newest) == 8
    page.goto(th.ui("/traces"))
    _wait_rows(page, newest)
    assert page.locator(".nav-link.active").inner_text() == "Traces"
    alice = page.locator(f"[data-testid=trace-row][data-id='{th.ids['alice']}']")
    cells = alice.locator("td").all_inner_texts()
    assert cells[0].startswith("rag-answer") and "gpt-4o-mini" in cells[0]
    assert cells[3:7] == ["ERROR", "u-alice", "chat-7", "819 / 64"]
    assert cells[8] == "5" and "prod" in cells[9] and "v2" in cells[9]

    # Sorting is the server's: by duration, longest first, then the other way.
    by_dur = [t["id"] for t in th.api("/traces", limit=100, sort="latency_ms")["traces"]]
    page.locator("[data-testid=trace-col][data-col=duration]").click()
    _wait_rows(page, by_dur)
    assert "sort=latency_ms%3Adesc" in page.url or "sort=latency_ms:desc" in page.url
    page.locator("[data-testid=trace-col][data-col=duration]").click()
    _wait_rows(page, by_dur[::-1])
    page.locator("[data-testid=trace-col][data-col=start]").click()
    _wait_rows(page, newest)

    # The filter language, with its error inline and the list left alone until fixed.
    box = page.get_by_test_id("trace-filter-input")
    box.fill('latency_ms > "slow"')
    box.press("Enter")
    err = page.get_by_test_id("trace-filter-error")
    err.wait_for(state="visible")
    assert "Invalid filter" in err.inner_text() and "latency_ms" in err.inner_text()
    assert box.get_attribute("aria-invalid") == "true"
    box.fill('status = "error" and tokens > 800')
    box.press("Enter")
    _wait_rows(page, [th.ids["alice"]])
    assert err.is_hidden()
    box.fill('tag = "batch"')
    box.press("Enter")
    _wait_rows(page, [th.ids[f"batch-{i}"] for i in (3, 2, 1, 0)])
    page.get_by_text("Clear", exact=True).click()
    _wait_rows(page, newest)

    # Quick filters: a user, a session (from a row), errors only, a time range.
    page.get_by_test_id("quick-user").fill("u-bob")
    page.get_by_test_id("quick-apply").click()
    _wait_rows(page, [th.ids["bob"]])
    page.get_by_text("Reset", exact=True).click()
    _wait_rows(page, newest)
    alice.get_by_test_id("trace-session").locator("a").click()
    _wait_rows(page, [th.ids["alice"], th.ids["bob"]])
    assert page.get_by_test_id("quick-session").input_value() == "chat-7"
    page.get_by_test_id("quick-errors").check()
    _wait_rows(page, [th.ids["alice"]])
    page.get_by_text("Reset", exact=True).click()
    page.get_by_test_id("quick-range").select_option("24h")
    _wait_rows(page, [i for i in newest if i != th.ids["old"]])
    page.get_by_test_id("quick-range").select_option("")
    _wait_rows(page, newest)

    # Keyset pages of three.
    page.evaluate("localStorage.setItem('opsloop.traces.pageSize', '3')")
    page.reload()
    _wait_rows(page, newest[:3])
    page.get_by_test_id("next-page").click()
    _wait_rows(page, newest[3:6])
    page.get_by_test_id("next-page").click()
    _wait_rows(page, newest[6:])
    assert page.get_by_test_id("next-page").is_disabled()
    page.get_by_test_id("prev-page").click()
    _wait_rows(page, newest[3:6])

    # Markup in a trace name is text.
    page.evaluate("localStorage.removeItem('opsloop.traces.pageSize')")
    page.goto(th.ui("/traces?filter=" + quote('name like "evil%"')))
    _wait_rows(page, [th.ids["evil"]])
    assert page.get_by_test_id("trace-link").inner_text() == XSS_TRACE
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__xss") is None


def test_auto_refresh_shows_new_traces(probe: PageProbe, tmp_path: Path) -> None:
    from opsloop import Client
    from opsloop.tracing import Tracing

    page = probe.page
    with live_server(Settings(home=tmp_path / "home")) as srv:
        page.goto(f"{srv.url}/ui/#/traces")
        empty = page.get_by_test_id("traces-empty")
        empty.wait_for()
        # The empty state says how to send traces: the SDK, and OTLP to this server.
        text = empty.inner_text()
        assert "@tracing.trace" in text and f"{srv.url}/v1/traces" in text
        page.get_by_test_id("auto-refresh").check()
        c = Client(srv.url)
        tr = Tracing(c)
        try:
            with tr.start_trace("arrived-later", user_id="u-9") as s:
                pass
            tr.flush()
        finally:
            tr.close()
            c.close()
        page.wait_for_selector(f"[data-testid=trace-row][data-id='{s.trace_id}']", timeout=12_000)
        # Off again: the choice is remembered for the next visit.
        page.get_by_test_id("auto-refresh").uncheck()
        assert page.evaluate("localStorage.getItem('opsloop.traces.autoRefresh')") == "false"


def _span_rows(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        "[data-testid=span-row]",
        """(rows) => rows.map((r) => {
            const track = r.querySelector('.wf-track').getBoundingClientRect();
            const bar = r.querySelector('[data-testid=span-bar]').getBoundingClientRect();
            return {
                id: r.dataset.spanId, depth: Number(r.dataset.depth), kind: r.dataset.kind,
                status: r.dataset.status, name: r.querySelector('[data-testid=span-name]').textContent,
                left: bar.left - track.left, width: bar.width, track: track.width,
            };
        })""",
    )


def test_trace_view_tree_waterfall_and_details(probe: PageProbe, traces_home: TraceHome) -> None:
    page, th = probe.page, traces_home
    tid = th.ids["alice"]
    flat = th.api(f"/traces/{tid}", flat="true")
    total = flat["duration_ms"]
    page.goto(th.ui(f"/traces/{tid}"))
    page.get_by_test_id("span-tree").wait_for()
    page.wait_for_selector("[data-testid=span-row]")
    rows = _span_rows(page)

    # Tree order and nesting are the server's depth-first order.
    assert [(r["name"], r["depth"]) for r in rows] == [
        ("rag-answer", 0),
        ("retrieve", 1),
        ("embeddings text-embedding-3-small", 2),
        ("lookup-order", 1),
        ("chat gpt-4o-mini", 1),
    ]
    assert [r["id"] for r in rows] == [s["span_id"] for s in flat["spans"]]
    assert [r["kind"] for r in rows] == ["chain", "retriever", "embedding", "tool", "llm"]
    assert page.locator("[data-testid=span-kind]").first.inner_text() == "CHAIN"

    # Each bar starts at the span's offset and is as wide as its share of the trace.
    for r, s in zip(rows, flat["spans"], strict=True):
        assert r["width"] == pytest.approx(max(2.0, s["duration_ms"] / total * r["track"]), abs=1.5)
        assert r["left"] == pytest.approx(s["offset_ms"] / total * r["track"], abs=1.5)
    assert rows[0]["width"] == pytest.approx(rows[0]["track"], abs=1)
    assert rows[4]["width"] > rows[3]["width"]  # the 80 ms call outlasts the 20 ms tool

    # The failed tool call is marked, and its details show the exception.
    err_row = page.locator("[data-testid=span-row][data-status=ERROR]")
    assert (
        err_row.count() == 1 and err_row.get_by_test_id("span-name").inner_text() == "lookup-order"
    )
    assert err_row.get_by_test_id("span-error-mark").count() == 1
    assert (
        page.locator("[data-testid=span-row][data-status=OK] [data-testid=span-error-mark]").count()
        == 0
    )
    err_row.click()
    detail = page.get_by_test_id("span-detail")
    assert detail.get_by_test_id("detail-name").inner_text() == "lookup-order"
    assert "ValueError: order 42 not found" in detail.get_by_test_id("detail-error").inner_text()
    exc = detail.get_by_test_id("span-exception")
    assert "ValueError: order 42 not found" in exc.inner_text()
    assert "Traceback" in exc.inner_text()
    assert "span=" in page.url  # the selection is in the address, for a link

    # Collapsing a span hides its subtree; expanding brings it back.
    ret = page.locator("[data-testid=span-row]").nth(1)
    ret.get_by_test_id("span-toggle").click()
    assert [r["name"] for r in _span_rows(page)] == [
        "rag-answer",
        "retrieve",
        "lookup-order",
        "chat gpt-4o-mini",
    ]
    assert ret.get_attribute("aria-expanded") == "false"
    ret.get_by_test_id("span-toggle").click()
    assert len(_span_rows(page)) == 5

    # The model call: model, parameters, usage, latency, cost, messages as messages.
    page.locator("[data-testid=span-row][data-kind=llm]").click()
    llm = flat["spans"][4]
    assert detail.get_by_test_id("detail-name").inner_text() == "chat gpt-4o-mini"
    assert detail.get_by_test_id("detail-model").inner_text().endswith("gpt-4o-mini")
    assert "812 in / 64 out" in detail.get_by_test_id("detail-tokens").inner_text()
    assert llm["cost"] and llm["cost"] > 0
    assert "$" in detail.get_by_test_id("detail-cost").inner_text()
    assert "ms" in detail.get_by_test_id("detail-latency").inner_text()
    params = detail.get_by_test_id("detail-params").inner_text()
    assert "temperature" in params and "0.2" in params and "max_tokens" in params
    msgs = detail.get_by_test_id("detail-inputs").get_by_test_id("chat-message")
    assert [msgs.nth(i).get_attribute("data-role") for i in range(msgs.count())] == [
        "system",
        "user",
    ]
    # The prompt full of markup reads as the characters it holds.
    assert msgs.nth(1).locator(".chat-text").inner_text() == XSS_INPUT
    out = detail.get_by_test_id("detail-outputs").get_by_test_id("chat-message")
    assert out.get_attribute("data-role") == "assistant"
    assert out.locator(".chat-text").inner_text() == "Refunds are accepted within 30 days."
    assert "gen_ai.request.model" in detail.get_by_test_id("detail-attributes").inner_text()
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__xss") is None
    assert probe.dialogs == []

    # A large input is cut, with a button for the rest.
    page.locator("[data-testid=span-row][data-kind=retriever]").click()
    inputs = detail.get_by_test_id("detail-inputs")
    shown = inputs.locator("pre").inner_text()
    assert len(shown) == 2000 and shown.startswith('{\n  "query": "refund policy')
    inputs.get_by_test_id("show-more").click()
    assert LONG_QUERY.strip() in inputs.locator("pre").inner_text()
    assert "Keep the receipt." in detail.get_by_test_id("detail-outputs").inner_text()

    # Links: the session's other traces, filter links, the experiment.
    session = page.get_by_test_id("session-traces")
    session.get_by_test_id("session-trace").nth(1).wait_for()
    got = [
        session.get_by_test_id("session-trace").nth(i).get_attribute("data-id") for i in range(2)
    ]
    assert got == [th.ids["bob"], tid]
    assert page.get_by_test_id("trace-session-link").get_attribute("href") == (
        "#/traces?session=chat-7"
    )
    exp_link = page.get_by_test_id("trace-experiment-link")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=trace-experiment-link]').textContent === 'rag-eval'"
    )
    assert exp_link.get_attribute("href") == f"#/experiments/{th.experiment_id}"
    session.get_by_test_id("session-all-link").click()
    _wait_rows(page, [tid, th.ids["bob"]])
    assert page.get_by_test_id("quick-session").input_value() == "chat-7"


def test_trace_view_deep_link_and_unknown_trace(probe: PageProbe, traces_home: TraceHome) -> None:
    page, th = probe.page, traces_home
    tid = th.ids["alice"]
    spans = th.api(f"/traces/{tid}", flat="true")["spans"]
    page.goto(th.ui(f"/traces/{tid}?span={spans[2]['span_id']}"))
    detail = page.get_by_test_id("span-detail")
    detail.get_by_test_id("detail-name").wait_for()
    assert detail.get_by_test_id("detail-name").inner_text() == spans[2]["name"]
    sel = page.locator("[data-testid=span-row].selected")
    assert sel.get_attribute("data-span-id") == spans[2]["span_id"]
    # Keyboard: down moves to the next span in tree order.
    sel.press("ArrowDown")
    assert detail.get_by_test_id("detail-name").inner_text() == spans[3]["name"]
    detail.get_by_test_id("detail-parent").locator("a").click()
    assert detail.get_by_test_id("detail-name").inner_text() == "rag-answer"

    page.goto(th.ui(f"/traces/{'f' * 32}"))
    box = page.locator(".error-box")
    box.wait_for()
    assert "not found" in box.inner_text()
