"""LLM providers without a model: retries, timeouts, errors, secrets, settings and spans.

The upstream here is a test double of what users never run on purpose (503s,
429s, a server too slow to answer): a tiny real HTTP server on a socket that
answers from a script. The HTTP provider against a real ``opsloop serve`` is in
``test_llm_providers.py``.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.cli._app import app as cli_app
from opsloop.errors import InvalidArgument, NotFound, ProviderError, ProviderTimeout
from opsloop.llm import (
    OpenAIProvider,
    Provider,
    RetryPolicy,
    SecretStore,
    Usage,
    get_provider,
)
from opsloop.llm._retry import parse_retry_after
from opsloop.settings import Settings
from opsloop.tracing import Tracing
from tests.conftest import free_port

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
OK_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "fake",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


# ---------------------------------------------------------------- a scripted upstream


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: OK_BODY)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Upstream:
    """A real HTTP server answering POSTs from a script (the last reply repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        up = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                up.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                r = up.replies[min(len(up.requests), len(up.replies)) - 1]
                if r.delay_s:
                    time.sleep(r.delay_s)
                data = json.dumps(r.body).encode()
                try:
                    self.send_response(r.status)
                    for k, v in r.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _http(url: str, home: Path, **kw: Any) -> Provider:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("api_key", "sk-test")
    return get_provider("openai:fake", base_url=url, settings=Settings(home=home), **kw)


def test_retries_503_twice_then_succeeds_on_the_third_attempt(home: Path) -> None:
    replies = (Reply(503, {"error": {"message": "overloaded"}}), Reply(503), Reply())
    with Upstream(*replies) as up, _http(up.url, home, max_retries=3) as p:
        r = p.chat(FRANCE, max_tokens=5)
        assert isinstance(p, OpenAIProvider) and p.attempts == 3
    assert len(up.requests) == 3
    assert (r.text, r.usage, r.finish_reason) == ("hi", Usage(7, 2), "stop")
    sent = up.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test"
    assert sent["body"]["messages"] == FRANCE and sent["body"]["max_tokens"] == 5
    assert sent["body"]["temperature"] == 0.0 and sent["body"]["model"] == "fake"


def test_retries_stop_at_max_retries_with_the_upstream_status(home: Path) -> None:
    with (
        Upstream(Reply(502, {"error": {"message": "bad gateway"}})) as up,
        _http(up.url, home, max_retries=1) as p,
        pytest.raises(ProviderError) as ei,
    ):
        p.chat(FRANCE)
    assert len(up.requests) == 2
    assert ei.value.details["status"] == 502 and ei.value.details["message"] == "bad gateway"
    assert ei.value.code == "PROVIDER_ERROR" and ei.value.http_status == 502


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(home: Path, status: int) -> None:
    with (
        Upstream(Reply(status, {"error": {"message": f"nope {status}"}})) as up,
        _http(up.url, home, max_retries=3) as p,
        pytest.raises(ProviderError) as ei,
    ):
        p.chat(FRANCE)
    assert len(up.requests) == 1
    assert not isinstance(ei.value, ProviderTimeout)
    assert ei.value.details["status"] == status
    assert ei.value.details["message"] == f"nope {status}"
    assert f"HTTP {status}" in ei.value.message


def test_a_slow_upstream_raises_provider_timeout(home: Path) -> None:
    with Upstream(Reply(delay_s=3.0)) as up:
        with _http(up.url, home, max_retries=1, timeout_s=0.3) as p:
            t = time.perf_counter()
            with pytest.raises(ProviderTimeout) as ei:
                p.chat(FRANCE)
            elapsed = time.perf_counter() - t
        # One retry after the first read timeout, then the error (well before the 3 s reply).
        assert len(up.requests) == 2 and elapsed < 2.5
        assert ei.value.code == "PROVIDER_TIMEOUT" and ei.value.http_status == 504
        assert ei.value.details["attempts"] == 2
        # A call's own timeout wins over the provider's.
        with _http(up.url, home, max_retries=0, timeout_s=30) as p:
            t = time.perf_counter()
            with pytest.raises(ProviderTimeout):
                p.chat(FRANCE, timeout_s=0.2)
            assert time.perf_counter() - t < 2.0


def test_429_waits_as_long_as_retry_after_says(home: Path) -> None:
    with (
        Upstream(
            Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), Reply()
        ) as up,
        _http(up.url, home, max_retries=2, backoff_s=0.0) as p,
    ):
        t = time.perf_counter()
        assert p.chat(FRANCE).text == "hi"
        elapsed = time.perf_counter() - t
    assert len(up.requests) == 2 and elapsed >= 1.0


def test_unreachable_endpoint_is_a_provider_error_after_retries(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with _http(url, home, max_retries=2) as p, pytest.raises(ProviderError) as ei:
        p.chat(FRANCE)
    assert not isinstance(ei.value, ProviderTimeout)
    assert ei.value.details["attempts"] == 3 and ei.value.details["error"] == "ConnectError"


def test_retry_policy_and_retry_after_parsing() -> None:
    pol = RetryPolicy(max_retries=5, backoff_s=1.0, max_backoff_s=4.0, max_retry_after_s=10)
    for n, cap in ((0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)):
        d = [pol.delay(n) for _ in range(50)]
        assert all(cap / 2 <= x <= cap for x in d) and len(set(d)) > 1  # jittered
    assert pol.delay(0, retry_after=3.0) == 3.0 and pol.delay(0, retry_after=99) == 10
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480) == 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    with pytest.raises(InvalidArgument):
        RetryPolicy(max_retries=-1)


def test_completions_and_embeddings_requests_and_bad_answers(home: Path) -> None:
    comp = {
        "id": "c1",
        "choices": [{"text": " Paris", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1},
    }
    emb = {
        "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    replies = (Reply(body=comp), Reply(body=emb), Reply(body={"choices": "?"}))
    with Upstream(*replies) as up, _http(up.url, home) as p:
        r = p.complete("The capital of France is", max_tokens=1, stop=["\n"], seed=3)
        e = p.embed(["a", "b"])
        with pytest.raises(ProviderError, match="unexpected answer"):
            p.chat(FRANCE)
    assert (r.text, r.usage, r.finish_reason, r.response_id) == (
        " Paris",
        Usage(4, 1),
        "length",
        "c1",
    )
    assert up.requests[0]["path"] == "/v1/completions"
    assert up.requests[0]["body"]["stop"] == ["\n"] and up.requests[0]["body"]["seed"] == 3
    assert up.requests[1]["path"] == "/v1/embeddings" and up.requests[1]["body"]["input"] == [
        "a",
        "b",
    ]
    assert e.vectors == [[1.0, 0.0], [0.0, 1.0]] and e.usage == Usage(6, 0)


def test_bad_arguments_are_refused_before_any_request(home: Path) -> None:
    with Upstream(Reply()) as up, _http(up.url, home) as p:
        for kw, param in (
            ({"max_tokens": 0}, "max_tokens"),
            ({"temperature": 3}, "temperature"),
            ({"top_p": 0}, "top_p"),
            ({"stop": [1]}, "stop"),
            ({"response_format": {"type": "xml"}}, "response_format"),
        ):
            with pytest.raises(InvalidArgument) as ei:
                p.chat(FRANCE, **kw)
            assert ei.value.details["param"] == param
        with pytest.raises(InvalidArgument, match="message 0"):
            p.chat([{"role": "user"}])
        with pytest.raises(InvalidArgument, match="list of strings"):
            p.embed("one string")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            p.stream([])
    assert up.requests == []
    with pytest.raises(InvalidArgument, match="unknown model spec"):
        get_provider("gpt-4o", settings=Settings(home=home))
    with pytest.raises(InvalidArgument, match="unknown option"):
        get_provider("openai:x", settings=Settings(home=home), temprature=1)
    with pytest.raises(InvalidArgument, match="base_url"):
        get_provider("openai:x", base_url="ftp://x", settings=Settings(home=home))


# ---------------------------------------------------------------- secrets and settings


def test_secrets_file_is_private_atomic_and_feeds_the_api_key(home: Path) -> None:
    store = SecretStore(home)
    store.set("openai", "sk-secret-1")
    store.set("other", "v2")
    mode = stat.S_IMODE(os.stat(home / "secrets.json").st_mode)
    assert mode == 0o600
    assert store.names() == ["openai", "other"] and store.get("openai") == "sk-secret-1"
    assert json.loads((home / "secrets.json").read_text()) == {
        "openai": "sk-secret-1",
        "other": "v2",
    }
    assert [p.name for p in home.iterdir() if p.name.endswith(".tmp")] == []
    store.delete("other")
    assert store.names() == ["openai"]
    with pytest.raises(NotFound):
        store.delete("other")
    with pytest.raises(InvalidArgument):
        store.set("bad name!", "x")
    # A key from a stored secret, from the settings, and the default stored secret.
    with Upstream(Reply()) as up:
        s = Settings(home=home)
        with get_provider("openai:m", base_url=up.url, api_key_secret="openai", settings=s) as p:
            p.chat(FRANCE)
            assert "sk-secret" not in repr(p)
        with get_provider(
            "openai:m", base_url=up.url, settings=s.model_copy(update={"llm_api_key": "sk-env"})
        ) as p:
            p.chat(FRANCE)
        store.set("llm_api_key", "sk-default")
        store.set("llm_base_url", up.url)
        with get_provider("openai:m", settings=s) as p:  # base URL from the secrets too
            p.chat(FRANCE)
        with pytest.raises(NotFound, match="opsloop secrets set missing"):
            get_provider("openai:m", base_url=up.url, api_key_secret="missing", settings=s)
    assert [r["auth"] for r in up.requests] == [
        "Bearer sk-secret-1",
        "Bearer sk-env",
        "Bearer sk-default",
    ]


def test_secrets_are_encrypted_at_rest_with_a_server_key(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SecretStore(home).set("legacy", "sk-plain-old")  # stored before there was a key
    store = SecretStore(home, "server-key-1")
    store.set("openai", "sk-secret-enc")
    raw = (home / "secrets.json").read_text()
    assert "sk-secret-enc" not in raw and "sk-plain-old" not in raw  # the old one too
    assert all(v.startswith("enc:v1:") for v in json.loads(raw).values())
    assert store.get("openai") == "sk-secret-enc" and store.get("legacy") == "sk-plain-old"
    with pytest.raises(InvalidArgument, match="OPSLOOP_SECRET_KEY"):
        SecretStore(home).get("openai")
    with pytest.raises(InvalidArgument, match="another key"):
        SecretStore(home, "wrong-key").get("openai")
    assert SecretStore(home).names() == ["legacy", "openai"]  # names need no key
    with Upstream(Reply()) as up:
        s = Settings(home=home, secret_key="server-key-1")
        with get_provider("openai:m", base_url=up.url, api_key_secret="openai", settings=s) as p:
            p.chat(FRANCE)
    assert [r["auth"] for r in up.requests] == ["Bearer sk-secret-enc"]
    monkeypatch.setenv("OPSLOOP_SECRET_KEY", "server-key-1")
    r = CliRunner().invoke(
        cli_app, ["secrets", "set", "cli", "--value", "sk-cli", "--home", str(home)]
    )
    assert r.exit_code == 0, r.output
    assert "sk-cli" not in (home / "secrets.json").read_text() and "sk-cli" not in r.output
    assert SecretStore(home, "server-key-1").get("cli") == "sk-cli"


def test_settings_read_llm_fields_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_LLM_BASE_URL", "http://example.invalid/v1")
    monkeypatch.setenv("OPSLOOP_LLM_API_KEY", "sk-x")
    monkeypatch.setenv("OPSLOOP_LLM_DEFAULT_MODEL", "openai:gpt-4o-mini")
    s = Settings()
    assert (s.llm_base_url, s.llm_api_key, s.llm_default_model) == (
        "http://example.invalid/v1",
        "sk-x",
        "openai:gpt-4o-mini",
    )
    assert "sk-x" not in repr(s)
    p = get_provider(settings=s)
    assert (p.spec, p.model, p.provider) == ("openai:gpt-4o-mini", "gpt-4o-mini", "openai")


def test_secrets_cli_sets_lists_and_deletes_without_showing_values(home: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        cli_app, ["secrets", "set", "openai", "--home", str(home)], input="sk-typed\n"
    )
    assert r.exit_code == 0, r.output
    assert "sk-typed" not in r.output
    r = runner.invoke(cli_app, ["secrets", "set", "other", "--value", "v", "--home", str(home)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_app, ["secrets", "list", "--json", "--home", str(home)])
    assert json.loads(r.stdout) == ["openai", "other"] and "sk-typed" not in r.stdout
    assert SecretStore(home).get("openai") == "sk-typed"
    assert stat.S_IMODE(os.stat(home / "secrets.json").st_mode) == 0o600
    r = runner.invoke(cli_app, ["secrets", "delete", "other", "--home", str(home)])
    assert r.exit_code == 0 and SecretStore(home).names() == ["openai"]
    r = runner.invoke(cli_app, ["secrets", "delete", "other", "--home", str(home)])
    assert r.exit_code == 1 and "error [NOT_FOUND]" in r.stderr
    r = runner.invoke(cli_app, ["llm", "models", "--json"])
    rows = {m["name"]: m for m in json.loads(r.stdout)}
    assert set(rows) == {"smollm2", "gemma3", "minilm"} and rows["smollm2"]["installed"] is True


# ---------------------------------------------------------------- spans


def test_every_call_records_a_genai_span(home: Path) -> None:
    with opsloop.Client(settings=Settings(home=home, flush_interval_s=60.0)) as client:
        tr = Tracing(client)
        with Upstream(Reply(), Reply(400, {"error": {"message": "bad"}}), Reply()) as up:
            with _http(up.url, home, tracing=tr) as p:
                p.chat(FRANCE, max_tokens=5, temperature=0.2)
                with pytest.raises(ProviderError):
                    p.chat(FRANCE)
            # No tracing configured and no open span: nothing is recorded (no implicit database).
            with _http(up.url, home) as quiet:
                quiet.chat(FRANCE)
        tr.flush()
        traces = tr.list_traces(order="asc").traces
        assert len(traces) == 2
        ok = tr.get_trace(traces[0].id).spans[0]
        a = ok.attributes
        assert ok.kind == "llm" and ok.name == "chat fake" and ok.status == "OK"
        assert a["gen_ai.request.model"] == "fake" and a["gen_ai.system"] == "openai"
        assert a["gen_ai.usage.input_tokens"] == 7 and a["gen_ai.usage.output_tokens"] == 2
        assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 5
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
        assert ok.inputs == FRANCE and ok.outputs == [{"role": "assistant", "content": "hi"}]
        assert traces[0].input_tokens == 7 and traces[0].output_tokens == 2
        failed = tr.get_trace(traces[1].id).spans[0]
        assert failed.status == "ERROR" and "HTTP 400" in (failed.status_message or "")
        tr.close()


def test_a_provider_is_a_judge_model(home: Path) -> None:
    from opsloop.evaluation.metrics._judge import call_model

    with Upstream(Reply()) as up, _http(up.url, home) as p:
        assert call_model(p, FRANCE) == "hi"
    assert up.requests[0]["body"]["messages"] == FRANCE
