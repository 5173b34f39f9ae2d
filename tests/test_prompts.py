"""The prompt registry: templates, versions, labels, diffs, render errors, the REST API,
the CLI, embedded and remote on SQLite and PostgreSQL, and the SDK's TTL cache with its
last-good fallback across a stopped server."""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PromptVariablesError,
    Unavailable,
)
from opsloop.prompts import PromptVersion
from opsloop.prompts._template import compile_template
from opsloop.settings import Settings
from tests.conftest import BackendEnv, LiveServer, backend_env, fresh_pg_database, live_server


@pytest.fixture
def client(backend: BackendEnv) -> opsloop.Client:
    """The client on each of the four backends (the shared ``backend`` fixture)."""
    assert backend.client.prompts.is_remote == backend.remote
    return backend.client


@pytest.fixture(params=["embedded-sqlite", "remote-sqlite"])
def sqlite_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[opsloop.Client]:
    with backend_env(request.param, tmp_path) as env:
        yield env.client


CHAT = [
    {"role": "system", "content": "You are {{ persona }}."},
    {"role": "user", "content": "Translate to {{lang}}:\n{{ text }}"},
]


# ---------------------------------------------------------------- templates (no store)


def test_placeholders_escapes_and_kinds() -> None:
    t = compile_template("Hi {{name}}, {{ name }} again; \\{{ not_a_var }} and }} stay.")
    assert t.kind == "text" and t.variables == ["name"]
    assert t.render({"name": "Ada"}) == "Hi Ada, Ada again; {{ not_a_var }} and }} stay."
    c = compile_template(CHAT)
    assert c.kind == "chat" and c.variables == ["persona", "lang", "text"]
    assert c.render({"persona": "a translator", "lang": "French", "text": "cat"}) == [
        {"role": "system", "content": "You are a translator."},
        {"role": "user", "content": "Translate to French:\ncat"},
    ]
    # Values that are not strings: numbers with str(), containers as JSON.
    n = compile_template("{{ n }} items: {{ items }}")
    assert n.render({"n": 3, "items": ["a", "é"]}) == '3 items: ["a", "é"]'


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("line one\nbad {{ open", "line 2, column 5"),
        ("{{ 9lives }}", "does not name a variable"),
        ("{{ a.b }}", "does not name a variable"),
        ("{{}}", "does not name a variable"),
        ([], "non-empty list"),
        ([{"role": "user"}], "exactly 'role' and 'content'"),
        ([{"role": "user", "content": 3}], "content must be a string"),
        ([{"role": "", "content": "x"}], "role"),
        (42, "a template is a string"),
    ],
)
def test_malformed_templates_are_refused_clearly(template: Any, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        compile_template(template)
    assert fragment in ei.value.message


def _pv(template: Any, variables: list[str] | None = None) -> PromptVersion:
    t = compile_template(template)
    return PromptVersion(
        name="p",
        version=1,
        kind=t.kind,
        template=t.source,
        variables=variables or t.variables,
        created_at=0,
    )


def test_render_names_missing_and_unknown_variables() -> None:
    pv = _pv("Dear {{ name }} of {{ city }}")
    assert pv.render(name="Ada", city="Paris") == "Dear Ada of Paris"
    with pytest.raises(PromptVariablesError) as ei:
        pv.render(name="Ada", town="Paris")
    e = ei.value
    assert isinstance(e, InvalidArgument) and e.code == "PROMPT_VARIABLES" and e.http_status == 400
    assert "missing variable city" in e.message and "unknown variable town" in e.message
    assert "'p' v1" in e.message
    assert e.details == {"missing": ["city"], "unknown": ["town"], "expected": ["name", "city"]}
    with pytest.raises(PromptVariablesError, match="missing variables name, city"):
        pv.render()
    # A dataset row with extra columns: unknown keys may be ignored on request.
    row = {"name": "Bo", "city": "Oslo", "label": 1}
    assert pv.render_from(row, ignore_unknown=True) == "Dear Bo of Oslo"
    with pytest.raises(PromptVariablesError, match="unknown variable label"):
        pv.render_from(row)


# ---------------------------------------------------------------- versions and labels


def test_versions_labels_and_commit_messages(client: opsloop.Client) -> None:
    p = client.prompts
    v1 = p.create("greet", "Hello {{ name }}!", message="first cut", labels=["production"])
    assert (v1.version, v1.kind, v1.variables, v1.message) == (1, "text", ["name"], "first cut")
    assert v1.labels == ["production", "latest"] and v1.uri == "prompts:/greet/1"
    v2 = p.create("greet", CHAT, message="as chat", labels=["staging"], metadata={"temp": 0.2})
    assert (v2.version, v2.kind, v2.metadata) == (2, "chat", {"temp": 0.2})
    assert v2.template == CHAT and v2.labels == ["staging", "latest"]
    v3 = p.create("greet", "Hi {{name}}", variables=["name"], message="shorter")
    assert v3.version == 3

    # "latest" follows the newest version by itself; other labels stay put.
    assert p.get("greet").version == 3
    assert p.get("greet", label="latest").version == 3
    assert p.get("prompts:/greet").version == 3
    assert p.get("prompts:/greet/latest").version == 3
    assert p.get("prompts:/greet@production").version == 1
    assert p.get("greet", label="staging").version == 2
    assert p.get("prompts:/greet/2").template == CHAT
    assert p.get("greet", version=1).message == "first cut"

    moved = p.set_label("greet", "production", 3)
    assert (moved.version, moved.previous_version) == (3, 1)
    assert p.get("greet", label="production", cache_ttl_s=0).version == 3
    vs = p.versions("greet")
    assert [(v.version, v.labels, v.message) for v in vs] == [
        (3, ["production", "latest"], "shorter"),
        (2, ["staging"], "as chat"),
        (1, [], "first cut"),
    ]
    assert [(x.label, x.version) for x in p.labels("greet")] == [("production", 3), ("staging", 2)]
    p.delete_label("greet", "staging")
    with pytest.raises(NotFound, match="no label 'staging'"):
        p.get("greet", label="staging", cache_ttl_s=0)
    with pytest.raises(NotFound):
        p.delete_label("greet", "staging")
    with pytest.raises(InvalidArgument, match="always follows the newest"):
        p.set_label("greet", "latest", 1)
    with pytest.raises(NotFound, match="no version 9"):
        p.set_label("greet", "production", 9)

    summary = p.get_prompt("greet")
    assert (summary.latest_version, summary.version_count, summary.labels) == (
        3,
        3,
        {"production": 3},
    )
    p.create("other", "x")
    assert [x.name for x in p.list()] == ["greet", "other"]
    assert [x.name for x in p.list(name_contains="OTH")] == ["other"]

    # The registry sees prompts as kind "prompt"; names are shared with models.
    reg = client.registry.get_model("greet")
    assert reg.kind == "prompt" and reg.aliases == {"production": 3}
    hist = [e.action for e in client.registry.history("greet")]
    assert hist.count("version_created") == 3 and "alias_deleted" in hist
    with pytest.raises(NotFound):
        p.get("nope")


def test_bad_requests_store_nothing(client: opsloop.Client, tmp_path: Path) -> None:
    p = client.prompts
    p.create("q", "Q: {{ question }}", labels=["production"])
    with pytest.raises(InvalidArgument, match="line 1, column 4"):
        p.create("q", "Q: {{ question ")
    with pytest.raises(PromptVariablesError, match="undeclared question") as ei:
        p.create("q", "Q: {{ question }} {{ context }}", variables=["context", "extra"])
    assert ei.value.details["unused"] == ["extra"]
    with pytest.raises(InvalidArgument, match="label"):
        p.create("q", "v2 {{ question }}", labels=["9bad"])
    with pytest.raises(InvalidArgument, match="prompt name"):
        p.create("bad name", "x")
    with pytest.raises(InvalidArgument):
        p.create("q", "x", metadata={"f": float("nan")})
    assert [v.version for v in p.versions("q")] == [1]
    assert p.get("q", label="production", cache_ttl_s=0).version == 1

    client.registry.create_model("a-model")
    with pytest.raises(Conflict, match="taken by a registered model"):
        p.create("a-model", "x")
    with pytest.raises(NotFound, match="not a prompt"):
        p.get("a-model")
    # The registry's own version API refuses to put a model file into a prompt.
    model_dir = tmp_path / "pyfunc-model"
    model_dir.mkdir()
    (model_dir / "weights.txt").write_text("1")
    with pytest.raises(Conflict, match="is a prompt"):
        client.registry.register("q", model_dir)
    assert [v.version for v in p.versions("q")] == [1]


def test_diff_text_chat_variables_and_metadata(client: opsloop.Client) -> None:
    p = client.prompts
    p.create("d", "line a\nline {{ b }}\nline c", metadata={"model": "x", "t": 0})
    p.create("d", "line a\nline {{ b }} changed\nline c\n{{ d }}", metadata={"model": "y", "t": 0})
    d = p.diff("d", 1, 2)
    assert (d.a, d.b, d.identical, d.kind_a, d.kind_b) == (1, 2, False, "text", "text")
    assert d.variables_added == ["d"] and d.variables_removed == []
    assert d.metadata_changed == {"model": {"a": "x", "b": "y"}}
    assert "-line {{ b }}" in d.template_diff and "+line {{ b }} changed" in d.template_diff
    assert "+{{ d }}" in d.template_diff
    assert d.template_diff[0] == "--- d v1" and d.template_diff[1] == "+++ d v2"
    assert "variables added: d" in d.text and 'metadata model: "x" -> "y"' in d.text
    assert p.diff("d", "latest", 2).identical

    p.create("c", CHAT, labels=["production"])
    p.create(
        "c",
        [
            {"role": "system", "content": "You are {{ persona }}."},
            {"role": "user", "content": "Translate into {{lang}}:\n{{ text }}"},
            {"role": "assistant", "content": "Sure."},
        ],
    )
    cd = p.diff("c", "production", "latest")
    assert [(m.status, m.index_a, m.index_b) for m in cd.messages] == [
        ("same", 0, 0),
        ("changed", 1, 1),
        ("added", None, 2),
    ]
    assert "+Translate into {{lang}}:" in cd.messages[1].diff
    assert cd.messages[2].diff == ["+Sure."] and cd.messages[2].role_b == "assistant"


# ---------------------------------------------------------------- REST API


def test_api_routes_and_error_shapes(tmp_path: Path) -> None:
    with live_server(Settings(home=tmp_path / "home")) as srv:
        api = httpx.Client(base_url=f"{srv.url}/api/v1/prompts", timeout=30)
        r = api.post(
            "/qa/versions",
            json={"template": CHAT, "message": "m1", "labels": ["production"]},
            headers={"X-Opsloop-User": "ana"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["created_by"] == "ana" and r.json()["kind"] == "chat"
        r = api.post(
            "/qa/render",
            json={"label": "production", "variables": {"persona": "P", "lang": "L", "text": "T"}},
        )
        assert r.status_code == 200
        assert r.json() == {
            "name": "qa",
            "version": 1,
            "kind": "chat",
            "rendered": [
                {"role": "system", "content": "You are P."},
                {"role": "user", "content": "Translate to L:\nT"},
            ],
        }
        r = api.post("/qa/render", json={"variables": {"persona": "P", "language": "L"}})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "PROMPT_VARIABLES"
        assert err["details"] == {
            "missing": ["lang", "text"],
            "unknown": ["language"],
            "expected": ["persona", "lang", "text"],
        }
        assert "missing variables lang, text" in err["message"]
        r = api.post("/qa/versions", json={"template": "x {{ y"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert r.json()["error"]["details"]["line"] == 1
        r = api.post("/qa/versions", json={"template": "x", "bogus": 1})
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        r = api.get("/qa/labels/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = api.put("/qa/labels/latest", json={"version": 1})
        assert r.status_code == 400 and "newest" in r.json()["error"]["message"]
        r = api.get("/qa/versions/abc")
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        r = api.post("/qa/render", json={"version": 1, "label": "production", "variables": {}})
        assert r.status_code == 400
        assert api.get("/qa/versions").json()["versions"][0]["version"] == 1
        r = api.get("/qa/diff", params={"a": "1", "b": "latest"})
        assert r.status_code == 200 and r.json()["identical"] is True
        listed = httpx.get(f"{srv.url}/api/v1/prompts").json()
        assert listed["prompts"][0]["labels"] == {"production": 1}
        assert (
            "/api/v1/prompts/{name}/render"
            in httpx.get(f"{srv.url}/api/v1/openapi.json").json()["paths"]
        )


# ---------------------------------------------------------------- concurrent label moves

_MOVER = """
import random, sys
import opsloop
from opsloop.settings import Settings
home, url, n = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
with opsloop.Client(settings=Settings(home=home, database_url=url)) as c:
    rnd = random.Random()
    for _ in range(n):
        c.prompts.set_label("race", "production", rnd.randint(1, 4))
print("done", flush=True)
"""


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_label_moves_never_split_a_label(db: str, tmp_path: Path) -> None:
    from tests._procs import run_script

    with fresh_pg_database() if db == "postgres" else contextlib.nullcontext() as pg:
        settings = Settings(home=tmp_path / "home", database_url=pg)
        with opsloop.Client(settings=settings) as c:
            for i in range(4):
                c.prompts.create("race", f"v{i} {{{{ x }}}}")
            c.prompts.set_label("race", "production", 1)
            stop = threading.Event()
            bad: list[str] = []
            reads = [0]

            def reader() -> None:
                while not stop.is_set():
                    vs = c.prompts.versions("race")
                    holders = [v.version for v in vs if "production" in v.labels]
                    if len(holders) != 1:
                        bad.append(f"production on {holders}")
                    got = c.prompts.get("race", label="production", cache_ttl_s=0)
                    if got.version not in (1, 2, 3, 4):
                        bad.append(f"resolved to {got.version}")
                    reads[0] += 1

            def mover() -> None:
                for k in range(25):
                    c.prompts.set_label("race", "production", 1 + k % 4)

            threads = [threading.Thread(target=reader)] + [
                threading.Thread(target=mover) for _ in range(2)
            ]
            for t in threads:
                t.start()
            results: list[Any] = []
            procs = [
                threading.Thread(
                    target=lambda: results.append(
                        run_script(_MOVER, settings.home, pg or "", 25, timeout=240)
                    )
                )
                for _ in range(2)
            ]
            for t in procs:
                t.start()
            for t in threads[1:] + procs:
                t.join()
            stop.set()
            threads[0].join()
            for r in results:
                assert r.returncode == 0 and "done" in r.stdout, r.stderr[-2000:]
            assert not bad, bad[:5]
            assert reads[0] > 0
            # Every move is in the history, and the last one recorded is the state.
            events = [
                e
                for e in c.registry.history("race")
                if e.action == "alias_set" and e.detail.get("alias") == "production"
            ]
            assert len(events) == 1 + 2 * 25 + 2 * 25
            final = c.prompts.get("race", label="production", cache_ttl_s=0).version
            assert events[0].detail["version"] == final


# ---------------------------------------------------------------- SDK cache


def _remote(srv: LiveServer, home: Path, **kw: Any) -> opsloop.Client:
    return opsloop.Client(settings=Settings(home=home, tracking_uri=srv.url, http_retries=0, **kw))


def test_cache_ttl_and_reads_of_own_writes(tmp_path: Path) -> None:
    with live_server(Settings(home=tmp_path / "server")) as srv:
        a = _remote(srv, tmp_path / "a")
        b = _remote(srv, tmp_path / "b")
        try:
            a.prompts.create("t", "one {{ x }}", labels=["production"])
            assert b.prompts.get("t", label="production").version == 1
            a.prompts.create("t", "two {{ x }}", labels=["production"])
            # a wrote it: a's own cache entries were dropped, so a sees it at once.
            assert a.prompts.get("t", label="production").version == 2
            # b still serves what it fetched, until its TTL runs out or a call asks for fresh.
            assert b.prompts.get("t", label="production").version == 1
            assert b.prompts.get("t", label="production", cache_ttl_s=0).version == 2
            a.prompts.set_label("t", "production", 1)
            assert b.prompts.get("t", label="production").version == 2
            b.prompts.cache_ttl_s = 0.3
            time.sleep(0.4)
            assert b.prompts.get("t", label="production").version == 1
            with pytest.raises(InvalidArgument):
                b.prompts.cache_ttl_s = -1
            with pytest.raises(InvalidArgument):
                b.prompts.get("t", cache_ttl_s=float("nan"))
            # Not-found is an answer, not an outage: never served from the cache.
            b.prompts.get("t", version=1)
            with pytest.raises(NotFound):
                b.prompts.get("t", version=7)
            assert b.prompts.render("prompts:/t/2", {"x": "y"}) == "two y"
        finally:
            a.close()
            b.close()


def test_last_good_version_survives_a_stopped_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = LiveServer(Settings(home=tmp_path / "server")).start()
    port = srv.port
    home = tmp_path / "client"
    c = _remote(srv, home)
    try:
        c.prompts.create("s", CHAT, labels=["production"], message="good")
        good = c.prompts.get("s", label="production")
        assert list((home / "cache" / "prompts").glob("*.json"))
        srv.stop()
        with caplog.at_level(logging.WARNING, logger="opsloop.prompts"):
            got = c.prompts.get("s", label="production", cache_ttl_s=0)
        assert got == good
        warned = [r for r in caplog.records if r.name == "opsloop.prompts"]
        assert warned and "s@production" in warned[0].getMessage()
        assert "from memory" in warned[0].getMessage()
        # Never fetched: nothing to fall back on, so the outage is raised.
        with pytest.raises(Unavailable):
            c.prompts.get("s", version=1, cache_ttl_s=0)
    finally:
        c.close()

    # A fresh process (a new client on the same home) survives the outage from disk.
    caplog.clear()
    fresh = opsloop.Client(
        settings=Settings(home=home, tracking_uri=f"http://127.0.0.1:{port}", http_retries=0)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="opsloop.prompts"):
            got = fresh.prompts.get("prompts:/s@production")
        assert (
            got == good
            and got.render(persona="P", lang="L", text="T")[0]["content"] == "You are P."
        )
        assert "from disk" in caplog.records[0].getMessage()

        # A server that answers 5xx is an outage too (a failing upstream on the same port).
        with _failing_server(port):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="opsloop.prompts"):
                assert fresh.prompts.get("s", label="production", cache_ttl_s=0) == good
            assert caplog.records
            with pytest.raises(opsloop.errors.OpsloopError) as ei:
                fresh.prompts.get("s", label="staging", cache_ttl_s=0)
            assert ei.value.http_status == 500
    finally:
        fresh.close()


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"error": {"code": "INTERNAL", "message": "boom"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: Any) -> None:
        return None


class _failing_server:
    def __init__(self, port: int) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Failing)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *a: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- CLI


@pytest.fixture
def run(home: Path) -> Callable[..., str]:
    from opsloop.cli._app import app

    runner = CliRunner()

    def run_cli(*args: str, ok: bool = True) -> str:
        result = runner.invoke(app, ["prompts", *args, "--home", str(home)], env={"COLUMNS": "200"})
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run_cli


def test_cli_end_to_end(run: Callable[..., str], tmp_path: Path) -> None:
    assert "No prompts yet" in run("list")
    out = run(
        "create", "qa", "--text", "Answer: {{ question }}", "-m", "first", "--label", "production"
    )
    assert "version 1" in out and "prompts:/qa/1" in out and "@production" in out
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps(CHAT))
    out = run(
        "create", "qa", "--file", str(chat), "--chat", "-m", "chat version", "--meta", "temp=0.5"
    )
    assert "version 2 (chat)" in out and "persona, lang, text" in out
    assert "--chat needs a JSON list" in run("create", "qa", "--text", "nope", "--chat", ok=False)
    assert "exactly one of --file or --text" in run("create", "qa", ok=False)

    listed = json.loads(run("list", "--json"))
    assert [(p["name"], p["latest_version"], p["labels"]) for p in listed] == [
        ("qa", 2, {"production": 1})
    ]
    shown = run("show", "qa@production")
    assert "qa version 1 (text)" in shown and "first" in shown and "Answer: {{ question }}" in shown
    shown = run("show", "qa")
    assert "[system]" in shown and "You are {{ persona }}." in shown and "Versions" in shown
    assert json.loads(run("show", "qa/2", "--json"))["metadata"] == {"temp": 0.5}

    assert "qa@production → version 2 (was version 1)" in run("label", "qa", "production", "2")
    diff = run("diff", "qa", "1", "production")
    assert "--- qa v1" in diff and "+[system]" in diff and "-Answer: {{ question }}" in diff
    assert "variables added: persona, lang, text" in diff
    assert json.loads(run("diff", "qa", "2", "latest", "--json"))["identical"] is True

    out = run("render", "qa/1", "--var", "question=Why?")
    assert out.strip() == "Answer: Why?"
    out = run(
        "render",
        "qa@production",
        "--var",
        "persona=P",
        "--var",
        "lang=L",
        "--var",
        "text=T",
        "--json",
    )
    assert json.loads(out)[1] == {"role": "user", "content": "Translate to L:\nT"}
    err = run("render", "qa/1", "--var", "q=Why?", ok=False)
    assert "error [PROMPT_VARIABLES]" in err and "missing variable question" in err

    run("label", "qa", "production", "--delete")
    assert "no label 'production'" in run("show", "qa@production", ok=False)
    assert "give a VERSION" in run("label", "qa", "x", ok=False)
