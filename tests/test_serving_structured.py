"""Structured outputs, tool calls, logprobs, n, seeds and penalties on `opsloop serve`, driven by
the real ``openai`` client (sync, async, streaming, and its pydantic ``parse`` helper).

One SmolLM2-135M-Instruct server for the module; answers stay a few tokens
long (2 CPU cores). The shipped set of 32 schemas is generated concurrently
(the engine batches them) and every answer must parse and validate.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.errors import InvalidArgument
from opsloop.llm import LocalProvider, example_schemas
from opsloop.registry import bundled_gguf
from opsloop.settings import Settings
from tests.conftest import run_async
from tests.test_serving_llm import Served, _serve

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("llguidance")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Give the name and age of a famous scientist as JSON."}]
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def smol(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Served]:
    yield from _serve(
        tmp_path_factory,
        model_cache,
        "smol",
        bundled_gguf("smollm2"),
        "transformers",
        {"model_id": "SmolLM2-135M-Instruct"},
        llm_max_batch_size=32,
        llm_max_wait_ms=50,
        max_tokens_limit=512,
    )


def _schema_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def _post(smol: Served, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{smol.srv.url}/v1/{path}", json=body, timeout=600)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent requests at once: the engine batches them (2 CPU cores)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


# ---------------------------------------------------------------- structured outputs


def test_response_formats_are_enforced_chat_completion_and_stream(smol: Served) -> None:
    oc = smol.client
    kw: dict[str, Any] = {"model": "smol", "temperature": 0}
    rx_pattern = "(yes|no), [A-Z][a-z]{2,10}"
    free, obj, r, chunks, rx, gr, comp = together(
        lambda: oc.chat.completions.create(messages=ASK, max_tokens=16, **kw),
        lambda: oc.chat.completions.create(
            messages=ASK, max_tokens=32, response_format={"type": "json_object"}, **kw
        ),
        lambda: oc.chat.completions.create(
            messages=ASK, max_tokens=32, response_format=_schema_format(PERSON), **kw
        ),
        lambda: list(
            oc.chat.completions.create(
                messages=ASK,
                max_tokens=32,
                response_format=_schema_format(PERSON),
                stream=True,
                **kw,
            )
        ),
        lambda: oc.chat.completions.create(
            messages=FRANCE,
            max_tokens=10,
            response_format={"type": "regex", "regex": rx_pattern},
            **kw,
        ),
        lambda: _post(
            smol,
            "chat/completions",
            {
                "messages": FRANCE,
                "max_tokens": 6,
                "temperature": 0,
                "response_format": {"type": "grammar", "grammar": 'start: "Paris" | "Lyon"'},
            },
        ).json(),
        lambda: oc.completions.create(
            prompt="A famous scientist as JSON: ",
            max_tokens=32,
            extra_body={"response_format": _schema_format(PERSON)},
            **kw,
        ),
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.choices[0].message.content)  # the model alone answers in prose
    assert isinstance(json.loads(obj.choices[0].message.content), dict)
    jsonschema.validate(json.loads(r.choices[0].message.content), PERSON)
    assert r.choices[0].finish_reason == "stop"
    # Streaming gives the same answer, piece by piece.
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 3 and "".join(pieces) == r.choices[0].message.content
    # A regex, a Lark grammar, and the completions endpoint.
    assert re.fullmatch(rx_pattern, rx.choices[0].message.content)
    assert gr["choices"][0]["message"]["content"] in ("Paris", "Lyon")
    jsonschema.validate(json.loads(comp.choices[0].text), PERSON)


def test_schema_the_engine_cannot_enforce_is_a_400_naming_the_construct(smol: Served) -> None:
    for schema, construct in [
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "not"),
        ({"type": "object", "dependentRequired": {"a": ["b"]}}, "dependentRequired"),
    ]:
        with pytest.raises(openai.BadRequestError) as err:
            smol.client.chat.completions.create(
                model="smol", messages=ASK, max_tokens=4, response_format=_schema_format(schema)
            )
        assert err.value.status_code == 400
        assert construct in err.value.message
        assert err.value.body["param"] == "response_format"  # type: ignore[index]
    bad = _post(smol, "chat/completions", {"messages": ASK, "response_format": {"type": "xml"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_format"


def test_every_shipped_schema_validates(smol: Served) -> None:
    tasks = example_schemas()
    assert len(tasks) >= 30

    async def one(ac: Any, task: dict[str, Any]) -> Any:
        return await ac.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": task["prompt"] + " Answer in JSON."}],
            max_tokens=64,
            temperature=0,
            response_format=_schema_format(task["schema"], task["name"]),
        )

    async def all_of() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=f"{smol.srv.url}/v1", api_key="x", max_retries=0, timeout=600
        ) as ac:
            return await asyncio.gather(*(one(ac, t) for t in tasks))

    before = smol.stats()["generation"]
    answers = run_async(all_of())
    for task, r in zip(tasks, answers, strict=True):
        text = r.choices[0].message.content
        assert r.choices[0].finish_reason == "stop", (task["name"], text)
        jsonschema.validate(json.loads(text), task["schema"])
    # Keys and punctuation the grammars forced were taken without being sampled.
    after = smol.stats()["generation"]
    forced = after["grammar_forced_tokens"] - before["grammar_forced_tokens"]
    generated = after["generated_tokens"] - before["generated_tokens"]
    assert generated // 4 < forced < generated, (forced, generated)
    assert after["ms_per_decode_step"] > 0


def test_forced_tokens_are_fed_without_a_decode_step_each(smol: Served) -> None:
    """Fast-forward: the same greedy answer, token for token, in fewer decode steps; a forced
    token's log-probability is 0 (the mask left it alone)."""
    from opsloop.llm import compile_response_format
    from opsloop.serving._engine import GenerationEngine
    from opsloop.serving._sampling import GenerationParams

    lm = smol.lm
    grammar = compile_response_format(_schema_format(PERSON), lm.tokenizer)
    ids = lm.tokenizer(lm.apply_chat_template(ASK))["input_ids"]

    async def both() -> dict[bool, tuple[Any, int]]:
        engine = GenerationEngine(lm.model, lm.tokenizer, max_batch_size=2)
        out = {}
        try:
            for ff in (True, False):
                steps = engine.stats.steps
                params = GenerationParams(
                    32, temperature=0.0, grammar=grammar, fast_forward=ff, logprobs=True
                )
                (c,) = await engine.complete(ids, params)
                out[ff] = (c, engine.stats.steps - steps)
        finally:
            await engine.close()
        return out

    got = run_async(both())
    (fast, fast_steps), (slow, slow_steps) = got[True], got[False]
    assert fast.text == slow.text and fast.completion_tokens == slow.completion_tokens
    jsonschema.validate(json.loads(fast.text), PERSON)
    assert fast_steps < slow_steps == slow.completion_tokens - 1
    assert fast.logprobs is not None and len(fast.logprobs) == fast.completion_tokens
    assert [t.token for t in fast.logprobs] == [t.token for t in slow.logprobs or []]
    assert sum(t.logprob == 0.0 for t in fast.logprobs) >= slow_steps - fast_steps


# ---------------------------------------------------------------- sampling parameters


def test_logprobs_n_seed_penalties_logit_bias_and_stops(smol: Served) -> None:
    oc = smol.client
    tok = smol.lm.tokenizer
    kw: dict[str, Any] = {"model": "smol", "temperature": 0}
    # n choices share one prefill; a seed makes the same request give the same answers.
    before = smol.stats()["generation"]["prefills"]
    seeded: dict[str, Any] = {"messages": FRANCE, "max_tokens": 5, "temperature": 1.0, "seed": 7}
    three = oc.chat.completions.create(model="smol", n=3, **seeded)
    assert smol.stats()["generation"]["prefills"] == before + 1
    assert [c.index for c in three.choices] == [0, 1, 2]
    texts = [c.message.content for c in three.choices]
    assert len(set(texts)) > 1  # each choice draws its own tokens
    rep = [{"role": "user", "content": "Write the word cat ten times."}]
    stop = "of France"
    forced_id = tok(" Lyon", add_special_tokens=False)["input_ids"][0]
    again, r, comp, plain, penal, full, cut, forced = together(
        lambda: oc.chat.completions.create(model="smol", n=3, **seeded),
        lambda: oc.chat.completions.create(
            messages=FRANCE, max_tokens=5, logprobs=True, top_logprobs=3, **kw
        ),
        lambda: oc.completions.create(
            prompt="The capital of France is", max_tokens=3, logprobs=2, **kw
        ),
        lambda: oc.chat.completions.create(messages=rep, max_tokens=14, **kw),
        lambda: oc.chat.completions.create(
            messages=rep, max_tokens=14, frequency_penalty=2.0, presence_penalty=1.0, **kw
        ),
        lambda: oc.chat.completions.create(messages=FRANCE, max_tokens=10, **kw),
        lambda: oc.chat.completions.create(messages=FRANCE, max_tokens=10, stop=[stop], **kw),
        lambda: oc.chat.completions.create(
            messages=FRANCE, max_tokens=1, logit_bias={str(forced_id): 100}, **kw
        ),
    )
    assert [c.message.content for c in again.choices] == texts
    assert three.usage.completion_tokens <= 15 and three.usage.completion_tokens >= 3
    # Chat logprobs: one entry per generated token, the greedy token first among the top ones.
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == t.logprob
        assert bytes(t.bytes).decode("utf-8", "replace") == t.token
    assert "".join(t.token for t in content) == r.choices[0].message.content
    lp = comp.choices[0].logprobs
    assert "".join(lp.tokens) == comp.choices[0].text and len(lp.top_logprobs[0]) == 2
    assert lp.text_offset[0] == 0 and all(v <= 0 for v in lp.token_logprobs)
    # logit_bias: +100 forces a token, -100 bans the greedy one.
    assert forced.choices[0].message.content == tok.decode([forced_id])
    first = tok(content[0].token, add_special_tokens=False)["input_ids"][0]
    banned = oc.chat.completions.create(
        messages=FRANCE, max_tokens=1, logit_bias={str(first): -100}, **kw
    )
    assert banned.choices[0].message.content not in ("", content[0].token)
    # frequency/presence penalties push away from repeating tokens.
    count = lambda x: x.choices[0].message.content.lower().count("cat")  # noqa: E731
    assert count(penal) < count(plain)
    # A stop string spanning several tokens ends the answer before it.
    text = full.choices[0].message.content
    assert stop in text and len(tok(stop, add_special_tokens=False)["input_ids"]) > 1
    assert cut.choices[0].message.content == text[: text.index(stop)]


# Every parameter OpenAI documents for chat completions: honoured (200) or refused (400 naming it).
HONOURED: dict[str, Any] = {
    "frequency_penalty": 0.5,
    "presence_penalty": 0.5,
    "logit_bias": {"0": 1.0},
    "logprobs": True,
    "max_tokens": 1,
    "max_completion_tokens": 1,
    "n": 2,
    "parallel_tool_calls": True,
    "response_format": {"type": "json_object"},
    "seed": 1,
    "stop": ["\n\n"],
    "stream": False,
    "temperature": 0.5,
    "top_p": 0.9,
    "user": "someone",
    "modalities": ["text"],
    "service_tier": "auto",
    "store": False,
}
REFUSED: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "low",
    "web_search_options": {},
    "verbosity": "low",
    "metadata": {"a": "b"},
    "store": True,
    "modalities": ["text", "audio"],
    "service_tier": "flex",
}


def test_every_documented_parameter_is_honoured_or_refused(smol: Served) -> None:
    def honoured(name: str, value: Any) -> Callable[[], httpx.Response]:
        body = {"messages": FRANCE, "max_tokens": 1, name: value}
        if name == "logprobs":
            body["top_logprobs"] = 2
        return lambda: _post(smol, "chat/completions", body)

    answers = together(*(honoured(k, v) for k, v in HONOURED.items()))
    for name, r in zip(HONOURED, answers, strict=True):
        assert r.status_code == 200, (name, r.text)
    for name, value in REFUSED.items():
        r = _post(smol, "chat/completions", {"messages": FRANCE, "max_tokens": 1, name: value})
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"]["param"] == name
    for name, value in {"suffix": "x", "echo": True, "best_of": 3}.items():
        r = _post(smol, "completions", {"prompt": "Hi", "max_tokens": 1, name: value})
        assert r.status_code == 400 and r.json()["error"]["param"] == name, name
    r = _post(smol, "chat/completions", {"messages": FRANCE, "top_logprobs": 2})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_logprobs"
    r = _post(smol, "chat/completions", {"messages": FRANCE, "logit_bias": {"999999": 1}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "logit_bias"


# ---------------------------------------------------------------- tool calls


def test_tool_calls_choice_modes_stream_and_results(smol: Served) -> None:
    oc = smol.client
    params_schema = WEATHER_TOOL["function"]["parameters"]  # type: ignore[index]
    kw: dict[str, Any] = {
        "model": "smol",
        "messages": WEATHER,
        "max_tokens": 40,
        "temperature": 0,
        "tools": [WEATHER_TOOL],
    }
    named = {"type": "function", "function": {"name": "get_weather"}}
    required, by_name, none, auto, chunks = together(
        lambda: oc.chat.completions.create(tool_choice="required", **kw),
        lambda: oc.chat.completions.create(tool_choice=named, **kw),
        lambda: oc.chat.completions.create(tool_choice="none", **{**kw, "max_tokens": 6}),
        lambda: oc.chat.completions.create(**kw),
        lambda: list(oc.chat.completions.create(tool_choice="required", stream=True, **kw)),
    )
    for r in (required, by_name):
        msg = r.choices[0].message
        assert r.choices[0].finish_reason == "tool_calls" and msg.content is None
        (call,) = msg.tool_calls
        assert call.id.startswith("call_") and call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), params_schema)
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content
    m = auto.choices[0].message
    if m.tool_calls:
        jsonschema.validate(json.loads(m.tool_calls[0].function.arguments), params_schema)
    else:
        assert m.content and not m.content.startswith("{")
    # Streamed as the client expects: the call arrives in delta.tool_calls.
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    args = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(args) == json.loads(call.function.arguments)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # The tool's result goes back as a tool message; the conversation goes on in words.
    follow = oc.chat.completions.create(
        **{
            **kw,
            "messages": [
                *WEATHER,
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'},
            ],
            "max_tokens": 8,
        },
        tool_choice="none",
    )
    assert follow.choices[0].finish_reason in ("stop", "length")
    assert follow.choices[0].message.content
    bad = _post(smol, "chat/completions", {"messages": WEATHER, "tool_choice": "required"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tool_choice"


def test_pipeline_agent_step_calls_tools_on_the_served_model(
    smol: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline's agent step on ``openai:smol@<this server>``: its tools go to the server as
    OpenAI function tools, the call comes back in ``tool_calls`` (generated under the tool's
    schema, so its arguments validate) and the result goes back as a ``tool`` turn."""
    from opsloop.llm import get_provider
    from opsloop.pipelines import AgentStep, LocalCorpusSearch, Pipeline, RunContext

    monkeypatch.setenv("OPSLOOP_HOME", str(tmp_path / "home"))  # the run's own traces
    (tmp_path / "kettle.md").write_text("# Kettle\n\nThe kettle warranty lasts two years.\n")
    search = LocalCorpusSearch(tmp_path, name="search")
    spec = f"openai:smol@{smol.srv.url}/v1"
    model = get_provider(spec, settings=Settings(home=tmp_path), api_key="x", trace=False)
    assert model.supports_tools
    p = Pipeline(
        [AgentStep("agent", spec, tools=["search"], max_iterations=1, tool_choice="required",
                   max_tokens=48, temperature=0)],
        name="agent-served", inputs=["question"], tools=[search],
    )  # fmt: skip
    p.context = RunContext(providers={spec: model}, tools={"search": search})
    out = p.run({"question": "How long does the kettle warranty last?"}).outputs["agent"]
    assert out["protocol"] == "tools" and out["iterations"] == 2
    (call,) = out["tool_calls"]
    assert call["tool"] == "search" and str(call["id"]).startswith("call_")
    assert search.check_args(call["args"]) == call["args"]
    assert isinstance(call["result"], list) and isinstance(out["answer"], str)


# ---------------------------------------------------------------- the client's helpers


def test_openai_parse_helper_with_pydantic_and_async_stream(smol: Served) -> None:
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=20)
        age: int = Field(ge=0, le=150)

    parse = (
        getattr(smol.client.chat.completions, "parse", None)
        or smol.client.beta.chat.completions.parse
    )
    r = parse(model="smol", messages=ASK, max_tokens=40, temperature=0, response_format=Person)
    person = r.choices[0].message.parsed
    assert isinstance(person, Person) and 0 <= person.age <= 150

    async def streamed() -> str:
        async with openai.AsyncOpenAI(
            base_url=f"{smol.srv.url}/v1", api_key="x", max_retries=0
        ) as ac:
            parts = []
            stream = await ac.chat.completions.create(
                model="smol",
                messages=ASK,
                max_tokens=40,
                temperature=0,
                response_format=_schema_format(PERSON),
                stream=True,
            )
            async for c in stream:
                if c.choices and c.choices[0].delta.content:
                    parts.append(c.choices[0].delta.content)
            return "".join(parts)

    jsonschema.validate(json.loads(run_async(streamed())), PERSON)


# ---------------------------------------------------------------- local providers


def test_local_provider_enforces_response_format(smol: Served, tmp_path: Path) -> None:
    # The served model object, driven as a local provider (no second load).
    p = LocalProvider("local:smollm2", smol.lm, threading.Lock(), settings=Settings(home=tmp_path))
    fmt = _schema_format(PERSON)
    r = p.chat(ASK, max_tokens=32, response_format=fmt)
    jsonschema.validate(json.loads(r.text), PERSON)
    assert "".join(c.text for c in p.stream(ASK, max_tokens=32, response_format=fmt)) == r.text
    rx = p.chat(FRANCE, max_tokens=6, response_format={"type": "regex", "regex": "[A-Z][a-z]+"})
    assert re.fullmatch("[A-Z][a-z]+", rx.text)
    with pytest.raises(InvalidArgument, match="uniqueItems"):
        p.chat(
            ASK,
            max_tokens=4,
            response_format=_schema_format({"type": "array", "uniqueItems": True}),
        )
