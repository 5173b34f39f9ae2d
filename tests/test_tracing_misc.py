"""Masking before storage and before sending, the price table and its file, the span
exporter's failure handling, size limits, the CLI, and import weight."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import opsloop
from opsloop import tracing
from opsloop.errors import FlushError, InvalidArgument
from opsloop.settings import Settings
from opsloop.tracing import Tracing
from opsloop.tracing._exporter import SpanExporter
from opsloop.tracing._masking import Masker
from opsloop.tracing._normalize import MAX_IO_BYTES, TRUNCATED
from opsloop.tracing._prices import PriceTable
from tests.conftest import live_server

EMAIL, KEY, CARD, CUSTOM = (
    "carol@example.org",
    "sk-ant-0123456789abcdefghijklmnop",
    "5500-0000-0000-0004",
    "PATIENT-7781",
)


def _db_bytes(home: Path) -> bytes:
    db = home / "opsloop.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(FULL)")
    con.close()
    return b"".join(p.read_bytes() for p in home.glob("opsloop.db*") if p.is_file())


def _leaky(t: Tracing) -> str:
    """A trace that puts each secret in inputs, outputs, attributes, events and an error."""
    text = f"{EMAIL} {KEY} {CARD} {CUSTOM}"
    with pytest.raises(RuntimeError), t.start_trace("leaky", user_id="u") as root:
        root.set_input({"prompt": text, "nested": [{"deep": text}]})
        root.set_attribute("note", text)
        root.add_event("log", {"line": text})
        t.record_llm_call(
            model="gpt-4o", input_messages=text, output=text, input_tokens=1, output_tokens=1
        )
        root.set_output(text)
        raise RuntimeError(text)
    t.flush()
    return root.trace_id


@pytest.fixture
def custom_mask() -> Iterator[None]:
    tracing.set_masking(lambda s: s.replace(CUSTOM, "[PATIENT]"))
    try:
        yield
    finally:
        tracing.set_masking(None)


def test_sdk_masks_before_storing(tmp_path: Path, custom_mask: None) -> None:
    home = tmp_path / "home"
    c = opsloop.Client(settings=Settings(home=home, trace_mask_patterns=["all"]))
    t = Tracing(c)
    tid = _leaky(t)
    detail = t.get_trace(tid).model_dump_json()
    c.close()
    for secret in (EMAIL, KEY, CARD, CUSTOM):
        assert secret not in detail
        assert secret.encode() not in _db_bytes(home)
    for marker in ("[REDACTED:email]", "[REDACTED:api_key]", "[REDACTED:credit_card]", "[PATIENT]"):
        assert marker in detail


def test_remote_sdk_masks_before_sending(tmp_path: Path, custom_mask: None) -> None:
    server_home = tmp_path / "server"
    with live_server(Settings(home=server_home)) as srv:  # the server masks nothing itself
        c = opsloop.Client(
            srv.url,
            settings=Settings(
                home=tmp_path / "client", trace_mask_patterns=["email", "api_key", "credit_card"]
            ),
        )
        t = Tracing(c)
        tid = _leaky(t)
        assert t.get_trace(tid).spans[0].name == "leaky"
        c.close()
    for secret in (EMAIL, KEY, CARD, CUSTOM):
        assert secret.encode() not in _db_bytes(server_home)


def test_masker_rules() -> None:
    m = Masker(["email", "credit_card", r"order-\d+"])
    assert m.text("mail a.b+c@x.co.uk now") == "mail [REDACTED:email] now"
    assert m.text("card 4111111111111111.") == "card [REDACTED:credit_card]."
    assert m.text("id 1234567890123456") == "id 1234567890123456"  # not Luhn-valid: not a card
    assert m.text("order-42 shipped") == "[REDACTED] shipped"
    assert m.value({"k": ["a@b.io", 3, None]}) == {"k": ["[REDACTED:email]", 3, None]}
    assert m.text(m.text("x@y.io")) == "[REDACTED:email]"  # idempotent
    assert (
        Masker(["bearer"]).text("Authorization: Bearer abc.def-123456")
        == "Authorization: Bearer [REDACTED:token]"
    )
    with pytest.raises(InvalidArgument):
        Masker(["(unclosed"])
    with pytest.raises(InvalidArgument):
        Masker([], fn=lambda s: 1).text("x")  # type: ignore[arg-type,return-value]
    assert not Masker()


def test_price_matching_and_the_price_file(tmp_path: Path) -> None:
    table = PriceTable.build(None, {})
    assert table.lookup("gpt-4o-2024-08-06").model == "gpt-4o"  # type: ignore[union-attr]
    assert table.lookup("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # type: ignore[union-attr]
    assert table.lookup("openai/GPT-4o").model == "gpt-4o"  # type: ignore[union-attr]
    assert table.lookup("gpt-4") is None  # "gpt-4o" is not a version of "gpt-4"
    assert table.cost("HuggingFaceTB/SmolLM2-135M-Instruct", 1000, 1000) == 0.0
    assert table.cost("gpt-4o", 1_000_000, 0) == 2.5
    assert table.cost("unknown-model", 10, 10) is None

    home = tmp_path / "home"
    home.mkdir()
    (home / "prices.yaml").write_text("gpt-4o: {input: 1, output: 2}\nmine: [0.5, 0.25]\n")
    c = opsloop.Client(home=home)
    t = Tracing(c)
    prices = {p.model: p for p in t.list_prices()}
    assert (prices["gpt-4o"].input_per_mtok, prices["gpt-4o"].source) == (1.0, "file")
    assert prices["mine"].output_per_mtok == 0.25
    t.record_llm_call(model="mine-v2", input_tokens=4_000_000, output_tokens=4_000_000)
    t.flush()
    assert t.list_traces().traces[0].total_cost == pytest.approx(3.0)
    t.set_price("mine", 1, 1)  # the database's price wins over the file's
    assert {p.model: p for p in t.list_prices()}["mine"].source == "custom"
    time.sleep(0.01)
    (home / "prices.yaml").write_text("gpt-4o: {input: lots}\n")
    with pytest.raises(InvalidArgument, match=r"prices\.yaml"):
        t.list_prices()
    # A broken price file never makes ingest fail: defaults and custom prices still apply.
    t.record_llm_call(model="mine", input_tokens=1_000_000, output_tokens=0)
    t.flush()
    assert t.list_traces().traces[0].total_cost == pytest.approx(1.0)
    c.close()


def test_exporter_batches_in_the_background_and_keeps_failed_spans() -> None:
    written: list[list[dict[str, Any]]] = []
    fail = threading.Event()
    fail.set()

    def write(spans: list[dict[str, Any]]) -> None:
        if fail.is_set():
            raise ConnectionError("store down")
        written.append(spans)

    exp = SpanExporter(write, interval_s=0.05, max_batch=3, max_pending=5)
    for i in range(4):
        exp.add({"i": i})
    with pytest.raises(FlushError) as err:
        exp.flush()
    assert err.value.details == {"pending_spans": 4, "dropped_spans": 0}
    assert exp.pending == 4
    exp.add({"i": 4})
    exp.add({"i": 5})  # over max_pending: dropped, and the next flush says so
    fail.clear()
    with pytest.raises(FlushError) as err:
        exp.flush()
    assert err.value.details["dropped_spans"] == 1
    assert [s["i"] for batch in written for s in batch] == [0, 1, 2, 3, 4]
    exp.add({"i": 6})
    deadline = time.time() + 5
    while exp.pending and time.time() < deadline:  # the background thread writes it
        time.sleep(0.01)
    assert exp.pending == 0 and written[-1] == [{"i": 6}]
    exp.close()


def test_sizes_are_limited_with_a_truncation_marker(tmp_path: Path) -> None:
    c = opsloop.Client(home=tmp_path / "home")
    t = Tracing(c)
    with t.span("big") as s:
        s.set_input("x" * (MAX_IO_BYTES * 3))
        s.set_attribute("long", "y" * 50_000)
        s.set_output({"ok": True})
    t.flush()
    node = t.get_trace(s.trace_id).spans[0]
    assert node.inputs[TRUNCATED] is True and node.inputs["size"] > MAX_IO_BYTES * 3
    assert len(node.inputs["head"]) < MAX_IO_BYTES
    assert len(node.attributes["long"]) < 9_000 and TRUNCATED in node.attributes["long"]
    assert node.outputs == {"ok": True}
    c.close()


def test_disabled_tracing_and_the_default_destination(tmp_path: Path) -> None:
    c = opsloop.Client(home=tmp_path / "home")
    t = Tracing(c).activate()
    try:
        with tracing.span("to-default"):
            pass
        tracing.configure(enabled=False)
        with tracing.span("not-exported"):
            pass
        tracing.configure(enabled=True)
        tracing.flush()
        assert [x.name for x in t.list_traces().traces] == ["to-default"]
    finally:
        from opsloop.tracing import _active

        _active.set_current(None)
        c.close()


def test_purge_and_delete(tmp_path: Path) -> None:
    c = opsloop.Client(home=tmp_path / "home")
    t = Tracing(c)
    old = {
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "name": "old",
        "start_us": 1_000,
        "end_us": 2_000,
    }
    t.ingest([old])
    with t.span("new"):
        pass
    t.flush()
    from opsloop.tracing._service import TraceService

    svc = TraceService(c.context.database, c.settings)
    assert svc.purge(before_ms=10) == 1
    assert [x.name for x in t.list_traces().traces] == ["new"]
    t.delete_trace(t.list_traces().traces[0].id)
    assert t.list_traces().traces == []
    c.close()


def test_cli_lists_shows_a_timed_tree_and_edits_prices(tmp_path: Path) -> None:
    # Through the main CLI, where the lead mounts the group (importing the room's
    # module first would start opsloop.cli's import from inside it).
    from opsloop.cli import app as main_app

    def app_run(args: list[str], **kw: Any) -> Any:
        return CliRunner().invoke(main_app, ["traces", *args], **kw)

    home = tmp_path / "home"
    c = opsloop.Client(home=home)
    t = Tracing(c)
    with t.start_trace("cli-chat", user_id="dora") as root, t.span("lookup", "retriever"):
        t.record_llm_call(model="gpt-4o", input_tokens=10, output_tokens=2, duration_s=0.01)
    t.flush()
    c.close()
    env = {"COLUMNS": "200"}
    res = app_run(["list", "--home", str(home), "--user", "dora"], env=env)
    assert res.exit_code == 0 and root.trace_id in res.output and "cli-chat" in res.output
    res = app_run(["show", root.trace_id, "--home", str(home)], env=env)
    assert res.exit_code == 0, res.output
    assert "lookup [retriever]" in res.output and "chat gpt-4o [llm]" in res.output
    assert "█" in res.output and "ms" in res.output
    res = app_run(["show", root.trace_id, "--home", str(home), "--json"])
    assert json.loads(res.output)["spans"][0]["name"] == "cli-chat"
    res = app_run(["stats", "--home", str(home)], env=env)
    assert res.exit_code == 0 and "gpt-4o" in res.output
    res = app_run(["prices", "set", "house-model", "0.5", "1.5", "--home", str(home)])
    assert res.exit_code == 0
    res = app_run(["prices", "list", "--home", str(home), "--json"])
    assert {p["model"]: p["source"] for p in json.loads(res.output)}["house-model"] == "custom"
    res = app_run(["show", "nope", "--home", str(home)])
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output
    res = app_run(["list", "--home", str(home), "--since", "yesterday-ish"])
    assert res.exit_code == 1
    with t.start_trace("cli-long") as long_root:
        time.sleep(0.3)  # longer than "cli-chat" even on a loaded machine
    t.flush()
    res = app_run(["list", "--home", str(home), "--sort", "latency_ms", "--json"])
    listed = json.loads(res.output)["traces"]
    took = [x["duration_ms"] for x in listed]
    assert took == sorted(took, reverse=True) and len(took) == 2, listed
    assert listed[0]["id"] == long_root.trace_id, listed
    res = app_run(["list", "--home", str(home), "--sort", "latency_ms", "--asc", "--json"])
    assert [x["id"] for x in json.loads(res.output)["traces"]][-1] == long_root.trace_id
    res = app_run(["list", "--home", str(home), "--sort", "colour"])
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output


def test_importing_the_sdk_stays_light() -> None:
    code = (
        "import sys, json\n"
        "from opsloop.tracing import trace, span, record_llm_call, trace_context\n"
        "@trace\n"
        "def f(x): return x\n"
        "print(json.dumps(sorted(m for m in ('sqlalchemy', 'fastapi', 'numpy', 'opentelemetry') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
