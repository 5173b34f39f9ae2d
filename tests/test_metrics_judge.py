"""LLM-as-judge: rubric prompts, verdict parsing and validation, re-asking on bad output.

Most tests drive the judge loop with a scripted chat model: a test double
standing for an upstream model that misbehaves in known ways. One slow test
runs the judge on a real local model (SmolLM2-135M-Instruct through opsloop's
local provider), whose verdict is generated under its JSON schema and so is
valid the first time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics import (
    JudgeError,
    Rubric,
    Verdict,
    ask_structured,
    extract_json,
    judge,
    judge_metric,
)

RUBRIC = Rubric(
    name="correctness", criteria=["The answer is factually correct.", "It answers the question."]
)


class Scripted:
    """Answers with the given replies in turn and records every request."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.requests: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.requests.append([dict(m) for m in messages])
        return self.replies[min(len(self.requests), len(self.replies)) - 1]


def test_valid_verdict_first_time() -> None:
    model = Scripted('{"score": 4, "passed": true, "reasons": ["mostly right"]}')
    v = judge(model, RUBRIC, output="Paris", input="Capital of France?", reference="Paris")
    assert isinstance(v, Verdict)
    assert (v.score, v.passed, v.reasons, v.attempts, v.rubric) == (
        4.0,
        True,
        ["mostly right"],
        1,
        "correctness",
    )
    assert v.normalized == pytest.approx(0.75)
    prompt = model.requests[0][-1]["content"]
    assert "Capital of France?" in prompt and "Paris" in prompt
    assert "- The answer is factually correct." in prompt and "from 1 (worst) to 5 (best)" in prompt
    assert model.requests[0][0]["role"] == "system"


def test_json_inside_prose_and_code_fences() -> None:
    fenced = 'Sure! Here is my verdict:\n```json\n{"score": 2, "passed": false, "reasons": ["wrong city"]}\n```\nHope it helps.'
    assert judge(Scripted(fenced), RUBRIC, output="Lyon").score == 2.0
    bare = 'Verdict: {"score": 5, "reason": "exact", "passed": true} -- done {not json}'
    v = judge(Scripted(bare), RUBRIC, output="Paris")
    assert v.reasons == ["exact"]  # "reason" and a single string are accepted
    assert extract_json('x {"a": {"b": 1}} y') == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("[1, 2] and no object")


def test_malformed_then_valid_reasks_with_the_error() -> None:
    model = Scripted(
        "I think it is a good answer, 5 out of 5.",
        '{"score": 9, "passed": true, "reasons": ["great"]}',
        '{"score": 5, "passed": true, "reasons": ["great"]}',
    )
    v = judge(model, RUBRIC, output="Paris", max_retries=2)
    assert v.attempts == 3 and v.score == 5.0
    second, third = model.requests[1], model.requests[2]
    # the bad reply goes back as the assistant's turn, followed by what was wrong with it
    assert second[-2] == {
        "role": "assistant",
        "content": "I think it is a good answer, 5 out of 5.",
    }
    assert "no JSON object" in second[-1]["content"] and '"score": 5' in second[-1]["content"]
    assert "outside the scale 1..5" in third[-1]["content"]


def test_missing_and_wrongly_typed_fields_are_reported() -> None:
    model = Scripted('{"score": "high", "passed": true}', '{"score": 3, "reasons": ["ok"]}')
    v = judge(model, RUBRIC, output="x")
    assert v.attempts == 2
    complaint = model.requests[1][-1]["content"]
    assert "score" in complaint and "reasons" in complaint
    # no "passed" from the judge: the midpoint of the scale decides
    assert v.passed is True and v.score == 3.0


def test_gives_up_with_a_clear_error() -> None:
    model = Scripted("no idea", "still no idea")
    with pytest.raises(JudgeError) as info:
        judge(model, RUBRIC, output="Paris", max_retries=3)
    err = info.value
    assert err.code == "JUDGE_FAILED" and err.http_status == 502
    assert "4 attempts" in err.message and "no JSON object" in err.message
    assert err.details["attempts"] == 4 and err.details["last_reply"] == "still no idea"
    assert len(err.details["errors"]) == 4
    assert len(model.requests) == 4
    with pytest.raises(JudgeError):
        judge(Scripted("nope"), RUBRIC, output="Paris", max_retries=0)


def test_pass_threshold_overrides_the_judge() -> None:
    strict = RUBRIC.model_copy(update={"pass_threshold": 4.5})
    v = judge(Scripted('{"score": 4, "passed": true, "reasons": ["ok"]}'), strict, output="x")
    assert v.passed is False
    lenient = Rubric(name="tone", criteria="Polite.", scale_min=0, scale_max=10)
    v = judge(Scripted('{"score": 3, "passed": true, "reasons": ["ok"]}'), lenient, output="x")
    assert v.passed is True and v.normalized == pytest.approx(0.3)


def test_chat_objects_and_bad_models() -> None:
    class Provider:
        def chat(self, messages: list[dict[str, str]]) -> str:
            return '{"score": 1, "passed": false, "reasons": ["wrong"]}'

    assert judge(Provider(), RUBRIC, output="x").score == 1.0
    with pytest.raises(InvalidArgument, match="returned dict"):
        judge(lambda m: {"score": 1}, RUBRIC, output="x")
    with pytest.raises(InvalidArgument, match="callable"):
        judge(42, RUBRIC, output="x")

    def broken(messages: Any) -> str:
        raise ConnectionError("provider down")

    with pytest.raises(ConnectionError):  # the provider's own failure is not hidden
        judge(broken, RUBRIC, output="x")


def test_rubric_validation_and_rendering() -> None:
    with pytest.raises(ValueError, match="unknown placeholders"):
        Rubric(name="r", criteria=["c"], template="{{output}} {{answer}}")
    with pytest.raises(ValueError, match="must include"):
        Rubric(name="r", criteria=["c"], template="{{input}}")
    with pytest.raises(ValueError, match="scale_max"):
        Rubric(name="r", criteria=["c"], scale_min=5, scale_max=5)
    with pytest.raises(ValueError, match="pass_threshold"):
        Rubric(name="r", criteria=["c"], pass_threshold=7)
    with pytest.raises(ValueError):
        Rubric(name="r", criteria=[])
    r = Rubric(
        name="r",
        criteria=["c"],
        template="Q: {{ input }} A: {{output}} C: {{context}}",
        system="sys",
    )
    msgs = r.messages(output="uses {{input}} literally", input="why?", context=["one", "two"])
    assert msgs == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Q: why? A: uses {{input}} literally C: one\n\ntwo"},
    ]
    with pytest.raises(InvalidArgument, match="empty"):
        judge(Scripted("{}"), RUBRIC, output="   ")
    with pytest.raises(InvalidArgument, match="max_retries"):
        judge(Scripted("{}"), RUBRIC, output="x", max_retries=-1)


def test_judge_metric_scores_each_example() -> None:
    def grader(messages: list[dict[str, str]]) -> str:
        good = "Response to grade:\nParis" in messages[-1]["content"]
        return json.dumps({"score": 5 if good else 1, "passed": good, "reasons": ["checked"]})

    m = judge_metric(grader, RUBRIC)
    assert m.name == "judge_correctness" and m.kind == "judge" and m.range == (0.0, 1.0)
    res = m.compute(["Paris", "Lyon"], ["Paris", "Paris"], input=["Capital?", "Capital?"])
    assert res.per_example == [1.0, 0.0] and res.value == 0.5


def test_ask_structured_with_a_custom_schema() -> None:
    from pydantic import BaseModel

    class Label(BaseModel):
        label: str
        confidence: float

    model = Scripted('{"label": "spam"}', '{"label": "spam", "confidence": 0.9}')
    value, attempts = ask_structured(
        model,
        [{"role": "user", "content": "classify"}],
        Label,
        example='{"label": "...", "confidence": 0.5}',
    )
    assert (value.label, value.confidence, attempts) == ("spam", 0.9, 2)
    assert "confidence: Field required" in model.requests[1][-1]["content"]


@pytest.mark.slow  # generating on CPU
def test_real_small_model_judges_under_the_verdict_schema(model_cache: Path) -> None:
    """SmolLM2 through opsloop's local provider: the verdict is generated under its JSON
    schema (constrained decoding), so it is valid the first time and on the rubric's scale."""
    pytest.importorskip("llguidance")
    from opsloop.llm import get_provider

    rubric = Rubric(
        name="capital", criteria=["The response names the capital of France correctly."]
    )
    with get_provider("local:smollm2", cache_dir=model_cache) as smol:
        for output in ("Paris", "Berlin"):
            v = judge(
                smol, rubric, output=output, input="What is the capital of France?", max_retries=0
            )
            assert v.attempts == 1 and 1 <= v.score <= 5, v
            assert v.reasons and all(isinstance(r, str) and len(r) <= 300 for r in v.reasons)
