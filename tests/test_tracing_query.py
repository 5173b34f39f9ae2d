"""Searching traces: every filter against a Python oracle, keyset pages, the filter
string, statistics, and the REST API's view of the same, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opsloop.errors import InvalidArgument, NotFound
from opsloop.server import create_app
from opsloop.settings import Settings
from opsloop.store import Database
from opsloop.tracing import TraceService
from tests.conftest import fresh_pg_database

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"]
DAY_US = 86_400_000_000
T0 = 1_700_000_000_000_000  # 2023-11-14, epoch µs


def _dataset(n: int = 120) -> list[dict[str, Any]]:
    """Traces of 1-4 spans with varied users, sessions, models, latencies and errors."""
    rng = random.Random(42)
    traces = []
    for i in range(n):
        tid = f"{i + 1:032x}"
        start = T0 + rng.randrange(5 * DAY_US)
        if i % 10 == 0:
            start = T0 + 123  # ties on start time: the keyset must still order them
        spans = []
        root = f"{i + 1:016x}"
        dur = rng.randrange(1_000, 3_000_000)
        model = MODELS[i % 3] if i % 4 else None
        spans.append(
            {
                "trace_id": tid,
                "span_id": root,
                "name": ["chat", "rag-query", "agent"][i % 3],
                "start_us": start,
                "end_us": start + dur,
                "status": "ERROR" if i % 7 == 0 else "OK",
                "attributes": {
                    "user.id": f"u{i % 5}",
                    "session.id": f"s{i % 11}",
                    "opsloop.trace.tags": ["prod"] if i % 2 else ["dev", "x_y"],
                },
            }
        )
        if model:
            spans.append(
                {
                    "trace_id": tid,
                    "span_id": f"{i + 1:08x}{'f' * 8}",
                    "parent_span_id": root,
                    "name": f"chat {model}",
                    "start_us": start + 10,
                    "end_us": start + 20,
                    "attributes": {
                        "gen_ai.request.model": model,
                        "gen_ai.usage.input_tokens": 1000 * (i % 9),
                        "gen_ai.usage.output_tokens": 100 * (i % 9),
                    },
                }
            )
        traces.append({"spans": spans, "start": start, "dur": dur, "model": model, "i": i})
    return traces


DATA = _dataset()


@contextlib.contextmanager
def loaded_service(
    request: pytest.FixtureRequest, home: Path, *, seed: int, batch: int | None = None
) -> Iterator[TraceService]:
    """A ``TraceService`` on SQLite or PostgreSQL (``request.param``) holding ``DATA``,
    its spans shuffled with ``seed`` and ingested ``batch`` at a time (default: at once)."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    with fresh_pg_database() if request.param == "postgres" else contextlib.nullcontext() as pg:
        settings = Settings(home=home, database_url=pg)
        db = Database(settings.resolved_database_url)
        db.ensure_schema()
        s = TraceService(db, settings)
        spans = [sp for t in DATA for sp in t["spans"]]
        random.Random(seed).shuffle(spans)
        step = batch or len(spans)
        for k in range(0, len(spans), step):
            s.ingest(spans[k : k + step])
        yield s
        db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def svc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TraceService]:
    # Many batches: the spans of a trace spread over them.
    with loaded_service(request, tmp_path_factory.mktemp("q") / "home", seed=1, batch=37) as s:
        yield s


def _all(svc: TraceService, **kw: Any) -> list[str]:
    ids, token = [], None
    while True:
        page = svc.list_traces(limit=7, page_token=token, **kw)
        ids.extend(t.id for t in page.traces)
        token = page.next_page_token
        if not token:
            return ids


def _expect(pred: Any, order: str = "desc") -> list[str]:
    rows = [t for t in DATA if pred(t)]
    rows.sort(key=lambda t: (t["start"], f"{t['i'] + 1:032x}"), reverse=order == "desc")
    return [f"{t['i'] + 1:032x}" for t in rows]


def _cost(t: dict[str, Any]) -> float:
    prices = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6), "claude-3-5-haiku": (0.8, 4.0)}
    if not t["model"]:
        return 0.0
    i = t["i"] % 9
    p = prices[t["model"]]
    return (1000 * i * p[0] + 100 * i * p[1]) / 1e6


FILTERS: list[tuple[dict[str, Any], Any]] = [
    ({}, lambda t: True),
    ({"user_id": "u3"}, lambda t: t["i"] % 5 == 3),
    ({"session_id": "s4"}, lambda t: t["i"] % 11 == 4),
    ({"status": "error"}, lambda t: t["i"] % 7 == 0),
    ({"has_error": False}, lambda t: t["i"] % 7 != 0),
    ({"name": "agent"}, lambda t: t["i"] % 3 == 2),
    ({"name_contains": "RAG"}, lambda t: t["i"] % 3 == 1),
    ({"model": "gpt-4o"}, lambda t: t["model"] == "gpt-4o"),
    ({"model": "gpt-4o", "user_id": "u1"}, lambda t: t["model"] == "gpt-4o" and t["i"] % 5 == 1),
    ({"min_latency_ms": 1500}, lambda t: t["dur"] >= 1_500_000),
    ({"max_latency_ms": 200}, lambda t: t["dur"] <= 200_000),
    ({"min_cost": 0.01}, lambda t: _cost(t) >= 0.01 - 1e-12),
    (
        {"since_ms": (T0 + DAY_US) // 1000, "until_ms": (T0 + 3 * DAY_US) // 1000},
        lambda t: T0 + DAY_US <= t["start"] < T0 + 3 * DAY_US,
    ),
    ({"tag": "x_y"}, lambda t: t["i"] % 2 == 0),
    ({"tag": "x"}, lambda t: False),  # an exact tag, not a substring
    (
        {"filter": 'status = "error" and latency_ms > 1000'},
        lambda t: t["i"] % 7 == 0 and t["dur"] > 1_000_000,
    ),
    (
        {"filter": '(user = "u1" or user = "u2") and not model = "claude-3-5-haiku"'},
        lambda t: t["i"] % 5 in (1, 2) and t["model"] != "claude-3-5-haiku",
    ),
    (
        {"filter": 'model in ("gpt-4o-mini", "claude-3-5-haiku") and tokens >= 4400'},
        lambda t: t["model"] in ("gpt-4o-mini", "claude-3-5-haiku") and 1100 * (t["i"] % 9) >= 4400,
    ),
    (
        {"filter": 'model != "gpt-4o" and name like "ch%"'},
        lambda t: t["model"] != "gpt-4o" and t["i"] % 3 == 0,
    ),
    ({"filter": 'tag = "prod" and spans = 1'}, lambda t: t["i"] % 2 == 1 and t["model"] is None),
    ({"filter": "cost > 0.005 or errors >= 1"}, lambda t: _cost(t) > 0.005 or t["i"] % 7 == 0),
]


@pytest.mark.parametrize(("kw", "pred"), FILTERS, ids=[str(k) for k, _ in FILTERS])
def test_filters_match_an_oracle_across_keyset_pages(
    svc: TraceService, kw: dict[str, Any], pred: Any
) -> None:
    assert _all(svc, **kw) == _expect(pred)


def test_pages_ascending_and_bad_tokens(svc: TraceService) -> None:
    ids, token = [], None
    while True:
        page = svc.list_traces(limit=11, page_token=token, order="asc")
        ids.extend(t.id for t in page.traces)
        if not (token := page.next_page_token):
            break
    assert ids == _expect(lambda t: True, "asc")
    desc_token = svc.list_traces(limit=5).next_page_token
    with pytest.raises(InvalidArgument):
        svc.list_traces(page_token=desc_token, order="asc")
    for bad in ("garbage", "W10", "!!!"):
        with pytest.raises(InvalidArgument):
            svc.list_traces(page_token=bad)
    with pytest.raises(InvalidArgument):
        svc.list_traces(limit=0)


@pytest.mark.parametrize(
    "text",
    [
        "nosuch = 1",
        'status = "maybe"',
        'latency_ms > "x"',
        "name = ",
        '(user = "a"',
        'model > "a"',
        'tag like "a"',
        'user = "a" @',
    ],
)
def test_bad_filter_strings_are_invalid_arguments(svc: TraceService, text: str) -> None:
    with pytest.raises(InvalidArgument):
        svc.list_traces(filter=text)


def test_summaries_and_stats(svc: TraceService) -> None:
    t = svc.get_trace(f"{2:032x}")  # i = 1: model gpt-4o-mini, user u1
    assert (t.user_id, t.session_id, t.models, t.tags) == ("u1", "s1", ["gpt-4o-mini"], ["prod"])
    assert (t.input_tokens, t.output_tokens, t.span_count) == (1000, 100, 2)
    assert t.total_cost == pytest.approx(_cost(DATA[1]))
    with pytest.raises(NotFound):
        svc.get_trace("f" * 32)
    with pytest.raises(InvalidArgument):
        svc.get_trace("nope")
    st = svc.stats()
    assert st.traces == len(DATA) and st.errors == sum(1 for d in DATA if d["i"] % 7 == 0)
    assert st.cost == pytest.approx(sum(_cost(d) for d in DATA))
    assert sum(d.traces for d in st.by_day) == len(DATA) and len(st.by_day) >= 5
    durs = sorted(d["dur"] for d in DATA)
    assert st.p50_ms == durs[len(durs) // 2 - 1] / 1000
    by_model = {m.model: m for m in st.by_model}
    assert set(by_model) == set(MODELS)
    assert by_model["gpt-4o"].calls == sum(1 for d in DATA if d["model"] == "gpt-4o")
    assert by_model["gpt-4o"].p95_ms == 0.01
    st_u = svc.stats(user_id="u2", model="gpt-4o")
    assert st_u.traces == sum(1 for d in DATA if d["i"] % 5 == 2 and d["model"] == "gpt-4o")


def test_rest_api_lists_filters_and_serves_trees(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "home")
    with TestClient(create_app(s), raise_server_exceptions=False) as api:
        spans = [sp for t in DATA[:30] for sp in t["spans"]]
        r = api.post("/api/v1/traces/batch", json={"spans": spans})
        assert r.status_code == 200 and r.json()["accepted"] == len(spans)
        ids, token = [], None
        while True:
            params: dict[str, Any] = {"limit": 4, "model": "gpt-4o-mini"}
            if token:
                params["page_token"] = token
            body = api.get("/api/v1/traces", params=params).json()
            ids += [t["id"] for t in body["traces"]]
            if not (token := body["next_page_token"]):
                break
        expected = [x for x in _expect(lambda t: t["model"] == "gpt-4o-mini") if int(x, 16) <= 30]
        assert ids == expected
        f = api.get(
            "/api/v1/traces", params={"filter": 'status = "error"', "has_error": True}
        ).json()
        assert {t["id"] for t in f["traces"]} == {f"{i + 1:032x}" for i in range(30) if i % 7 == 0}
        tree = api.get(f"/api/v1/traces/{2:032x}").json()
        assert tree["spans"][0]["children"][0]["offset_ms"] == 0.01
        assert api.get("/api/v1/traces/stats").json()["traces"] == 30
        # Bad input: 4xx in the one error shape, never 500, nothing stored.
        for method, path, kw, status in [
            ("GET", "/api/v1/traces", {"params": {"limit": 0}}, 400),
            ("GET", "/api/v1/traces", {"params": {"status": "meh"}}, 400),
            ("GET", "/api/v1/traces", {"params": {"filter": "bogus = 1"}}, 400),
            ("GET", "/api/v1/traces", {"params": {"page_token": "zzz"}}, 400),
            ("GET", "/api/v1/traces/" + "0" * 32, {}, 404),
            ("GET", "/api/v1/traces/NOT-AN-ID", {}, 400),
            (
                "POST",
                "/api/v1/traces/batch",
                {"content": b"{oops", "headers": {"content-type": "application/json"}},
                400,
            ),
            ("POST", "/api/v1/traces/batch", {"json": {"spans": "x"}}, 400),
            ("POST", "/api/v1/traces/batch", {"json": {"spans": [{"trace_id": "1"}]}}, 400),
            (
                "PUT",
                "/api/v1/traces/prices/m",
                {"json": {"input_per_mtok": -1, "output_per_mtok": 1}},
                400,
            ),
            ("DELETE", "/api/v1/traces/prices/never-set", {}, 404),
        ]:
            r = api.request(method, path, **kw)
            assert r.status_code == status, (path, kw, r.text)
            assert set(r.json()) == {"error"} and r.json()["error"]["code"].isupper()
        assert api.get("/api/v1/traces/stats").json()["traces"] == 30
        r = api.put(
            "/api/v1/traces/prices/org/model-x", json={"input_per_mtok": 1, "output_per_mtok": 2}
        )
        assert r.status_code == 200 and r.json()["model"] == "org/model-x"
        prices = {p["model"]: p for p in api.get("/api/v1/traces/prices").json()["prices"]}
        assert prices["org/model-x"]["source"] == "custom"
        assert api.delete("/api/v1/traces/prices/org/model-x").status_code == 204
        assert api.delete(f"/api/v1/traces/{2:032x}").status_code == 204
        assert api.get(f"/api/v1/traces/{2:032x}").status_code == 404
        paths = set(api.get("/api/v1/openapi.json").json()["paths"])
        assert {
            "/api/v1/traces",
            "/api/v1/traces/{trace_id}",
            "/api/v1/traces/stats",
            "/v1/traces",
        } <= paths


@pytest.mark.parametrize("cap", [0, 10_000])
def test_latency_and_cost_bounds_agree_on_both_query_plans(
    svc: TraceService, cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cap 0: never read the bound's index (walk start times); 10,000: always read it.
    from opsloop.tracing import _query

    monkeypatch.setattr(_query, "RANGE_INDEX_MAX_ROWS", cap)
    assert _all(svc, min_latency_ms=1500) == _expect(lambda t: t["dur"] >= 1_500_000)
    assert _all(svc, min_cost=0.004) == _expect(lambda t: _cost(t) >= 0.004 - 1e-12)
    since = (T0 + DAY_US) // 1000
    assert _all(svc, min_latency_ms=800, since_ms=since) == _expect(
        lambda t: t["dur"] >= 800_000 and t["start"] >= T0 + DAY_US
    )
