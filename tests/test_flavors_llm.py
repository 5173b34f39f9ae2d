"""Real language and embedding models from the bundled packages, registered and loaded.

Converting a GGUF costs tens of seconds, so the converted weights go to one
cache per test session (``OPSLOOP_TEST_MODEL_CACHE`` keeps it across
sessions) and the SmolLM2 model is loaded once for the module. Generation is
kept to a few tokens: these run on 2 CPU cores.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import opsloop
from opsloop.errors import InvalidArgument
from opsloop.registry import (
    LoadedCausalLM,
    LoadedEmbedder,
    Registry,
    bundled_embedder,
    bundled_gguf,
    load_model,
)
from opsloop.settings import Settings
from tests.conftest import live_server

pytest.importorskip("transformers")
pytest.importorskip("gguf")
pytestmark = pytest.mark.slow


@dataclass
class Smol:
    client: opsloop.Client
    reg: Registry
    lm: LoadedCausalLM
    first_load_s: float
    converted: bool
    marker: Path


@pytest.fixture(scope="module")
def smol(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smol]:
    home = tmp_path_factory.mktemp("smol-home")
    client = opsloop.Client(settings=Settings(home=home))
    reg = Registry(client)
    mv = reg.register(
        "smol",
        bundled_gguf("smollm2"),
        flavor="transformers",
        options={"model_id": "SmolLM2-135M-Instruct", "max_new_tokens": 6},
    )
    reg.set_alias("smol", "champion", mv.version)
    gguf_digest = mv.files[mv.metadata["gguf_file"]].digest.removeprefix("sha256:")
    marker = model_cache / "gguf" / gguf_digest / ".opsloop-complete"
    converted = not marker.exists()
    t = time.perf_counter()
    lm = load_model("models:/smol@champion", client=client, cache_dir=model_cache)
    first = time.perf_counter() - t
    assert isinstance(lm, LoadedCausalLM)
    yield Smol(client, reg, lm, first, converted, marker)
    client.close()


def test_smollm2_from_gguf_generates_and_the_second_load_uses_the_cache(
    smol: Smol, model_cache: Path
) -> None:
    lm = smol.lm
    assert lm.flavor == "transformers" and lm.model_id == "SmolLM2-135M-Instruct"
    assert not lm.model.training and lm.has_chat_template
    assert lm.version is not None and lm.version.aliases == ["champion"]
    # The weights came from the converted safetensors in the cache, not from the GGUF.
    assert Path(lm.model.name_or_path).parent == smol.marker.parent.parent
    stamp = smol.marker.stat().st_mtime

    t = time.perf_counter()
    again = load_model("models:/smol/1", client=smol.client, cache_dir=model_cache)
    second = time.perf_counter() - t
    assert smol.marker.stat().st_mtime == stamp  # not converted again
    print(
        f"\nSmolLM2 load: first {smol.first_load_s:.1f}s (converted={smol.converted}), second {second:.1f}s"
    )
    if smol.converted:
        assert second < smol.first_load_s / 3
    del again

    prompt = lm.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}])
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    out = lm.generate([prompt, "The opposite of hot is"], max_new_tokens=8)
    assert len(out) == 2
    assert "Paris" in out[0].text
    assert out[0].prompt_tokens == lm.count_tokens(prompt)
    assert out[1].prompt_tokens < out[0].prompt_tokens  # left padding is not counted
    assert 1 <= out[0].completion_tokens <= 8 and out[1].completion_tokens == 8
    assert out[1].finish_reason == "length" and out[1].text.strip()
    stopped = lm.generate([prompt], max_new_tokens=12, stop=["Paris"])[0]
    assert "Paris" not in stopped.text and stopped.finish_reason == "stop"
    for bad in ([], "one prompt", [1]):
        with pytest.raises(InvalidArgument):
            lm.generate(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        lm.generate(["x"], max_new_tokens=0)
    with pytest.raises(InvalidArgument):
        lm.generate(["x"], top_p=0)


def test_smollm2_predict_checks_its_signature(smol: Smol) -> None:
    lm = smol.lm
    assert str(lm.signature) == "(prompt: string) -> (text: string)"
    texts = lm.predict({"prompt": ["Name a colour."]})
    assert len(texts) == 1 and isinstance(texts[0], str) and texts[0].strip()
    with pytest.raises(InvalidArgument, match="missing input column 'prompt'"):
        lm.predict([{}])
    with pytest.raises(InvalidArgument, match=r"unexpected input column\(s\) \['text'\]"):
        lm.predict([{"text": "hi"}])
    with pytest.raises(InvalidArgument, match="must be a string"):
        lm.predict([{"prompt": 42}])
    with pytest.raises(InvalidArgument, match="role"):
        lm.apply_chat_template([{"content": "no role"}])


def test_peft_adapter_on_registered_base(smol: Smol, model_cache: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from opsloop.registry.flavors import save_peft

    # A fresh copy of the base: get_peft_model changes the model it wraps.
    base = load_model("models:/smol@champion", client=smol.client, cache_dir=model_cache)
    assert isinstance(base, LoadedCausalLM)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(
            base.model,
            LoraConfig(
                r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
            ),
        )
    folder = save_peft(
        peft_model, tmp_path / "adapter", base_model="models:/smol@champion", model_id="smol-lora"
    )
    mv = smol.reg.register("smol-lora", folder)
    assert mv.flavor == "peft" and mv.metadata["base_model"] == "models:/smol/1"
    assert smol.reg.lineage("smol-lora", 1).base_model.name == "smol"  # type: ignore[union-attr]

    adapted = load_model("models:/smol-lora", client=smol.client, cache_dir=model_cache)
    assert isinstance(adapted, LoadedCausalLM) and adapted.flavor == "peft"
    assert type(adapted.model).__name__ == "LlamaForCausalLM"  # merged into plain weights
    enc = smol.lm.tokenizer(["Hello there"], return_tensors="pt")
    with torch.inference_mode():
        diff = (adapted.model(**enc).logits - smol.lm.model(**enc).logits).abs().max().item()
    assert diff > 1e-3  # the adapter changed the model
    out = adapted.generate(["Hello"], max_new_tokens=3)
    assert out[0].completion_tokens >= 1


def test_minilm_embeddings_through_a_server(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(home=tmp_path / "server")
    with (
        live_server(settings) as srv,
        opsloop.Client(
            settings=settings.model_copy(
                update={"tracking_uri": srv.url, "home": tmp_path / "client"}
            )
        ) as client,
    ):
        reg = Registry(client)
        mv = reg.register(
            "minilm",
            bundled_embedder(),
            flavor="sentence_transformers",
            options={"model_id": "all-MiniLM-L6-v2"},
        )
        assert "model.safetensors" in mv.files and mv.size > 80_000_000
        em = load_model("models:/minilm", client=client, cache_dir=tmp_path / "cache")
    assert isinstance(em, LoadedEmbedder) and em.dimension == 384
    import numpy as np

    v = np.array(
        em.embed(
            [
                "A man is playing a guitar.",
                "Someone strums a guitar on stage.",
                "The stock market fell sharply today.",
            ]
        )
    )
    assert v.shape == (3, 384)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    related, unrelated = float(unit[0] @ unit[1]), float(unit[0] @ unit[2])
    assert related > 0.5 > unrelated and related > unrelated + 0.3
    assert em.predict([{"text": "hi"}])[0] == pytest.approx(em.embed(["hi"])[0])
    with pytest.raises(InvalidArgument, match="row 1 must be a string"):
        em.predict([{"text": "ok"}, {"text": 3}])
    with pytest.raises(InvalidArgument, match="is null"):
        em.predict([{"text": None}])
    assert em.embed([]) == []


def test_gemma3_270m_from_gguf_loads_and_generates(model_cache: Path, tmp_path: Path) -> None:
    gguf = bundled_gguf("gemma3", cache_dir=model_cache / "assembled")
    assert gguf.stat().st_size > 200_000_000
    with opsloop.Client(settings=Settings(home=tmp_path / "home")) as client:
        reg = Registry(client)
        reg.register("gemma", gguf, flavor="transformers", options={"model_id": "gemma-3-270m"})
        t = time.perf_counter()
        lm = load_model("models:/gemma", client=client, cache_dir=model_cache)
        print(f"\nGemma 3 270M load: {time.perf_counter() - t:.1f}s")
    assert isinstance(lm, LoadedCausalLM) and lm.model.config.model_type.startswith("gemma3")
    out = lm.generate(["The capital of France is"], max_new_tokens=3)[0]
    assert out.completion_tokens >= 1 and out.text.strip()
    # A base model without a chat template still gets a usable conversation prompt.
    if not lm.has_chat_template:
        assert lm.apply_chat_template([{"role": "user", "content": "Hi"}]).endswith("assistant:")
