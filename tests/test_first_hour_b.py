"""Issue 18, "the first hour of a new user": endpoint specs, trust options, pipeline
versions, user modules, and CLI failures without tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.errors import InvalidArgument
from opsloop.llm import SecretStore, get_provider
from opsloop.settings import Settings
from tests.test_llm_http import FRANCE, Reply, Upstream

# ---------------------------------------------------------------- openai:MODEL@URL


@pytest.fixture
def default_host(monkeypatch: pytest.MonkeyPatch) -> Upstream:
    """OpenAI's public endpoint replaced by a local server that counts what reaches it."""
    with Upstream(Reply()) as up:
        monkeypatch.setattr("opsloop.llm._factory.DEFAULT_BASE_URL", up.url)
        yield up


def test_openai_spec_url_is_where_the_prompt_goes(home: Path, default_host: Upstream) -> None:
    settings = Settings(home=home)
    with Upstream(Reply()) as named:
        p = get_provider(f"openai:qwen@{named.url}", settings=settings, api_key="k")
        assert p.chat(FRANCE, max_tokens=4).text == "hi"
        assert [r["path"] for r in named.requests] == ["/v1/chat/completions"]
        assert named.requests[0]["body"]["model"] == "qwen"
        # The spec's URL wins over a configured one; no request leaves for another host.
        other = settings.model_copy(update={"llm_base_url": default_host.url})
        get_provider(f"openai:qwen@{named.url}/", settings=other).chat(FRANCE, max_tokens=4)
        assert len(named.requests) == 2
    assert default_host.requests == []


def test_openai_without_url_uses_settings_then_secret_then_default(
    home: Path, default_host: Upstream
) -> None:
    with Upstream(Reply()) as configured, Upstream(Reply()) as stored:
        settings = Settings(home=home, llm_base_url=configured.url)
        get_provider("openai:m", settings=settings).chat(FRANCE, max_tokens=2)
        SecretStore(home).set("llm_base_url", stored.url)
        get_provider("openai:m", settings=Settings(home=home)).chat(FRANCE, max_tokens=2)
        assert (len(configured.requests), len(stored.requests)) == (1, 1)
        assert default_host.requests == []
    SecretStore(home).delete("llm_base_url")
    get_provider("openai:m", settings=Settings(home=home)).chat(FRANCE, max_tokens=2)
    assert len(default_host.requests) == 1  # named by nobody else: the public default


def test_openai_spec_url_conflicts_and_bad_specs_are_refused(home: Path) -> None:
    s = Settings(home=home)
    with pytest.raises(InvalidArgument, match="give one"):
        get_provider("openai:m@http://127.0.0.1:9/v1", base_url="http://127.0.0.1:8/v1", settings=s)
    with pytest.raises(InvalidArgument, match="names no model"):
        get_provider("openai:@http://127.0.0.1:9/v1", settings=s)
