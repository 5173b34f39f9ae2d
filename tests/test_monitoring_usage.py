"""The LLM gateway's usage log in the live metrics: cost, cache hits and guardrail hits per
route and model over time, read by the monitoring room through the ``monitoring.usage`` hook
(the two rooms never import each other), on the SDK (embedded, and remote on a live server),
REST, ``/metrics``, and the CLI.

The usage rows are written the way the gateway app writes them (``GatewayService.record_usage``
with the rows its request handler makes); the served-model gateway tests
(``test_gateway_llm.py``) check that real requests produce such rows."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument
from opsloop.gateway import GatewayService
from opsloop.store import Database
from tests.conftest import backend_env

BUCKET_MS = 300_000


def _row(ts: int, route: str, model: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "ts": ts,
        "key_id": None,
        "team": None,
        "route": route,
        "model": model,
        "endpoint": "chat",
        "status": kw.get("status", 200),
        "code": kw.get("code"),
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_micros": kw.get("cost", 1500),
        "latency_ms": 20.0,
        "overhead_ms": 0.5,
        "cache": kw.get("cache"),
        "decisions": kw.get("decisions", []),
    }


def _record(db_url: str, now: int) -> tuple[int, int]:
    """Traffic on two routes in two buckets: just now, and 301 s before (always an earlier
    bucket); returns both buckets' starts."""
    new = now - 20
    old = new - 301_000
    rows = [
        _row(old + 1, "chat", "small-llm", cache="miss"),
        _row(old + 2, "chat", "small-llm", cache="hit", cost=0),
        _row(
            old + 3,
            "chat",
            "small-llm",
            decisions=["input.pii:redact:email", "cache:miss"],
            cache="miss",
        ),
        _row(old + 4, "chat", "big-llm", cost=9000),
        _row(
            new + 1,
            "chat",
            "small-llm",
            status=400,
            code="GUARDRAIL_BLOCKED",
            cost=0,
            decisions=["input.injection:block:ignore_previous"],
        ),
        _row(new + 2, "chat", "small-llm", cache="hit", cost=0),
        _row(new + 3, "summaries", "big-llm", decisions=["output.grounded:flag:0.21"]),
        _row(new + 4, "summaries", "big-llm", decisions=["answered_by:big", "cache:miss"]),
    ]
    GatewayService(Database(db_url)).record_usage(rows)
    return old - old % BUCKET_MS, new - new % BUCKET_MS


@pytest.mark.parametrize(
    "name",
    [
        "embedded-sqlite",
        "remote-sqlite",
        pytest.param("embedded-postgres", marks=pytest.mark.postgres),
    ],
)
def test_gateway_usage_joins_the_live_metrics(name: str, tmp_path: Path) -> None:
    with backend_env(name, tmp_path) as env:
        now = int(time.time() * 1000)
        old, new = _record(env.db_url, now)
        mon = env.client.monitoring
        points = mon.usage(since=old, until=now + 1, bucket_s=300)
        cells = {(p["t"], p["route"], p["model"]): p for p in points}
        assert set(cells) == {
            (old, "chat", "big-llm"),
            (old, "chat", "small-llm"),
            (new, "chat", "small-llm"),
            (new, "summaries", "big-llm"),
        }
        small = cells[(old, "chat", "small-llm")]
        assert (small["requests"], small["cache_hits"], small["cache_misses"]) == (3, 1, 2)
        assert small["cost"] == pytest.approx(0.003) and small["cache_hit_rate"] == pytest.approx(
            1 / 3
        )
        assert small["guardrail_hits"] == 1 and small["guardrail_blocks"] == 0
        assert small["input_tokens"] == 30 and small["source"] == "gateway"
        blocked = cells[(new, "chat", "small-llm")]
        assert (blocked["errors"], blocked["guardrail_hits"], blocked["guardrail_blocks"]) == (
            1,
            1,
            1,
        )
        flagged = cells[(new, "summaries", "big-llm")]
        assert flagged["guardrail_hits"] == 1 and flagged["cache_hit_rate"] is None
        # per model only, one route only
        by_model = mon.usage(since=old, until=now + 1, bucket_s=600, by=["model"])
        assert all("route" not in p for p in by_model)
        assert sum(p["cost"] for p in by_model if p["model"] == "big-llm") == pytest.approx(0.012)
        only = mon.usage(route="summaries", since=old, until=now + 1, bucket_s=3600, by=[])
        assert sum(p["requests"] for p in only) == 2 and all(p["cost"] > 0 for p in only)
        with pytest.raises(InvalidArgument):
            mon.usage(by=["team"])
        if env.server is not None:
            with httpx.Client(base_url=env.server.url) as h:
                bad = h.get("/api/v1/monitoring/usage", params={"bucket_s": 90})
                assert bad.status_code == 400 and "error" in bad.json()
                fams = {f.name: f for f in text_string_to_metric_families(h.get("/metrics").text)}
                # the last 5 minutes: the rows made just now, not those 301 s before
                cost = {
                    (s.labels["route"], s.labels["model"]): s.value
                    for s in fams["opsloop_gateway_window_cost"].samples
                }
                assert cost[("summaries", "big-llm")] == pytest.approx(0.003)
                hits = fams["opsloop_gateway_window_guardrail_hits"].samples
                assert sum(s.value for s in hits) == 2
                assert ("chat", "big-llm") not in cost
        elif name == "embedded-sqlite":
            from opsloop.cli import app

            res = CliRunner().invoke(
                app,
                [
                    "--home",
                    str(tmp_path / "home"),
                    "monitoring",
                    "usage",
                    "--minutes",
                    "20",
                    "--route",
                    "chat",
                    "--json",
                ],
            )
            assert res.exit_code == 0, res.output
            assert {p["route"] for p in json.loads(res.output)} == {"chat"}
            table = CliRunner().invoke(
                app,
                ["--home", str(tmp_path / "home"), "monitoring", "usage", "--minutes", "20"],
                env={"COLUMNS": "200"},
            )
            assert table.exit_code == 0 and "summaries" in table.output
