"""``opsloop serve`` takes every local model spec providers take: bundled names, a GGUF file.

Real models on real sockets (``ThreadServer`` and ``serve_process`` from the
serving tests); generation stays a few tokens long and the GGUF conversion goes
to the session's model cache.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opsloop.errors import InvalidArgument
from opsloop.registry import bundled_gguf
from opsloop.serving import ServeOptions
from opsloop.serving._run import check_target
from opsloop.settings import Settings
from tests.test_serving import ThreadServer, serve_process

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HELLO = {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 3, "temperature": 0}


def test_bundled_chat_model_and_its_gguf_file_serve_the_same_answers(
    home: Path, model_cache: Path
) -> None:
    settings = Settings(home=home)
    answers = []
    gguf = bundled_gguf("smollm2", cache_dir=model_cache / "assembled")
    for target in ("local:smollm2", str(gguf)):
        with ThreadServer(target, settings, cache_dir=model_cache, device="cpu") as srv:
            ready = srv.wait_ready(600)
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                meta = c.get("/v1/metadata").json()
                r = c.post("/v1/chat/completions", json=HELLO)
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["usage"]["completion_tokens"] == 3
                answers.append(body["choices"][0]["message"]["content"])
        assert ready["model"] in ("smollm2", gguf.name.removesuffix(".gguf")), (ready, meta)
    assert answers[0] and answers[0] == answers[1]  # the same weights, greedy decoding


def test_opsloop_serve_local_minilm_from_the_command_line(home: Path, model_cache: Path) -> None:
    args = ("local:minilm", "--home", str(home), "--cache-dir", str(model_cache), "--device", "cpu")
    with serve_process(*args) as (_proc, url, _log):
        r = httpx.post(f"{url}/v1/embeddings", json={"input": ["a cat", "a dog"]}, timeout=60)
        assert r.status_code == 200, r.text
        vectors = [d["embedding"] for d in r.json()["data"]]
        assert len(vectors) == 2 and len(vectors[0]) == 384


def test_every_spec_resolves_before_loading_and_unknown_ones_are_refused(
    home: Path, tmp_path: Path, model_cache: Path
) -> None:
    from opsloop.llm import check_local

    s, o = Settings(home=home), ServeOptions()
    for spec in ("local:smollm2", "local:gemma3", "local:minilm"):
        assert check_target(spec, s, o).name == spec.removeprefix("local:")
    gguf = bundled_gguf("gemma3", cache_dir=model_cache / "assembled")
    assert check_local(str(gguf)) == "gguf"  # what get_provider("local:/x.gguf") loads
    for target in (str(gguf), f"local:{gguf}"):
        got = check_target(target, s, o)
        assert got.flavor == "transformers" and got.uri == str(gguf.resolve())
    for bad, match in (
        ("local:nope", "unknown local model 'nope'"),
        ("openai:gpt-4o-mini", "remote endpoint"),
        (str(tmp_path / "missing"), "local:smollm2, local:gemma3"),
    ):
        with pytest.raises(InvalidArgument, match=match):
            check_target(bad, s, o)
