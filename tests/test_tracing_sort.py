"""Sorting trace lists by latency, cost, tokens, spans, errors and name: keyset pages
in that order agree with a Python oracle, on SQLite and PostgreSQL, and through REST."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opsloop.errors import InvalidArgument
from opsloop.server import create_app
from opsloop.settings import Settings
from opsloop.tracing import TraceService
from tests.test_tracing_query import DATA, _cost, loaded_service

TID = [f"{t['i'] + 1:032x}" for t in DATA]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def svc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TraceService]:
    with loaded_service(request, tmp_path_factory.mktemp("sort") / "home", seed=3) as s:
        yield s


def _tokens(t: dict[str, Any]) -> int:
    return 1100 * (t["i"] % 9) if t["model"] else 0


def _name(t: dict[str, Any]) -> str:
    return ["chat", "rag-query", "agent"][t["i"] % 3]


KEYS: dict[str, Any] = {
    "latency_ms": lambda t: t["dur"],
    "cost": _cost,
    "tokens": _tokens,
    "input_tokens": lambda t: 1000 * (t["i"] % 9) if t["model"] else 0,
    "spans": lambda t: 2 if t["model"] else 1,
    "errors": lambda t: int(t["i"] % 7 == 0),
    "name": _name,
}


def _expect(sort: str, order: str, pred: Any = lambda t: True) -> list[str]:
    rows = [t for t in DATA if pred(t)]
    key = KEYS[sort]
    rows.sort(key=lambda t: (key(t), t["start"], TID[t["i"]]), reverse=order == "desc")
    return [TID[t["i"]] for t in rows]


def _pages(svc: TraceService, **kw: Any) -> list[str]:
    ids, token = [], None
    while True:
        page = svc.list_traces(limit=9, page_token=token, **kw)
        ids.extend(t.id for t in page.traces)
        if not (token := page.next_page_token):
            return ids


@pytest.mark.parametrize("sort", list(KEYS))
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_sorted_pages_match_an_oracle(svc: TraceService, sort: str, order: str) -> None:
    got = _pages(svc, sort=sort, order=order)
    want = _expect(sort, order)
    if sort == "cost":
        # Equal costs computed in a different order may differ in the last bit; compare
        # the cost sequence, and the exact order where costs are distinct.
        costs = {TID[t["i"]]: _cost(t) for t in DATA}
        assert [costs[i] for i in got] == pytest.approx([costs[i] for i in want])
        assert sorted(got) == sorted(want)
    else:
        assert got == want


def test_sort_with_filters_and_the_model_index(svc: TraceService) -> None:
    got = _pages(svc, sort="latency_ms", model="gpt-4o", status="ok")
    assert got == _expect(
        "latency_ms", "desc", lambda t: t["model"] == "gpt-4o" and t["i"] % 7 != 0
    )
    got = _pages(svc, sort="tokens", order="asc", filter='user = "u2"')
    assert got == _expect("tokens", "asc", lambda t: t["i"] % 5 == 2)


def test_bad_sort_and_foreign_tokens(svc: TraceService) -> None:
    with pytest.raises(InvalidArgument, match="sort must be one of"):
        svc.list_traces(sort="duration_us")
    by_time = svc.list_traces(limit=3).next_page_token
    by_cost = svc.list_traces(limit=3, sort="cost").next_page_token
    assert by_time and by_cost
    with pytest.raises(InvalidArgument):
        svc.list_traces(sort="cost", page_token=by_time)
    with pytest.raises(InvalidArgument):
        svc.list_traces(page_token=by_cost)
    with pytest.raises(InvalidArgument):
        svc.list_traces(sort="tokens", page_token=by_cost)
    with pytest.raises(InvalidArgument):
        svc.list_traces(sort="cost", order="asc", page_token=by_cost)


def test_rest_sort_parameter(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(home=tmp_path / "home"))) as api:
        spans = [sp for t in DATA[:40] for sp in t["spans"]]
        assert api.post("/api/v1/traces/batch", json={"spans": spans}).status_code == 200
        ids, token = [], None
        while True:
            q: dict[str, Any] = {"sort": "name", "order": "asc", "limit": 7}
            if token:
                q["page_token"] = token
            body = api.get("/api/v1/traces", params=q).json()
            ids.extend(t["id"] for t in body["traces"])
            if not (token := body["next_page_token"]):
                break
        assert ids == _expect("name", "asc", lambda t: t["i"] < 40)
        r = api.get("/api/v1/traces", params={"sort": "nope"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert "sort must be one of" in r.json()["error"]["message"]


def test_sdk_sort_embedded_and_remote_agree(tmp_path: Path) -> None:
    from opsloop import Client
    from opsloop.tracing import Tracing
    from tests.conftest import live_server

    settings = Settings(home=tmp_path / "home")
    with live_server(settings) as srv:
        clients = [Client(srv.url), Client(home=settings.home)]
        remote, embedded = (Tracing(c) for c in clients)
        try:
            remote.ingest([sp for t in DATA[:25] for sp in t["spans"]])
            want = _expect("tokens", "desc", lambda t: t["i"] < 25)
            for tr in (remote, embedded):
                ids, token = [], None
                while True:
                    page = tr.list_traces(sort="tokens", limit=6, page_token=token)
                    ids.extend(t.id for t in page.traces)
                    if not (token := page.next_page_token):
                        break
                assert ids == want
            with pytest.raises(InvalidArgument):
                remote.list_traces(sort="bogus")
        finally:
            for tr, c in zip((remote, embedded), clients, strict=True):
                tr.close()
                c.close()
