"""int8 weight quantisation of a registered language model: a new version that is smaller on
disk and in memory, loads through the registry, answers, and serves (real SmolLM2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument, NotFound
from opsloop.settings import Settings

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Any]:
    """SmolLM2 registered as float32 safetensors (version 1), then quantised (version 2, @int8)."""
    from opsloop import Client
    from opsloop.registry import Registry, bundled_gguf, quantize_model
    from opsloop.registry.flavors._transformers import converted_gguf_dir

    home = tmp_path_factory.mktemp("int8-home")
    settings = Settings(home=home, flush_interval_s=60.0)
    client = Client(settings=settings)
    fp32 = converted_gguf_dir(
        bundled_gguf("smollm2", cache_dir=model_cache / "assembled"), model_cache
    )
    reg = Registry(client)
    v1 = reg.register(
        "smol", fp32, flavor="transformers", options={"model_id": "SmolLM2-135M-Instruct"}
    )
    v2 = quantize_model(client, "models:/smol/1", alias="int8", cache_dir=model_cache)
    try:
        yield {
            "client": client,
            "settings": settings,
            "v1": v1,
            "v2": v2,
            "cache": model_cache,
            "fp32": fp32,
        }
    finally:
        client.close()


def test_the_int8_version_is_registered_from_the_float_one_and_is_smaller_on_disk(
    quantized: Any,
) -> None:
    v1, v2 = quantized["v1"], quantized["v2"]
    assert (v2.name, v2.version, v2.flavor) == ("smol", 2, "transformers")
    assert "int8" in quantized["client"].registry.get_version("smol", 2).aliases
    assert v2.tags["opsloop.quantized_from"] == "models:/smol/1"
    assert v2.metadata["format"] == "int8" and v2.metadata["quantized_from"] == "models:/smol/1"
    assert "model-int8.safetensors" in v2.files
    assert not any(f.endswith(".safetensors") and "int8" not in f for f in v2.files)
    # Linear weights at 1 byte instead of 4; the float embeddings stay: about 47% of the size.
    assert v2.size < 0.55 * v1.size, (v2.size, v1.size)
    # SmoothQuant folded all three kinds of scale into SmolLM2 (a Llama block), exactly.
    smoothing = v2.metadata["quantization"]["smoothing"]
    assert smoothing["folds"] == ["down_proj", "gate_up_proj", "qkv_proj"], smoothing
    assert smoothing["layers"] == 30 and smoothing["max_relative_logit_change"] <= 2e-3


def test_the_int8_version_loads_answers_and_holds_less_memory(quantized: Any) -> None:
    import torch

    from opsloop.llm import get_provider
    from opsloop.registry import LoadedCausalLM, load_model
    from opsloop.registry.flavors._int8 import weight_bytes

    client, cache = quantized["client"], quantized["cache"]
    # Through the registry as a provider, as pipelines and selection use it (one load).
    with get_provider("models:/smol@int8", client=client, cache_dir=cache, device="cpu") as p:
        q = p.loaded
        assert isinstance(q, LoadedCausalLM) and q.metadata["format"] == "int8"
        linears = [m for m in q.model.modules() if type(m) is torch.nn.Linear]
        assert linears == []  # every Linear became a dynamically quantised one
        # The float32 version's weights take their safetensors' size in memory.
        assert weight_bytes(q.model) < 0.55 * quantized["v1"].size
        assert p.chat(FRANCE, max_tokens=12).text.strip()  # it answers (quality: below)
    with pytest.raises(InvalidArgument, match="CPU only"):
        load_model("models:/smol@int8", client=client, cache_dir=cache, device="cuda")


def test_the_int8_version_serves_openai_chat(quantized: Any) -> None:
    from tests.test_serving import ThreadServer

    with ThreadServer(
        "models:/smol@int8",
        quantized["settings"],
        cache_dir=quantized["cache"],
        device="cpu",
        poll_interval_s=0,
    ) as srv:
        srv.wait_ready(600)
        meta = httpx.get(f"{srv.url}/v1/metadata", timeout=10).json()
        assert meta["kind"] == "llm" and meta["version"] == 2
        r = httpx.post(
            f"{srv.url}/v1/chat/completions",
            json={"messages": FRANCE, "max_tokens": 12, "temperature": 0},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].strip()


def test_the_int8_version_keeps_the_float_versions_answer(quantized: Any) -> None:
    from opsloop.llm import get_provider

    client, cache = quantized["client"], quantized["cache"]
    with get_provider("models:/smol@int8", client=client, cache_dir=cache, device="cpu") as p:
        assert "Paris" in p.chat(FRANCE, max_tokens=12).text


def test_bad_sources_are_refused_with_clear_errors(quantized: Any, tmp_path: Path) -> None:
    from opsloop.registry import quantize_model
    from opsloop.registry.cli import app

    client = quantized["client"]
    with pytest.raises(InvalidArgument, match="already int8"):
        quantize_model(client, "models:/smol/2")
    with pytest.raises(InvalidArgument, match="models:/ URI"):
        quantize_model(client, "./some/folder")
    with pytest.raises(NotFound):
        quantize_model(client, "models:/nope/1")
    for alpha in (0.0, 1.0, -0.5, True, "half"):
        with pytest.raises(InvalidArgument, match="smooth_alpha"):
            quantize_model(client, "models:/smol/1", smooth_alpha=alpha)  # type: ignore[arg-type]
    before = [v.version for v in client.registry.list_versions("smol")]
    home = str(quantized["settings"].home)
    res = CliRunner().invoke(app, ["quantize", "models:/smol@int8", "--home", home])
    assert res.exit_code != 0
    assert res.output.strip().startswith("error [INVALID_ARGUMENT]:"), res.output
    assert "Traceback" not in res.output
    assert [v.version for v in client.registry.list_versions("smol")] == before


def test_smoothing_is_exact_in_float_and_undone_where_a_norm_is_not_a_plain_scale(
    quantized: Any,
) -> None:
    """Tiny real transformers models: a Llama block takes every fold; Gemma 3's ``1 + weight``
    norms refuse the two norm folds (checked by the logits), and the model computes as before."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3TextConfig, LlamaConfig

    from opsloop.registry.flavors._smooth import CALIBRATION_TEXTS, smooth

    tok = AutoTokenizer.from_pretrained(str(quantized["fp32"]))
    ids = tok(CALIBRATION_TEXTS[0], return_tensors="pt").input_ids
    small = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    }
    for config, folds in (
        (LlamaConfig(**small), ["down_proj", "gate_up_proj", "qkv_proj"]),
        (Gemma3TextConfig(**small, head_dim=16), ["down_proj"]),
    ):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
        with torch.no_grad():
            # Outlier channels like a trained model's, so the scales are far from 1.
            for layer in model.model.layers:
                layer.mlp.up_proj.weight[:4].mul_(40.0)
            before = model(ids).logits
        report = smooth(model, tok, alpha=0.5)
        assert report.applied == folds, (type(model).__name__, report)
        assert sorted(report.applied + report.undone) == ["down_proj", "gate_up_proj", "qkv_proj"]
        with torch.no_grad():
            after = model(ids).logits
        assert torch.allclose(after, before, rtol=0, atol=2e-3 * before.abs().max().item())
        with pytest.raises(ValueError, match="alpha"):
            smooth(model, tok, alpha=1.0)
