"""Structured tasks in evaluation: the json_valid and schema_valid metrics, and each row's
schema enforced on a real local model (SmolLM2) by constrained decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import opsloop
from opsloop.errors import InvalidArgument
from opsloop.evaluation.metrics import get_metric

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_json_and_schema_validity_metrics() -> None:
    jv, sv = get_metric("json_valid"), get_metric("schema_valid")
    preds = ['{"name": "Ada", "age": 36}', '{"name": "Ada", "age": -1}', "Ada, 36", {"name": "x"}]
    refs = [SCHEMA, json.dumps(SCHEMA), SCHEMA, SCHEMA]
    assert jv.compute(preds).per_example == [1.0, 1.0, 0.0, 1.0]
    res = sv.compute(preds, schema=refs)
    assert res.per_example == [1.0, 0.0, 0.0, 0.0] and res.value == pytest.approx(0.25)
    with pytest.raises(InvalidArgument, match="JSON schema as its input 'schema'"):
        sv(['{"a": 1}'], schema=["not a schema"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_each_rows_schema_is_enforced_on_a_local_model(
    client: opsloop.Client, model_cache: Path
) -> None:
    pytest.importorskip("llguidance")
    from opsloop.llm import example_schemas

    tasks = example_schemas()[:4]
    rows = [{"prompt": t["prompt"], "schema": json.dumps(t["schema"])} for t in tasks]
    v = client.datasets.create("structured", rows)
    common = {
        "metrics": ["json_valid", "schema_valid"],
        "prompt": "{{prompt}} Answer in JSON.",
        "cache_dir": model_cache,
    }
    constrained = client.evaluation.evaluate(
        "local:smollm2", f"structured@{v.version}",
        options={"schema_column": "schema", "max_tokens": 96}, **common,
    )  # fmt: skip
    assert constrained.metrics["schema_valid"] == 1.0, [e.output for e in constrained.examples]
    for ex, t in zip(constrained.examples, tasks, strict=True):
        assert json.loads(str(ex.output)) is not None, t["name"]
    free = client.evaluation.evaluate(
        "local:smollm2", f"structured@{v.version}", options={"max_tokens": 96}, **common
    )
    assert free.metrics["schema_valid"] < constrained.metrics["schema_valid"]
    with pytest.raises(InvalidArgument, match="not a column"):
        client.evaluation.evaluate(
            "local:smollm2", f"structured@{v.version}",
            options={"schema_column": "nope"}, **common,
        )  # fmt: skip
