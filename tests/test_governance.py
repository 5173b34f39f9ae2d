"""Tokens, roles and the audit trail against a real server (uvicorn thread, real HTTP).

The server runs with auth on, on SQLite and on PostgreSQL. Tokens are made
embedded on the server's own database (as an operator bootstraps the first
admin), then every call goes over HTTP through the SDK's ``Transport``
(``Settings.token``) or plain httpx.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opsloop import Client
from opsloop.cli import app as cli
from opsloop.core.serve import check_not_open, is_loopback
from opsloop.errors import InvalidArgument, PermissionDenied
from opsloop.governance import TokenExpired, TokenInvalid, TokenRequired, TokenRevoked
from opsloop.settings import Settings
from tests.conftest import LiveServer, fresh_pg_database, live_server


class _Env:
    def __init__(self, server: LiveServer, admin: Client, tmp: Path) -> None:
        self.server, self.admin, self.tmp = server, admin, tmp

    def client(self, secret: str | None, **kw: object) -> Client:
        settings = Settings(
            home=self.tmp / "client", tracking_uri=self.server.url, token=secret, **kw
        )
        return Client(settings=settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Env]:
    with fresh_pg_database() if request.param == "postgres" else _nothing() as pg:
        settings = Settings(home=tmp_path / "server", database_url=pg, auth=True)
        with live_server(settings) as srv, Client(settings=settings) as local:
            # The first admin token is made on the server's own database (as owner).
            admin_secret = local.governance.create_token("root", "admin", name="bootstrap").secret
            admin = Client(
                settings=Settings(home=tmp_path / "admin", tracking_uri=srv.url, token=admin_secret)
            )
            try:
                yield _Env(srv, admin, tmp_path)
            finally:
                admin.close()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def test_roles_tokens_and_the_recorded_user_over_http(env: _Env) -> None:
    gov = env.admin.governance
    viewer = gov.create_token("vera", "viewer")
    editor = gov.create_token("alice", "editor", name="laptop")
    assert viewer.secret.startswith("ols_") and viewer.token.status == "active"

    # A viewer reads but cannot write.
    with env.client(viewer.secret) as v:
        assert v.governance.whoami().role == "viewer"
        v.list_experiments()
        with pytest.raises(PermissionDenied) as denied:
            v.create_experiment("nope")
        assert denied.value.code == "PERMISSION_DENIED"
        with pytest.raises(PermissionDenied):
            v.governance.list_tokens()  # tokens are for admins

    # An editor writes; the server records the token's user, not the one the client claims.
    with env.client(editor.secret, user="mallory") as e:
        exp = e.create_experiment("gov-exp")
        run = e.create_run(exp.id, name="r1")
        assert run.user == "alice"
        with pytest.raises(PermissionDenied):
            e.governance.create_token("eve", "viewer")
    raw = httpx.post(
        f"{env.server.url}/api/v1/registry/models",
        json={"name": "m1"},
        headers={"Authorization": f"Bearer {editor.secret}", "X-Opsloop-User": "mallory"},
    )
    assert raw.status_code == 201, raw.text
    assert raw.json()["created_by"] == "alice"
    as_alice = {"Authorization": f"Bearer {editor.secret}"}
    span = {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "q", "start_us": 1, "end_us": 2}
    httpx.post(
        f"{env.server.url}/api/v1/traces/batch", json={"spans": [span]}, headers=as_alice
    ).raise_for_status()
    httpx.put(
        f"{env.server.url}/api/v1/feedback/scores/ok", json={"kind": "boolean"}, headers=as_alice
    ).raise_for_status()
    note = {"name": "ok", "value": True, "trace_id": "a" * 32, "author": "mallory"}
    r = httpx.post(f"{env.server.url}/api/v1/feedback/annotations", json=note, headers=as_alice)
    assert r.status_code == 200 and r.json()["author"] == "alice", r.text  # not "mallory"
    patched = httpx.patch(
        f"{env.server.url}/api/v1/experiments/{exp.id}",
        json={"description": "v2"},
        headers={"Authorization": f"Bearer {editor.secret}"},
    )
    assert patched.status_code == 200, patched.text

    # An admin grants at most its own role.
    with pytest.raises(PermissionDenied):
        gov.create_token("boss", "owner")

    # Listing never shows a secret; last use is recorded.
    listed = {t.id: t for t in gov.list_tokens()}
    assert listed[editor.token.id].last_used_at is not None
    dumped = json.dumps([t.model_dump() for t in listed.values()])
    assert editor.secret not in dumped and viewer.secret not in dumped

    # Revoked: refused at once with a stable code.
    assert gov.revoke_token(editor.token.id).status == "revoked"
    with env.client(editor.secret) as e, pytest.raises(TokenRevoked) as revoked:
        e.list_experiments()
    assert revoked.value.code == "TOKEN_REVOKED" and revoked.value.http_status == 401

    # Expired, unknown and missing tokens: 401 with their own codes.
    short = gov.create_token("tmp", "editor", expires_in_s=0.2)
    time.sleep(0.3)
    with env.client(short.secret) as s, pytest.raises(TokenExpired):
        s.list_experiments()
    with env.client("ols_" + "x" * 43) as s, pytest.raises(TokenInvalid):
        s.list_experiments()
    with env.client(None) as s, pytest.raises(TokenRequired):
        s.list_experiments()
    r = httpx.get(f"{env.server.url}/api/v1/experiments")
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REQUIRED"
    assert httpx.get(f"{env.server.url}/api/v1/health").status_code == 200  # public

    # The audit trail has every change: who, what, from where, the answer; no secrets.
    entries = gov.audit(actor="alice")
    paths = [e.path for e in entries]
    assert "/api/v1/experiments" in paths and "/api/v1/registry/models" in paths
    made = next(e for e in entries if e.path == "/api/v1/registry/models")
    assert made.token_id == editor.token.id and made.role == "editor"
    assert made.client == "127.0.0.1" and made.status == 201 and made.method == "POST"
    assert made.request == {"name": "m1"} and made.response["name"] == "m1"
    assert not [e for e in entries if e.method == "GET"]  # reads are not changes
    patch = next(e for e in entries if e.method == "PATCH")
    assert patch.before["description"] == "" and patch.response["description"] == "v2"
    assert patch.request == {"description": "v2"} and made.before is None  # a POST: no before
    everything = json.dumps([e.model_dump() for e in gov.audit(limit=1000)])
    for secret in (viewer.secret, editor.secret, short.secret):
        assert secret not in everything
    assert "[masked]" in everything  # the token-creating answers, masked
    assert [e.path for e in gov.audit(path="/revoke")] == [
        f"/api/v1/tokens/{editor.token.id}/revoke"
    ]
    check = gov.verify_audit()
    assert check.ok and check.entries >= 7


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home whose trail holds four changes made over HTTP, and its head hash."""
    tmp_path = tmp_path_factory.mktemp("audited")
    home = tmp_path / "home"
    settings = Settings(home=home, auth=True)
    with live_server(settings) as srv, Client(settings=settings) as local:
        secret = local.governance.create_token("alice", "editor").secret
        with Client(
            settings=Settings(home=tmp_path / "c", tracking_uri=srv.url, token=secret)
        ) as c:
            for name in ("a", "b", "c", "d"):
                c.create_experiment(name)
        head = local.governance.verify_audit().head_hash
    return home, head


def _audited_home(audited: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A copy of the audited home, for one test to tamper with."""
    home = tmp_path / "home"
    shutil.copytree(audited[0], home)
    return home, audited[1]


def _verify(home: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["audit", "verify", "--home", str(home), *extra])
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", 2),
        ('UPDATE audit_log SET request = \'{"name":"z"}\' WHERE seq = 3', 3),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 4", 4),  # the last one: the head still names it
    ],
)
def test_audit_verify_names_the_first_tampered_entry(
    audited: tuple[Path, str], tmp_path: Path, tamper: str, bad_seq: int
) -> None:
    home, _ = _audited_home(audited, tmp_path)
    code, output = _verify(home)
    assert code == 0 and "4 entries" in output, output
    with sqlite3.connect(home / "opsloop.db") as db:  # straight into the file
        db.execute(tamper)
    code, output = _verify(home)
    assert code == 1
    assert "AUDIT_CHAIN_BROKEN" in output and f"entry {bad_seq}:" in output, output


def test_a_rewritten_chain_is_caught_by_a_head_hash_kept_elsewhere(
    audited: tuple[Path, str], tmp_path: Path
) -> None:
    home, head = _audited_home(audited, tmp_path)
    assert _verify(home, "--expect", head)[0] == 0
    # Rewriting history and every later hash passes the chain check, but not the kept head.
    from opsloop.governance._audit import GENESIS, chain_hash

    with sqlite3.connect(home / "opsloop.db") as db:
        db.row_factory = sqlite3.Row
        db.execute("UPDATE audit_log SET actor = 'mallory'")
        prev = GENESIS
        for row in db.execute("SELECT * FROM audit_log ORDER BY seq").fetchall():
            h = chain_hash(prev, dict(row))
            db.execute(
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, row["seq"])
            )
            prev = h
        db.execute("UPDATE audit_head SET hash = ?", (prev,))
    assert _verify(home)[0] == 0
    code, output = _verify(home, "--expect", head)
    assert code == 1 and "is not in the chain" in output


def test_tokens_cli_embedded(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    runner = CliRunner()
    res = runner.invoke(
        cli, ["tokens", "create", "bob", "--role", "editor", "--home", home, "--json"]
    )
    assert res.exit_code == 0, res.output
    made = json.loads(res.output)
    assert made["secret"].startswith("ols_") and made["token"]["role"] == "editor"
    res = runner.invoke(cli, ["tokens", "list", "--home", home, "--json"])
    assert [t["user"] for t in json.loads(res.output)] == ["bob"]
    assert made["secret"] not in res.output
    res = runner.invoke(cli, ["tokens", "revoke", made["token"]["id"], "--home", home])
    assert res.exit_code == 0 and "revoked" in res.output
    res = runner.invoke(cli, ["tokens", "create", "x", "--role", "god", "--home", home])
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output
    res = runner.invoke(cli, ["tokens", "rules", "--json"])
    rules = json.loads(res.output)
    assert {"method": "POST", "route": "/api/v1/tokens", "role": "admin"} in rules


def test_auth_off_by_default_the_header_names_the_user(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h")
    with live_server(settings) as srv:
        r = httpx.post(
            f"{srv.url}/api/v1/registry/models",
            json={"name": "m"},
            headers={"X-Opsloop-User": "zoe"},
        )
        assert r.status_code == 201 and r.json()["created_by"] == "zoe"
    with Client(settings=settings) as c:
        assert c.governance.audit() == []  # no trail unless auth (or OPSLOOP_AUDIT) is on


def test_audit_alone_records_the_header_user(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", audit=True)
    with live_server(settings) as srv:
        r = httpx.post(
            f"{srv.url}/api/v1/registry/models",
            json={"name": "m"},
            headers={"X-Opsloop-User": "zoe"},
        )
        assert r.status_code == 201
        bad = httpx.post(f"{srv.url}/api/v1/registry/models", json={"name": ""})
        assert bad.status_code == 400
    with Client(settings=settings) as c:
        entries = c.governance.audit()
    assert [(e.actor, e.status) for e in entries] == [("zoe", 201)]  # a refused change: no entry


def test_the_server_refuses_to_serve_open_beyond_loopback(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    open_ = Settings(home=tmp_path)
    with pytest.raises(InvalidArgument, match="--allow-open"):
        check_not_open(open_, "0.0.0.0", allow_open=False)
    check_not_open(open_, "0.0.0.0", allow_open=True)
    check_not_open(open_.model_copy(update={"auth": True}), "0.0.0.0", allow_open=False)
    for command in ("server", "quickstart"):  # the quickstart says so before it trains
        res = CliRunner().invoke(cli, [command, "--host", "0.0.0.0", "--home", str(tmp_path)])
        assert res.exit_code != 0 and "refusing to serve without authentication" in res.output
    assert not (tmp_path / "opsloop.db").exists()


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_appends_keep_one_unbroken_chain(store: str, tmp_path: Path) -> None:
    import threading

    from opsloop.governance._audit import AuditService

    with (
        fresh_pg_database() if store == "postgres" else _nothing() as pg,
        Client(settings=Settings(home=tmp_path, database_url=pg)) as c,
    ):
        trail = AuditService(c.context.database)

        def writer(w: int) -> None:
            for i in range(20):
                trail.append(actor=f"w{w}", method="PUT", path=f"/x/{i}", route="/x", status=200)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check = trail.verify()
        assert check.ok and check.entries == 80 and check.head_seq == 80, check
        assert len({e.actor for e in trail.list(limit=100)}) == 4


def test_audit_list_cli_filters(audited: tuple[Path, str]) -> None:
    home = str(audited[0])
    runner = CliRunner()
    res = runner.invoke(cli, ["audit", "list", "--home", home, "--json", "--since", "1h"])
    assert res.exit_code == 0, res.output
    entries = json.loads(res.output)
    assert [e["seq"] for e in entries] == [4, 3, 2, 1]  # newest first
    assert {e["actor"] for e in entries} == {"alice"} and entries[0]["request"]["name"] == "d"
    res = runner.invoke(cli, ["audit", "list", "--home", home, "--json", "--actor", "bob"])
    assert json.loads(res.output) == []
    res = runner.invoke(cli, ["audit", "list", "--home", home, "--limit", "2"])
    assert res.exit_code == 0 and "alice" in res.output and "/api/v1/experiments" in res.output
    res = runner.invoke(cli, ["audit", "list", "--home", home, "--since", "soon"])
    assert res.exit_code == 1 and "INVALID_ARGUMENT" in res.output
