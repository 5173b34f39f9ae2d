"""OpenAI-compatible serving of real models, driven by the real ``openai`` client.

SmolLM2-135M-Instruct (the bundled GGUF) and all-MiniLM-L6-v2 are registered
in a registry and served from ``models:/`` URIs on a real socket. Converting
the GGUF costs tens of seconds, so converted weights go to one cache per test
session (``OPSLOOP_TEST_MODEL_CACHE`` keeps it across sessions), each server
starts once per module, and generation stays a few tokens long (2 CPU cores).
The reference answers come from the served model object itself
(``LoadedCausalLM.generate``, transformers' own generation loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from opsloop.registry import bundled_embedder, bundled_gguf
from tests._procs import wait_until
from tests.conftest import run_async, serve_registered
from tests.test_serving import ThreadServer

openai = pytest.importorskip("openai")
pytest.importorskip("transformers")
# The first test of a session may convert the GGUF (tens of seconds, more on a busy box).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass
class Served:
    srv: ThreadServer
    client: Any  # openai.OpenAI
    lm: Any  # the loaded model the server uses

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.srv.url}/v1/stats").json()  # type: ignore[no-any-return]


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path,
    name: str,
    source: Path,
    flavor: str,
    options: dict[str, Any],
    **serve_opts: Any,
) -> Iterator[Served]:
    home = tmp_path_factory.mktemp(f"{name}-home")
    served = serve_registered(home, model_cache, name, source, flavor, options, **serve_opts)
    with (
        served as (srv, _),
        openai.OpenAI(base_url=f"{srv.url}/v1", api_key="x", max_retries=0) as oc,
    ):
        yield Served(srv, oc, srv.app.state.holder.current.model)


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Served]:
    yield from _serve(
        tmp_path_factory,
        model_cache,
        "smol",
        bundled_gguf("smollm2"),
        "transformers",
        {"model_id": "SmolLM2-135M-Instruct"},
        llm_max_batch_size=8,
        llm_max_wait_ms=50,
        max_tokens_limit=512,
    )


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Served]:
    yield from _serve(
        tmp_path_factory,
        model_cache,
        "minilm",
        bundled_embedder(),
        "sentence_transformers",
        {"model_id": "all-MiniLM-L6-v2"},
        max_wait_ms=20,
    )


def reference(lm: Any, messages: list[dict[str, str]], max_tokens: int) -> Any:
    """transformers' own greedy generation for the same prompt."""
    return lm.generate([lm.apply_chat_template(messages)], max_new_tokens=max_tokens)[0]


# ---------------------------------------------------------------- chat and completions


def _tokens_counted(srv: ThreadServer) -> float:
    """The served app's Prometheus token counter (the monitoring room's hook), parsed."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{srv.url}/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "opsloop_tokens_total" and s.labels["route"] == "/v1/chat/completions"
    )


def test_chat_completion_matches_the_models_own_generation(smol: Served) -> None:
    tokens_before = _tokens_counted(smol.srv)
    r = smol.client.chat.completions.create(
        model="smol", messages=FRANCE, max_tokens=8, temperature=0
    )
    ref = reference(smol.lm, FRANCE, 8)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == "smol" and r.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content == ref.text
    assert "Paris" in choice.message.content
    assert choice.finish_reason == ref.finish_reason
    prompt = smol.lm.apply_chat_template(FRANCE)
    assert r.usage.prompt_tokens == smol.lm.count_tokens(prompt) == ref.prompt_tokens
    assert r.usage.completion_tokens == ref.completion_tokens
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # The registry URI and the model id name the same model.
    again = smol.client.chat.completions.create(
        model="SmolLM2-135M-Instruct", messages=FRANCE, max_tokens=8, temperature=0
    )
    assert again.choices[0].message.content == ref.text
    # both answers' tokens are counted on the served app's /metrics
    assert _tokens_counted(smol.srv) - tokens_before == 2 * r.usage.total_tokens


def test_streamed_chat_is_the_same_text_in_openai_chunks(smol: Served) -> None:
    messages = [{"role": "user", "content": "Name three colours."}]
    full = smol.client.chat.completions.create(
        model="smol", messages=messages, max_tokens=10, temperature=0
    )
    chunks = list(
        smol.client.chat.completions.create(
            model="smol",
            messages=messages,
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content and text
    finals = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == full.usage
    assert len({c.id for c in chunks}) == 1 and all(
        c.object == "chat.completion.chunk" for c in chunks
    )
    # The raw stream: Server-Sent Events ending with [DONE].
    with httpx.stream(
        "POST",
        f"{smol.srv.url}/v1/chat/completions",
        json={"messages": messages, "max_tokens": 4, "stream": True},
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line for line in resp.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_completions_with_stop_strings_and_seeded_sampling(smol: Served) -> None:
    prompt = smol.lm.apply_chat_template(FRANCE)
    chat = smol.client.chat.completions.create(
        model="smol", messages=FRANCE, max_tokens=8, temperature=0
    )
    r = smol.client.completions.create(model="smol", prompt=prompt, max_tokens=8, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text == chat.choices[0].message.content
    assert r.usage.prompt_tokens == chat.usage.prompt_tokens
    stopped = smol.client.completions.create(
        model="smol", prompt=prompt, max_tokens=12, temperature=0, stop=["Paris"]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert "Paris" not in stopped.choices[0].text
    assert chat.choices[0].message.content.startswith(stopped.choices[0].text)
    streamed = "".join(
        c.choices[0].text
        for c in smol.client.completions.create(
            model="smol", prompt=prompt, max_tokens=12, temperature=0, stop=["Paris"], stream=True
        )
    )
    assert streamed == stopped.choices[0].text
    long = smol.client.completions.create(
        model="smol", prompt="Once upon a time", max_tokens=5, temperature=0
    )
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 5

    def sample(seed: int) -> str:
        return (
            smol.client.completions.create(  # type: ignore[no-any-return]
                model="smol",
                prompt="My favourite animal is",
                max_tokens=8,
                temperature=1.0,
                top_p=0.9,
                seed=seed,
            )
            .choices[0]
            .text
        )

    assert sample(7) == sample(7)


def test_concurrent_chats_share_batches_and_answer_as_if_alone(smol: Served) -> None:
    prompts = [
        [{"role": "user", "content": q}]
        for q in (
            "What is the capital of France?",
            "Say hello.",
            "What is 2 plus 2?",
            "Name a fruit.",
            "What colour is the sky?",
            "Count to three.",
        )
    ]
    solo = [reference(smol.lm, m, 8).text for m in prompts]
    before = smol.stats()["generation"]

    async def burst() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=f"{smol.srv.url}/v1", api_key="x", max_retries=0
        ) as ac:
            return await asyncio.gather(
                *[
                    ac.chat.completions.create(
                        model="smol", messages=m, max_tokens=8, temperature=0
                    )
                    for m in prompts
                ]
            )

    answers = run_async(burst())
    assert [a.choices[0].message.content for a in answers] == solo
    after = smol.stats()["generation"]
    assert after["max_batch"] > 1
    assert after["prefills"] - before["prefills"] < len(prompts)  # requests were prefilled together


def test_a_request_joins_a_running_batch_and_a_gone_client_leaves_it(smol: Served) -> None:
    long_msgs = [{"role": "user", "content": "Write a long story about a dragon."}]
    short_msgs = [{"role": "user", "content": "Say hello."}]
    want_long = reference(smol.lm, long_msgs, 24).text
    want_short = reference(smol.lm, short_msgs, 6).text
    joined = smol.stats()["generation"]["joined_mid_flight"]
    stream = smol.client.chat.completions.create(
        model="smol", messages=long_msgs, max_tokens=24, temperature=0, stream=True
    )
    parts = []
    for chunk in stream:
        parts.append(chunk.choices[0].delta.content or "")
        if len(parts) == 3:  # the long one is decoding: send the short one now
            short = smol.client.chat.completions.create(
                model="smol", messages=short_msgs, max_tokens=6, temperature=0
            )
    assert "".join(parts) == want_long
    assert short.choices[0].message.content == want_short
    assert smol.stats()["generation"]["joined_mid_flight"] > joined

    cancelled = smol.stats()["generation"]["cancelled"]
    with httpx.stream(
        "POST",
        f"{smol.srv.url}/v1/chat/completions",
        json={"messages": long_msgs, "max_tokens": 400, "stream": True},
    ) as resp:
        for i, _ in enumerate(resp.iter_lines()):
            if i > 4:
                break
    t = time.monotonic()
    wait_until(lambda: smol.stats()["generation"]["running"] == 0, 60, "the sequence to leave")
    assert smol.stats()["generation"]["cancelled"] == cancelled + 1
    assert time.monotonic() - t < 30


def test_bad_requests_get_openai_readable_errors(smol: Served) -> None:
    c = smol.client
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="smol", messages=FRANCE, reasoning_effort="low")
    assert e.value.code == "INVALID_ARGUMENT" and "reasoning_effort" in e.value.message
    with pytest.raises(openai.NotFoundError) as nf:
        c.chat.completions.create(model="gpt-4o", messages=FRANCE, max_tokens=2)
    assert nf.value.code == "NOT_FOUND"
    with pytest.raises(openai.BadRequestError, match="at most 512"):
        c.chat.completions.create(model="smol", messages=FRANCE, max_tokens=100_000)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="smol", messages=[], max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="smol", messages=FRANCE, temperature=5)
    with pytest.raises(openai.BadRequestError, match="context"):
        c.completions.create(model="smol", prompt="word " * 9000, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        c.embeddings.create(model="smol", input="hello")
    body = httpx.post(f"{smol.srv.url}/v1/chat/completions", json={"messages": "x"}).json()
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert body["error"]["type"] == "invalid_request_error"
    models = c.models.list()
    assert [m.id for m in models.data] == ["smol"]
    # Still healthy.
    assert c.chat.completions.create(model="smol", messages=FRANCE, max_tokens=2).choices


# ---------------------------------------------------------------- embeddings


def test_embeddings_match_the_model_and_concurrent_requests_are_batched(minilm: Served) -> None:
    texts = ["a cat sits on the mat", "stock markets fell today", "the kitten sleeps"]
    want = np.asarray(minilm.lm.embed(texts))
    r = minilm.client.embeddings.create(model="minilm", input=texts)  # base64 on the wire
    got = np.asarray([d.embedding for d in r.data])
    assert got.shape == (3, 384) and np.allclose(got, want, atol=1e-5)
    assert [d.index for d in r.data] == [0, 1, 2]
    assert r.usage.prompt_tokens == sum(minilm.lm.count_tokens(t) for t in texts)
    as_floats = minilm.client.embeddings.create(
        model="minilm", input=texts[0], encoding_format="float"
    )
    assert np.allclose(as_floats.data[0].embedding, want[0], atol=1e-5)
    sim = got @ got.T
    assert sim[0, 2] > sim[0, 1]  # the cat is closer to the kitten than to the markets

    async def burst() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=f"{minilm.srv.url}/v1", api_key="x", max_retries=0
        ) as ac:
            return await asyncio.gather(
                *[
                    ac.embeddings.create(model="minilm", input=f"sentence number {i}")
                    for i in range(12)
                ]
            )

    answers = run_async(burst())
    assert all(len(a.data[0].embedding) == 384 for a in answers)
    stats = minilm.stats()["embeddings"]
    assert stats["max_batch_rows"] > 3  # more than one request's texts in one model call
    with pytest.raises(openai.BadRequestError):
        minilm.client.embeddings.create(model="minilm", input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="language model"):
        minilm.client.chat.completions.create(model="minilm", messages=FRANCE)
