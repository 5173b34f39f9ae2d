"""Judge-score and feedback trends: real traces (the tracing SDK, a real prompt version's URI
on the span as a pipeline's prompt step puts it, real model calls recorded), real annotations
(the feedback room), rolled up per time bucket, prompt version and model through the SDK, the
REST API of a live server, and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from opsloop import Client
from opsloop.errors import InvalidArgument
from tests.conftest import backend_env

HOUR_MS = 3_600_000


def _answer(c: Client, prompt_uri: str, model: str, hours_ago: float) -> str:
    """One traced answer: the root span carries the prompt version, a child the model call."""
    start = time.time() - hours_ago * 3600
    with c.tracing.start_trace("qa", inputs={"q": "?"}) as root:
        root.set_attribute("opsloop.prompt.uri", prompt_uri)
        c.tracing.record_llm_call(
            model=model,
            output="answer",
            input_tokens=5,
            output_tokens=2,
            start_time=start,
            end_time=start + 0.5,
        )
        root.set_output("answer")
        trace_id = root.trace_id
    return str(trace_id)


def _populate(c: Client) -> int:
    """Two prompt versions x two models; judged and thumbed. Returns the older bucket's start."""
    v1 = c.prompts.create("qa", "Answer: {{ q }}")
    v2 = c.prompts.create("qa", "Answer briefly and cite the source: {{ q }}")
    c.feedback.define_score("judge", "numeric", min_value=0, max_value=1)
    plan = [  # (prompt, model, hours ago, judge, thumbs)
        (v1.uri, "small-llm", 2.5, 0.2, False),
        (v1.uri, "small-llm", 2.5, 0.4, True),
        (v1.uri, "big-llm", 2.5, 0.6, None),
        (v2.uri, "small-llm", 0.5, 0.8, True),
        (v2.uri, "small-llm", 0.5, 1.0, True),
        (v2.uri, "big-llm", 0.5, 0.9, False),
    ]
    ids = [_answer(c, p, m, h) for p, m, h, _, _ in plan]
    c.tracing.flush()
    for tid, (_, _, _, judge, thumbs) in zip(ids, plan, strict=True):
        c.feedback.annotate("judge", judge, trace_id=tid, source="llm_judge")
        if thumbs is not None:
            c.feedback.annotate("thumbs", thumbs, trace_id=tid)
    now = int(time.time() * 1000)
    return (now - int(2.5 * HOUR_MS)) // HOUR_MS * HOUR_MS


@pytest.mark.parametrize("name", ["embedded-sqlite", "remote-sqlite"])
def test_score_trends_per_prompt_version_and_model(name: str, tmp_path: Path) -> None:
    with backend_env(name, tmp_path) as env:
        c = env.client
        old = _populate(c)
        mon = c.monitoring
        points = mon.scores("judge", since=old, bucket_s=3600)
        cells = {(p["t"] == old, p["prompt"], p["model"]): p for p in points}
        assert cells[(True, "qa@1", "small-llm")]["count"] == 2
        assert cells[(True, "qa@1", "small-llm")]["mean"] == pytest.approx(0.3)
        assert cells[(True, "qa@1", "big-llm")]["mean"] == pytest.approx(0.6)
        assert cells[(False, "qa@2", "small-llm")]["mean"] == pytest.approx(0.9)
        assert cells[(False, "qa@2", "big-llm")]["count"] == 1
        assert len(points) == 4
        by_prompt = mon.scores("judge", since=old, bucket_s=86_400 * 2, by=["prompt"])
        assert {p["prompt"]: (p["count"], round(p["mean"], 3)) for p in by_prompt} == {
            "qa@1": (3, 0.4),
            "qa@2": (3, 0.9),
        }
        assert all("model" not in p for p in by_prompt)
        thumbs = mon.scores("thumbs", since=old, bucket_s=86_400 * 2, by=["model"])
        assert {p["model"]: (p["count"], p["mean"]) for p in thumbs} == {
            "big-llm": (1, 0.0),
            "small-llm": (4, 0.75),
        }
        assert mon.scores("judge", since=old, source="human") == []
        # the window is on the trace's start: only the recent traces
        recent = mon.scores("judge", since=old + 2 * HOUR_MS, by=[])
        assert [(p["count"], round(p["mean"], 3)) for p in recent] == [(3, 0.9)]
        with pytest.raises(InvalidArgument):
            mon.scores("judge", by=["colour"])
        assert mon.scores("never_given") == []
        with pytest.raises(InvalidArgument, match="must start with a letter"):
            mon.scores("no-such-score")
        if env.server is not None:
            with httpx.Client(base_url=env.server.url) as h:
                r = h.get("/api/v1/monitoring/scores", params={"name": "judge", "by": "x"})
                assert r.status_code == 400 and "error" in r.json()
                r = h.get("/api/v1/monitoring/scores", params={"name": "judge", "bucket_s": 1})
                assert r.status_code == 400
        else:
            from opsloop.cli import app

            res = CliRunner().invoke(
                app,
                [
                    "--home",
                    str(tmp_path / "home"),
                    "monitoring",
                    "scores",
                    "judge",
                    "--hours",
                    "4",
                    "--by",
                    "prompt",
                    "--json",
                ],
            )
            assert res.exit_code == 0, res.output
            rows = json.loads(res.output)
            assert {(r["prompt"], r["count"]) for r in rows} == {("qa@1", 3), ("qa@2", 3)}
            table = CliRunner().invoke(
                app,
                ["--home", str(tmp_path / "home"), "monitoring", "scores", "judge"],
                env={"COLUMNS": "200"},
            )
            assert table.exit_code == 0 and "qa@2" in table.output and "small-llm" in table.output
