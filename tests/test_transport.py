"""The lean JSON path of ``opsloop.core.Transport`` against a real server.

JSON calls go over one keep-alive ``http.client`` connection per thread; these
tests check that it reuses the connection, survives the server closing it,
maps errors as httpx did, stays per thread and per process, and steps aside
for a proxy.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from opsloop.core import Transport
from opsloop.errors import InvalidArgument, NotFound, Unavailable
from opsloop.settings import Settings
from tests.conftest import LiveServer, free_port


@pytest.fixture
def server(tmp_path: Path):
    srv = LiveServer(Settings(home=tmp_path / "srv")).start()
    yield srv
    srv.stop()


def _transport(url: str, tmp_path: Path, **kw: object) -> Transport:
    return Transport(Settings(home=tmp_path / "cli", tracking_uri=url, **kw), user="ada")  # type: ignore[arg-type]


def test_json_calls_reuse_one_connection_and_record_the_user(
    server: LiveServer, tmp_path: Path
) -> None:
    t = _transport(server.url, tmp_path)
    assert t._lean is not None
    seen: list[str] = []
    t.request_hooks.append(lambda m, p: seen.append(f"{m} {p}"))
    exp = t.post("/experiments", {"name": "lean"})
    conn = t._lean._local.conn
    sock = conn.sock
    for i in range(5):
        t.post("/runs", {"experiment_id": exp["id"], "name": f"r{i}", "params": {"i": str(i)}})
    assert t._lean._local.conn is conn and conn.sock is sock  # one socket for all six
    page = t.post("/runs/search", {"experiment_ids": [exp["id"]]}, idempotent=True)
    assert sorted(r["name"] for r in page["runs"]) == [f"r{i}" for i in range(5)]
    # The actor header travels with every request.
    assert t.post("/registry/models", {"name": "m"})["created_by"] == "ada"
    # Query parameters are written as httpx wrote them (booleans as true/false).
    arts = t.get(f"/runs/{page['runs'][0]['id']}/artifacts", {"path": "", "recursive": True})
    assert arts == []
    assert seen[0] == "POST /api/v1/experiments" and seen[-1].startswith("GET /api/v1/runs/")
    t.close()
    assert conn.sock is None


def test_errors_come_back_as_the_services_exceptions(server: LiveServer, tmp_path: Path) -> None:
    t = _transport(server.url, tmp_path)
    with pytest.raises(NotFound) as nf:
        t.get("/runs/" + "0" * 32)
    assert nf.value.code == "NOT_FOUND"
    with pytest.raises(InvalidArgument):
        t.post("/runs", {"experiment_id": 5})
    # The connection stays usable after error answers.
    assert t.post("/experiments", {"name": "after-errors"})["name"] == "after-errors"


def test_a_connection_the_server_closed_is_replaced(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "srv")
    srv = LiveServer(settings).start()
    t = _transport(srv.url, tmp_path)
    t.post("/experiments", {"name": "before"})
    old = t._lean._local.conn.sock
    srv.stop()  # closes the idle keep-alive connection
    srv2 = LiveServer(settings)
    srv2.port, srv2.url = srv.port, srv.url
    srv2._server.config.port = srv.port
    srv2.start()
    try:
        # A POST is not idempotent: it goes through only because the stale socket is
        # noticed before the request is written, and a fresh one is opened.
        assert t.post("/experiments", {"name": "after"})["name"] == "after"
        assert t._lean._local.conn.sock is not old
    finally:
        srv2.stop()


def test_an_unreachable_server_is_unavailable_after_retries(tmp_path: Path) -> None:
    t = _transport(f"http://127.0.0.1:{free_port()}", tmp_path, http_retries=1)
    calls: list[str] = []
    t.request_hooks.append(lambda m, p: calls.append(p))
    with pytest.raises(Unavailable, match="cannot reach the opsloop server"):
        t.post("/experiments", {"name": "x"})
    assert len(calls) == 2  # the first try and one retry: it never reached a server


def test_each_thread_has_its_own_connection(server: LiveServer, tmp_path: Path) -> None:
    t = _transport(server.url, tmp_path)
    exp = t.post("/experiments", {"name": "threads"})["id"]
    socks: list[object] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(20):
                t.post("/runs", {"experiment_id": exp, "name": f"t{k}-{i}"})
            socks.append(t._lean._local.conn.sock)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len({id(s) for s in socks}) == 4
    page = t.post("/runs/search", {"experiment_ids": [exp], "max_results": 1000}, idempotent=True)
    assert len(page["runs"]) == 80


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_opens_its_own_connection(server: LiveServer, tmp_path: Path) -> None:
    t = _transport(server.url, tmp_path)
    exp = t.post("/experiments", {"name": "fork"})["id"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not write on the parent's socket
        try:
            inherited = t._lean._local.conn
            t.post("/runs", {"experiment_id": exp, "name": "child"})
            ok = t._lean._local.conn is not inherited
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    t.post("/runs", {"experiment_id": exp, "name": "parent"})  # the parent's socket still works
    page = t.post("/runs/search", {"experiment_ids": [exp]}, idempotent=True)
    assert sorted(x["name"] for x in page["runs"]) == ["child", "parent"]


def test_a_proxy_in_the_environment_leaves_requests_to_httpx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _transport("http://example.invalid:8080", tmp_path)._lean is None
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    assert _transport("http://example.invalid:8080", tmp_path)._lean is not None
