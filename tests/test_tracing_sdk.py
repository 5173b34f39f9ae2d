"""The tracing SDK: decorator and context-manager nesting, contexts across threads and
tasks, errors, LLM calls and their cost, user/session ids, and background export.

The ``tracing`` fixture runs each test embedded and against a live server, on SQLite
and on PostgreSQL: what a test reads back went through the real store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop import tracing
from opsloop.errors import FlushError, InvalidArgument
from opsloop.settings import Settings
from opsloop.tracing import SpanNode, TraceDetail, Tracing
from tests.conftest import BackendEnv, live_server, run_async


@pytest.fixture
def tr(backend: BackendEnv) -> Iterator[Tracing]:
    """A ``Tracing`` on each of the four backends (the shared ``backend`` fixture)."""
    t = Tracing(backend.client)
    assert t.is_remote == backend.remote
    yield t
    t.close()


def _walk(nodes: list[SpanNode]) -> Iterator[SpanNode]:
    for n in nodes:
        yield n
        yield from _walk(n.children)


def _by_name(trace: TraceDetail) -> dict[str, SpanNode]:
    return {n.name: n for n in _walk(trace.spans)}


def test_nesting_builds_the_tree_with_parent_ids_and_timings(tr: Tracing) -> None:
    @tr.trace(kind="retriever")
    def retrieve(query: str, k: int = 2) -> list[str]:
        time.sleep(0.01)
        return [f"doc{i}" for i in range(k)]

    @tr.trace(name="pipeline")
    def answer(question: str) -> str:
        docs = retrieve(question)
        with tracing.span("generate", kind="llm") as s:
            time.sleep(0.02)
            s.set_attribute("gen_ai.request.model", "local")
            s.set_output(f"{question}: {len(docs)}")
        return "done"

    assert answer("q?") == "done"
    tr.flush()
    page = tr.list_traces()
    assert len(page.traces) == 1
    summary = page.traces[0]
    assert (summary.name, summary.span_count, summary.status) == ("pipeline", 3, "OK")
    trace = tr.get_trace(summary.id)
    assert [n.name for n in trace.spans] == ["pipeline"]
    root = trace.spans[0]
    assert root.parent_span_id is None and root.depth == 0 and root.kind == "chain"
    assert [c.name for c in root.children] == ["retrieve", "generate"]  # in start order
    spans = _by_name(trace)
    assert spans["retrieve"].parent_span_id == root.span_id
    assert spans["generate"].parent_span_id == root.span_id
    assert {n.depth for n in root.children} == {1}
    assert spans["retrieve"].inputs == {"query": "q?", "k": 2} or spans["retrieve"].inputs == {
        "query": "q?"
    }
    assert spans["retrieve"].outputs == ["doc0", "doc1"]
    assert root.inputs == {"question": "q?"} and root.outputs == "done"
    # Timings: children inside the parent, in order, with the time they slept.
    assert spans["retrieve"].duration_ms >= 9 and spans["generate"].duration_ms >= 19
    assert 0 <= spans["retrieve"].offset_ms <= spans["generate"].offset_ms
    assert spans["generate"].offset_ms >= spans["retrieve"].offset_ms + 9
    assert root.duration_ms >= spans["retrieve"].duration_ms + spans["generate"].duration_ms
    assert summary.duration_ms == pytest.approx(root.duration_ms, abs=0.01)
    flat = tr.get_trace(summary.id, flat=True).spans
    assert [n.name for n in flat] == ["pipeline", "retrieve", "generate"]
    assert [n.depth for n in flat] == [0, 1, 1] and all(not n.children for n in flat)


def test_exceptions_mark_spans_and_trace_as_errors(tr: Tracing) -> None:
    @tr.trace(kind="tool")
    def tool() -> None:
        raise ValueError("the tool broke")

    with pytest.raises(ValueError), tr.start_trace("agent"):
        tool()
    tr.flush()
    summary = tr.list_traces().traces[0]
    assert summary.status == "ERROR" and summary.error_count == 2
    spans = _by_name(tr.get_trace(summary.id))
    assert spans["tool"].status == "ERROR"
    assert spans["tool"].status_message == "ValueError: the tool broke"
    ev = spans["tool"].events[0]
    assert ev["name"] == "exception"
    assert ev["attributes"]["exception.type"] == "ValueError"
    assert "the tool broke" in ev["attributes"]["exception.stacktrace"]
    assert spans["agent"].status == "ERROR"
    assert tr.list_traces(status="error").traces[0].id == summary.id
    assert tr.list_traces(status="ok").traces == []


def test_async_tasks_and_threads_keep_their_own_contexts(tr: Tracing) -> None:
    @tr.trace(kind="tool")
    async def step(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @tr.trace(name="request")
    async def handle(user: str) -> int:
        with tracing.trace_context(user_id=user):
            a, b = await asyncio.gather(step(1), step(2))
        return a + b

    async def main() -> None:
        await asyncio.gather(handle("u1"), handle("u2"), handle("u3"))

    run_async(main())

    def worker(i: int) -> None:
        with tr.start_trace(f"thread-{i}", session_id=f"s{i}"):
            for _ in range(3):
                with tracing.span("work"):
                    time.sleep(0.001)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tr.flush()
    traces = tr.list_traces(limit=100).traces
    assert len(traces) == 7
    requests = [t for t in traces if t.name == "request"]
    assert sorted(t.user_id for t in requests) == ["u1", "u2", "u3"]
    for t in requests:
        detail = tr.get_trace(t.id)
        assert [c.name for c in detail.spans[0].children] == ["step", "step"]
        assert t.span_count == 3
    for t in (t for t in traces if t.name.startswith("thread-")):
        assert t.span_count == 4 and t.session_id == f"s{t.name[-1]}"
        detail = tr.get_trace(t.id)
        assert len(detail.spans) == 1 and len(detail.spans[0].children) == 3


def test_generators_record_items_and_do_not_leak_context(tr: Tracing) -> None:
    @tr.trace(kind="llm")
    def stream(n: int) -> Iterator[str]:
        for i in range(n):
            yield f"tok{i} "

    @tr.trace
    async def astream(n: int) -> Any:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    with tr.start_trace("consumer") as root:
        for _ in stream(3):
            # Between items the consumer's span is current, not the generator's.
            assert tracing.current_span() is root

        async def consume() -> list[int]:
            return [x async for x in astream(3)]

        assert run_async(consume()) == [0, 1, 2]
    tr.flush()
    spans = _by_name(tr.get_trace(root.trace_id))
    assert spans["stream"].outputs == "tok0 tok1 tok2 "
    assert spans["stream"].parent_span_id == root.span_id
    assert spans["astream"].outputs == [0, 1, 2]


def test_llm_calls_carry_genai_attributes_tokens_and_cost(tr: Tracing) -> None:
    with tr.start_trace("chat", user_id="alice", session_id="sess-1", tags=["prod", "v2"]):
        tr.record_llm_call(
            model="gpt-4o-mini-2024-07-18",
            provider="openai",
            input_messages=[{"role": "user", "content": "hello"}],
            output="hi there",
            input_tokens=1_000_000,
            output_tokens=500_000,
            params={"temperature": 0.2, "max_tokens": 64, "top_p": 0.9},
            duration_s=0.05,
        )

        @tr.trace(kind="llm")
        def local_llm(prompt: str) -> str:
            tracing.record_llm_call(model="SmolLM2-135M-Instruct", input_tokens=7, output_tokens=3)
            return "ok"

        local_llm("x")
    tr.flush()
    summary = tr.list_traces().traces[0]
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M (the versioned name matches its prefix).
    assert summary.total_cost == pytest.approx(0.15 + 0.30)
    assert (summary.input_tokens, summary.output_tokens) == (1_000_007, 500_003)
    assert sorted(summary.models) == ["SmolLM2-135M-Instruct", "gpt-4o-mini-2024-07-18"]
    assert (summary.user_id, summary.session_id, summary.tags) == (
        "alice",
        "sess-1",
        ["prod", "v2"],
    )
    spans = _by_name(tr.get_trace(summary.id))
    call = spans["chat gpt-4o-mini-2024-07-18"]
    assert call.kind == "llm" and call.duration_ms == pytest.approx(50, abs=2)
    a = call.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.usage.input_tokens"] == 1_000_000
    assert a["gen_ai.usage.output_tokens"] == 500_000
    assert call.inputs == [{"role": "user", "content": "hello"}]
    assert call.outputs == [{"role": "assistant", "content": "hi there"}]
    assert call.cost == pytest.approx(0.45)
    # Inside an llm span the call annotates that span instead of adding one.
    assert "chat SmolLM2-135M-Instruct" not in spans
    assert spans["local_llm"].model == "SmolLM2-135M-Instruct" and spans["local_llm"].cost == 0
    assert tr.list_traces(model="gpt-4o-mini-2024-07-18").traces[0].id == summary.id
    assert tr.list_traces(model="gpt-4").traces == []
    by_model = {m.model: m for m in tr.stats().by_model}
    assert by_model["gpt-4o-mini-2024-07-18"].calls == 1
    assert by_model["gpt-4o-mini-2024-07-18"].cost == pytest.approx(0.45)


def test_costs_follow_an_edited_price_table(tr: Tracing) -> None:
    tr.record_llm_call(model="acme/my-finetune", input_tokens=2_000_000, output_tokens=1_000_000)
    tr.flush()
    unknown = tr.list_traces().traces[0]
    assert unknown.total_cost == 0.0  # no price for it: no cost, not a guess
    assert tr.get_trace(unknown.id).spans[0].cost is None
    p = tr.set_price("my-finetune", 1.5, 4.0)
    assert (p.model, p.source) == ("my-finetune", "custom")
    assert {x.model: x for x in tr.list_prices()}["my-finetune"].input_per_mtok == 1.5
    tr.record_llm_call(model="acme/my-finetune", input_tokens=2_000_000, output_tokens=1_000_000)
    tr.set_price("gpt-4o", 10.0, 20.0)  # override a default
    tr.record_llm_call(model="gpt-4o", input_tokens=100_000, output_tokens=100_000)
    tr.flush()
    costs = sorted(t.total_cost for t in tr.list_traces().traces)
    assert costs == pytest.approx([0.0, 3.0, 7.0])  # 0.1*10+0.1*20 = 3; 2*1.5+1*4 = 7
    assert [t.id for t in tr.list_traces(min_cost=5).traces] != []
    tr.delete_price("gpt-4o")
    assert {x.model: x for x in tr.list_prices()}["gpt-4o"].source == "default"
    with pytest.raises(opsloop.errors.NotFound):
        tr.delete_price("gpt-4o")
    with pytest.raises(InvalidArgument):
        tr.set_price("bad", -1, 0)


def test_trace_context_sets_user_and_session_on_every_span(tr: Tracing) -> None:
    with tracing.trace_context(user_id="bob", session_id="conv-9"), tr.span("outer") as s:
        with tracing.span("inner"):
            pass
        assert s.attributes["user.id"] == "bob"
    with tracing.trace_context(session_id="conv-9"), tr.span("second"):
        pass
    tr.flush()
    by_session = tr.list_traces(session_id="conv-9").traces
    assert sorted(t.name for t in by_session) == ["outer", "second"]
    assert [t.name for t in tr.list_traces(user_id="bob").traces] == ["outer"]
    inner = _by_name(
        tr.get_trace(by_session[-1].id if by_session[-1].name == "outer" else by_session[0].id)
    )["inner"]
    assert inner.attributes["session.id"] == "conv-9"


def test_bad_spans_are_refused_whole(tr: Tracing) -> None:
    good = {
        "trace_id": "a" * 32,
        "span_id": "b" * 16,
        "name": "ok",
        "start_us": 1,
        "end_us": 2,
    }
    for bad in (
        {**good, "trace_id": "xyz"},
        {**good, "span_id": "0" * 16},
        {**good, "end_us": 0},
        {**good, "kind": "nonsense"},
        {**good, "extra": 1},
        {**good, "name": ""},
        {**good, "attributes": [1]},
    ):
        with pytest.raises(InvalidArgument):
            tr.ingest([good | {"span_id": "c" * 16}, bad])
    assert tr.list_traces().traces == []
    assert tr.ingest([good]).accepted == 1
    again = tr.ingest([good])
    assert (again.accepted, again.duplicates) == (0, 1)
    assert tr.list_traces().traces[0].span_count == 1


def test_spans_arriving_children_first_merge_into_one_trace(tr: Tracing) -> None:
    tid, root, child = "1" * 32, "2" * 16, "3" * 16
    tr.ingest(
        [
            {
                "trace_id": tid,
                "span_id": child,
                "parent_span_id": root,
                "name": "llm-call",
                "start_us": 2_000,
                "end_us": 3_000,
                "attributes": {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10},
            }
        ]
    )
    first = tr.list_traces().traces[0]
    assert (first.name, first.span_count, first.start_us) == ("llm-call", 1, 2_000)
    tr.ingest(
        [
            {
                "trace_id": tid,
                "span_id": root,
                "name": "root",
                "start_us": 1_000,
                "end_us": 5_000,
                "attributes": {"user.id": "late"},
            }
        ]
    )
    t = tr.get_trace(tid)
    assert (t.name, t.span_count, t.start_us, t.end_us, t.duration_ms) == (
        "root",
        2,
        1_000,
        5_000,
        4.0,
    )
    assert t.user_id == "late" and t.input_tokens == 10
    assert t.spans[0].children[0].offset_ms == 1.0
    # The model index follows the trace's new start: keyset pages by model stay consistent.
    assert tr.list_traces(model="gpt-4o").traces[0].start_us == 1_000


def test_flush_raises_when_the_server_is_gone_and_keeps_spans(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h", flush_interval_s=60.0)
    with live_server(s) as srv:
        url = srv.url
    c = opsloop.Client(url, settings=s.model_copy(update={"http_retries": 0}))
    t = Tracing(c)
    with t.span("lost?"):
        pass
    with pytest.raises(FlushError) as err:
        t.flush()
    assert err.value.details["pending_spans"] == 1
    assert t.tracer.exporter.pending == 1
    # Back up on the same store: the kept span is written by the next flush.
    with live_server(s) as srv2:
        c2 = opsloop.Client(srv2.url, settings=s.model_copy(update={"http_retries": 0}))
        t.tracer.exporter._write = Tracing(c2)._write  # the new server's port
        assert t.flush() == 1
        assert Tracing(c2).list_traces().traces[0].name == "lost?"
        c2.close()
    t.tracer.exporter.close(flush=False)
    c.close()


def test_decorator_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument):
        tracing.trace(kind="wizard")
    with pytest.raises(InvalidArgument):
        tracing.set_masking("not callable")  # type: ignore[arg-type]
