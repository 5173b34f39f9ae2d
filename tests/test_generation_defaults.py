"""Local models stop looping: anti-repetition generation defaults, chosen by measurement
(benchmarks/generation_defaults.py), applied the same way by every local generation path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks.generation_defaults import distinct_n, looping

from opsloop.errors import InvalidArgument


def test_the_looping_measure() -> None:
    assert looping("Use opsloop serve.\nUse opsloop serve.\nUse opsloop serve.")
    assert looping("the server the server runs the server runs the server runs the server runs")
    assert not looping("The opsloop server starts with opsloop server --port 5000.")
    assert not looping("ok\nok\nok")  # short lines are not a loop
    assert distinct_n("a b a b a b") == pytest.approx(2 / 5)
    assert distinct_n("one") == 1.0


def test_generation_options_are_checked() -> None:
    from opsloop.llm._types import gen_options

    o = gen_options(repetition_penalty=1.2, no_repeat_ngram_size=4)
    assert (o.repetition_penalty, o.no_repeat_ngram_size) == (1.2, 4)
    assert o.trace_params()["repetition_penalty"] == 1.2
    assert gen_options().repetition_penalty is None  # the model's default
    for bad in ({"repetition_penalty": 0.5}, {"repetition_penalty": "x"}):
        with pytest.raises(InvalidArgument) as e:
            gen_options(**bad)
        assert e.value.details["param"] == "repetition_penalty"
    for n in (-1, 65, True, 2.0):
        with pytest.raises(InvalidArgument) as e:
            gen_options(no_repeat_ngram_size=n)
        assert e.value.details["param"] == "no_repeat_ngram_size"


def test_an_http_provider_refuses_local_only_settings_before_sending() -> None:
    from opsloop.llm import get_provider

    with (
        get_provider("openai:m", base_url="http://127.0.0.1:9/v1", api_key="k") as p,
        pytest.raises(InvalidArgument, match="local-model setting") as e,
    ):
        p.chat([{"role": "user", "content": "hi"}], repetition_penalty=1.2)
    assert e.value.details["param"] == "repetition_penalty"


def test_the_server_and_generate_penalise_the_same_way() -> None:
    torch = pytest.importorskip("torch")
    from opsloop.registry.flavors._base import _GeneratedRepetition
    from opsloop.serving._sampling import GenerationParams, penalize

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=g)
    prompt = [7, 8, 9]
    generated = [3, 4, 5, 3, 4]
    for rp, n in ((1.3, 0), (1.0, 3), (1.2, 2)):
        served = penalize(
            logits, GenerationParams(8, repetition_penalty=rp, no_repeat_ngram_size=n), generated
        )
        ids = torch.tensor([prompt + generated])
        own = _GeneratedRepetition(len(prompt), rp, n)(ids, logits[None].clone())[0]
        assert torch.equal(served, own)
        if rp != 1.0:  # generated tokens lose, the prompt's and others keep their logits
            assert served[3] == (logits[3] / rp if logits[3] > 0 else logits[3] * rp)
            assert served[7] == logits[7] and served[20] == logits[20]
        if n == 3:  # "3 4" was followed by 5 before: 5 is banned after "... 3 4"
            assert served[5] == -float("inf")
    off = GenerationParams(8)
    assert penalize(logits, off, generated) is logits


# SmolLM2 answers this with "opsloop -c -c -c -c ..." to the token limit under the old
# settings (no penalty, greedy): measured with benchmarks/generation_defaults.py's looping().
LOOPING_PROMPT = "List the commands of opsloop."


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> Any:
    pytest.importorskip("transformers")
    from opsloop.llm import get_provider

    with get_provider("local:smollm2", cache_dir=model_cache, device="cpu") as p:
        yield p


@pytest.mark.slow
def test_a_prompt_that_looped_with_the_old_settings_no_longer_loops(smol: Any) -> None:
    from opsloop.registry.flavors import GENERATION_DEFAULTS

    lm = smol.loaded
    assert lm.generation_defaults == GENERATION_DEFAULTS
    assert GENERATION_DEFAULTS != {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}
    messages = [{"role": "user", "content": LOOPING_PROMPT}]
    old = smol.chat(messages, max_tokens=64, repetition_penalty=1.0, no_repeat_ngram_size=0)
    assert looping(old.text), old.text
    new = smol.chat(messages, max_tokens=64)  # the defaults
    assert not looping(new.text), new.text
    assert distinct_n(new.text) > distinct_n(old.text)
    # The streamed answer gets the same defaults, token for token.
    assert "".join(c.text for c in smol.stream(messages, max_tokens=64)) == new.text
