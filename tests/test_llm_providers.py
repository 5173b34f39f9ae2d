"""LLM providers over real models: local SmolLM2, Gemma 3 and MiniLM, and a real ``opsloop serve``.

The local tests use the bundled models (SmolLM2-135M-Instruct, Gemma 3 270M,
all-MiniLM-L6-v2); the OpenAI-compatible provider is tested against a real
``opsloop serve`` of SmolLM2 and MiniLM on a socket, its usage compared with
the server's own answer. One SmolLM2 is loaded for the module (the provider
cache) and generation stays a few tokens long (2 CPU cores). Retries, secrets
and the scripted failing upstream are in ``test_llm_http.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.cli._app import app as cli_app
from opsloop.errors import InvalidArgument, ProviderError, ProviderTimeout
from opsloop.llm import Provider, Usage, get_provider
from opsloop.settings import Settings
from opsloop.tracing import Tracing
from tests.conftest import serve_registered

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


# ---------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def smol(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Provider:
    pytest.importorskip("transformers")
    home = tmp_path_factory.mktemp("llm-home")
    return get_provider(
        "local:smollm2", cache_dir=model_cache, device="cpu", settings=Settings(home=home)
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_smollm2_chat_complete_stream_and_token_counts(
    smol: Provider, model_cache: Path
) -> None:
    assert (smol.spec, smol.model, smol.provider) == (
        "local:smollm2",
        "SmolLM2-135M-Instruct",
        "opsloop-local",
    )
    r = smol.chat(FRANCE, max_tokens=8)
    assert "Paris" in r.text and r.finish_reason in ("stop", "length")
    assert r.usage.input_tokens == smol.count_tokens(FRANCE) > 10
    assert 1 <= r.usage.output_tokens <= 8
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.cost_usd == 0.0 and r.latency_s > 0
    # The stream is the same text, token by token, and ends with the usage.
    chunks = list(smol.stream(FRANCE, max_tokens=8))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) >= 3 and "".join(texts) == r.text
    assert chunks[-1].usage == r.usage and chunks[-1].finish_reason == r.finish_reason
    assert all(c.usage is None for c in chunks[:-1])
    # A stop string ends the answer and never shows up, streamed or not.
    stopped = smol.chat(FRANCE, max_tokens=12, stop=["Paris"])
    assert stopped.finish_reason == "stop" and "Paris" not in stopped.text
    assert r.text.startswith(stopped.text)
    streamed = "".join(c.text for c in smol.stream(FRANCE, max_tokens=12, stop=["Paris"]))
    assert streamed == stopped.text
    # Leaving a stream early stops it; the model is free for the next call.
    t = time.perf_counter()
    for _ in smol.stream(FRANCE, max_tokens=400):
        break
    assert time.perf_counter() - t < 20
    prompt = smol.loaded.apply_chat_template(FRANCE)  # type: ignore[attr-defined]
    c = smol.complete(prompt, max_tokens=8)
    assert c.text == r.text and c.usage == r.usage
    assert smol.count_tokens("Paris") >= 1
    # A deadline the model cannot meet.
    with pytest.raises(ProviderTimeout):
        smol.chat(FRANCE, max_tokens=400, timeout_s=0.05)
    # One batched generate for several conversations.
    batch = smol.batch_chat([FRANCE, [{"role": "user", "content": "Say hello."}]], max_tokens=4)
    assert len(batch) == 2 and batch[0].text == smol.chat(FRANCE, max_tokens=4).text
    assert all(b.usage.output_tokens >= 1 for b in batch)
    with pytest.raises(InvalidArgument, match="not an embedder"):
        smol.embed(["x"])
    # The process-wide cache hands back the same loaded model (no second load).
    t = time.perf_counter()
    again = get_provider(
        "local:smollm2", cache_dir=model_cache, device="cpu", settings=smol.settings
    )
    assert again.loaded is smol.loaded and time.perf_counter() - t < 1.0  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_calls_record_spans_inside_an_open_trace(smol: Provider, home: Path) -> None:
    with opsloop.Client(settings=Settings(home=home, flush_interval_s=60.0)) as client:
        tr = Tracing(client)
        with tr.start_trace("answer") as root:
            r = smol.chat(FRANCE, max_tokens=4)
            "".join(c.text for c in smol.stream(FRANCE, max_tokens=4))
        tr.flush()
        spans = tr.get_trace(root.trace_id, flat=True).spans
        assert [s.name for s in spans] == [
            "answer",
            "chat SmolLM2-135M-Instruct",
            "chat SmolLM2-135M-Instruct",
        ]
        for s in spans[1:]:
            assert s.kind == "llm" and s.parent_span_id == root.span_id
            assert s.attributes["gen_ai.system"] == "opsloop-local"
            assert s.attributes["gen_ai.usage.input_tokens"] == r.usage.input_tokens
            assert s.attributes["gen_ai.usage.output_tokens"] == r.usage.output_tokens
            assert s.cost == 0
        assert spans[2].attributes["opsloop.stream"] is True
        assert spans[2].outputs == [{"role": "assistant", "content": r.text}]
        tr.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_llm_chat_cli_streams_the_answer(smol: Provider, model_cache: Path, home: Path) -> None:
    r = CliRunner().invoke(
        cli_app,
        [
            "llm",
            "chat",
            "What is the capital of France?",
            "--model",
            "local:smollm2",
            "--max-tokens",
            "8",
            "--cache-dir",
            str(model_cache),
            "--device",
            "cpu",
            "--home",
            str(home),
        ],
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == smol.chat(FRANCE, max_tokens=8).text
    assert "input" in r.stderr and "output tokens" in r.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_gemma3_base_model_completes_and_chats(model_cache: Path, home: Path) -> None:
    pytest.importorskip("transformers")
    g = get_provider(
        "local:gemma3", cache_dir=model_cache, device="cpu", settings=Settings(home=home)
    )
    assert g.model == "gemma-3-270m"
    r = g.complete("The capital of France is", max_tokens=3)
    assert r.text.strip() and 1 <= r.usage.output_tokens <= 3
    assert r.usage.input_tokens == g.count_tokens("The capital of France is") + 1  # + BOS
    # No chat template: the conversation becomes a transcript ending in "assistant:".
    assert not g.loaded.has_chat_template  # type: ignore[attr-defined]
    c = g.chat([{"role": "user", "content": "Hi"}], max_tokens=3)
    assert c.usage.input_tokens == g.count_tokens([{"role": "user", "content": "Hi"}])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_minilm_embeds_normalised_vectors_with_usage(model_cache: Path, home: Path) -> None:
    pytest.importorskip("sentence_transformers")
    e = get_provider(
        "local:minilm", cache_dir=model_cache, device="cpu", settings=Settings(home=home)
    )
    texts = ["A man is playing a guitar.", "Someone strums a guitar.", "Stocks fell sharply."]
    r = e.embed(texts)
    assert r.model == "all-MiniLM-L6-v2" and len(r.vectors) == 3
    assert all(len(v) == 384 for v in r.vectors)
    assert all(math.isclose(math.hypot(*v), 1.0, abs_tol=1e-4) for v in r.vectors)
    dot = [sum(a * b for a, b in zip(r.vectors[0], v, strict=True)) for v in r.vectors[1:]]
    assert dot[0] > dot[1] + 0.3
    assert r.usage == Usage(sum(e.count_tokens(t) for t in texts), 0) and r.usage.input_tokens > 10
    assert e.embed([]).vectors == []
    with pytest.raises(InvalidArgument, match="embedding model"):
        e.chat(FRANCE)
    with pytest.raises(InvalidArgument, match="embedding model"):
        e.stream(FRANCE)


# ---------------------------------------------------------------- a real opsloop serve


@dataclass
class Served:
    url: str
    provider: Provider


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    name: str,
    source: Path,
    flavor: str,
    options: dict[str, Any],
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp(f"{name}-serve-home")
    with (
        serve_registered(home, model_cache, name, source, flavor, options) as (srv, settings),
        get_provider(
            f"openai:{name}", base_url=f"{srv.url}/v1", api_key="x", settings=settings
        ) as p,
    ):
        yield Served(srv.url, p)


@pytest.fixture(scope="module")
def served_smol(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Served]:
    pytest.importorskip("transformers")
    from opsloop.registry import bundled_gguf

    yield from _serve(
        tmp_path_factory,
        model_cache,
        "smol",
        bundled_gguf("smollm2"),
        "transformers",
        {"model_id": "SmolLM2-135M-Instruct"},
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_openai_provider_against_opsloop_serve(served_smol: Served, smol: Provider) -> None:
    p = served_smol.provider
    raw = httpx.post(
        f"{served_smol.url}/v1/chat/completions",
        json={"model": "smol", "messages": FRANCE, "max_tokens": 8, "temperature": 0},
        timeout=120,
    ).json()
    r = p.chat(FRANCE, max_tokens=8)
    assert r.text == raw["choices"][0]["message"]["content"] == smol.chat(FRANCE, max_tokens=8).text
    assert r.usage == Usage(raw["usage"]["prompt_tokens"], raw["usage"]["completion_tokens"])
    assert r.finish_reason == raw["choices"][0]["finish_reason"] and r.response_id
    assert r.cost_usd is None  # "smol" has no price entry
    # Streaming over SSE: several chunks, the same text, the usage in the last one.
    chunks = list(p.stream(FRANCE, max_tokens=8))
    assert len([c for c in chunks if c.text]) >= 3
    assert "".join(c.text for c in chunks) == r.text
    assert chunks[-1].usage == r.usage and chunks[-1].finish_reason == r.finish_reason
    # Completions of the same templated prompt.
    prompt = smol.loaded.apply_chat_template(FRANCE)  # type: ignore[attr-defined]
    c = p.complete(prompt, max_tokens=8)
    assert c.text == r.text and c.usage == r.usage
    # Several conversations at once (the server batches concurrent requests).
    batch = p.batch_chat([FRANCE, FRANCE], max_tokens=8)
    assert [b.text for b in batch] == [r.text, r.text]
    # The server's own errors come back as ProviderError with its message.
    with pytest.raises(ProviderError) as ei:
        p.chat(FRANCE, max_tokens=5000)
    assert ei.value.details["status"] == 400 and "max_tokens" in ei.value.details["message"]
    with pytest.raises(ProviderError):
        p.embed(["not an embedder"])
    # Exact token counts through a local tokenizer of the same model.
    counted = get_provider(
        "openai:smol",
        base_url=p.base_url,
        tokenizer=smol,
        settings=smol.settings,  # type: ignore[attr-defined]
    )
    assert counted.count_tokens(FRANCE) == r.usage.input_tokens


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_openai_embeddings_against_opsloop_serve_of_minilm(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, home: Path
) -> None:
    pytest.importorskip("sentence_transformers")
    from opsloop.registry import bundled_embedder

    texts = ["A man is playing a guitar.", "Stocks fell sharply."]
    local = get_provider(
        "local:minilm", cache_dir=model_cache, device="cpu", settings=Settings(home=home)
    )
    for served in _serve(
        tmp_path_factory,
        model_cache,
        "minilm",
        bundled_embedder(),
        "sentence_transformers",
        {"model_id": "all-MiniLM-L6-v2"},
    ):
        raw = httpx.post(
            f"{served.url}/v1/embeddings", json={"model": "minilm", "input": texts}, timeout=60
        ).json()
        r = served.provider.embed(texts)
        assert r.usage == Usage(raw["usage"]["prompt_tokens"], 0) == local.embed(texts).usage
        assert len(r.vectors) == 2 and len(r.vectors[0]) == 384
        for a, b in zip(r.vectors, local.embed(texts).vectors, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_registry_embedder_by_models_uri(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from opsloop.registry import Registry, bundled_embedder

    with opsloop.Client(settings=Settings(home=home)) as client:
        reg = Registry(client)
        mv = reg.register(
            "mini",
            bundled_embedder(),
            flavor="sentence_transformers",
            options={"model_id": "all-MiniLM-L6-v2"},
        )
        reg.set_alias("mini", "prod", mv.version)
        p = get_provider("models:/mini@prod", client=client, cache_dir=tmp_path / "c", device="cpu")
        assert (p.spec, p.model, p.provider) == (
            "models:/mini@prod",
            "all-MiniLM-L6-v2",
            "opsloop-local",
        )
        v = p.embed(["hello"]).vectors
        assert len(v) == 1 and len(v[0]) == 384
        same = get_provider("models:/mini/1", client=client, cache_dir=tmp_path / "c", device="cpu")
        assert same.loaded is p.loaded  # type: ignore[attr-defined]
        with pytest.raises(opsloop.errors.NotFound):
            get_provider("models:/nope@prod", client=client, cache_dir=tmp_path / "c")
