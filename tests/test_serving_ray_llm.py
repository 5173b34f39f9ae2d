"""``opsloop serve --on ray`` for language and embedding models: one model copy per replica,
continuous batching and micro-batching inside it, streaming through Ray's proxy, and a
request in flight finishing when the application is deleted.

Real parts: a local Ray instance, the bundled SmolLM2 and MiniLM, the real OpenAI client.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from opsloop.serving import RayOptions, ServeOptions, deploy_on_ray
from opsloop.settings import Settings
from tests._procs import free_port, wait_until

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> Iterator[dict[str, Any]]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield {
            "settings": Settings(home=tmp_path_factory.mktemp("ray-llm-home")),
            "port": free_port(),
            "cache": model_cache,
        }
    finally:
        serve.shutdown()
        ray.shutdown()
        os.environ.pop("RAY_USAGE_STATS_ENABLED", None)


@pytest.mark.slow
def test_a_language_model_replica_batches_concurrent_chats_and_streams(
    cluster: dict[str, Any],
) -> None:
    direct = free_port()
    options = ServeOptions(
        monitoring=False, device="cpu", cache_dir=cluster["cache"], llm_max_wait_ms=50
    )
    deleted = False
    url = deploy_on_ray(
        "local:smollm2",
        cluster["settings"],
        options,
        RayOptions(app_name="llm", replicas=1, replica_cpus=1, direct_port=direct),
        port=cluster["port"],
    )
    try:
        with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as oc:

            def chat(i: int) -> Any:
                return oc.chat.completions.create(
                    model="smollm2",
                    messages=[{"role": "user", "content": f"Count to {i + 3}."}],
                    max_tokens=8,
                    temperature=0,
                )

            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(chat, range(4)))
            assert all(a.usage.completion_tokens > 0 for a in answers)
            # One copy of the model in the replica decoded the four requests together.
            gen = httpx.get(f"{url}/v1/stats").json()["generation"]
            assert gen["requests"] == 4 and gen["max_batch"] > 1, gen
        # The same replica streams through Ray's proxy, chunk by chunk.
        proxy = f"http://127.0.0.1:{cluster['port']}/v1"
        with openai.OpenAI(base_url=proxy, api_key="x", max_retries=0) as oc:
            chunks = list(
                oc.chat.completions.create(
                    model="smollm2",
                    messages=[{"role": "user", "content": "Say hello."}],
                    max_tokens=6,
                    stream=True,
                )
            )
        assert len(chunks) >= 3 and chunks[-1].choices[0].finish_reason in ("stop", "length")
        assert len({c.id for c in chunks}) == 1
        # Deleting the application lets a request in flight finish first (graceful shutdown).
        with (
            openai.OpenAI(base_url=proxy, api_key="x", max_retries=0, timeout=120) as oc,
            ThreadPoolExecutor(1) as pool,
        ):
            long = pool.submit(
                lambda: oc.chat.completions.create(
                    model="smollm2",
                    messages=[{"role": "user", "content": "Tell me about the sea."}],
                    max_tokens=40,
                    temperature=0,
                )
            )
            wait_until(
                lambda: httpx.get(f"{url}/v1/stats").json()["generation"]["running"] >= 1, 60
            )
            serve.delete("llm")  # blocks until the replica is gone
            deleted = True
            answer = long.result(timeout=120)
        assert answer.usage.completion_tokens > 0 and answer.choices[0].message.content
        assert answer.choices[0].finish_reason in ("stop", "length")
    finally:
        if not deleted:
            serve.delete("llm")


@pytest.mark.slow
def test_an_embedding_replica_micro_batches_requests(cluster: dict[str, Any]) -> None:
    options = ServeOptions(monitoring=False, device="cpu", max_wait_ms=20)
    url = deploy_on_ray(
        "local:minilm",
        cluster["settings"],
        options,
        RayOptions(app_name="emb", replicas=1, replica_cpus=1),
        port=cluster["port"],
    )
    try:
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as oc,
            ThreadPoolExecutor(8) as pool,
        ):
            outs = list(
                pool.map(
                    lambda i: oc.embeddings.create(model="minilm", input=[f"text {i}"]),
                    range(16),
                )
            )
        assert all(len(o.data[0].embedding) == 384 for o in outs)
        stats = httpx.get(f"{url}/v1/stats").json()["embeddings"]
        assert stats["requests"] == 16 and stats["batches"] < 16, stats
    finally:
        serve.delete("emb")
