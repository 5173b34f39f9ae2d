"""Retention: traces, prediction log rows and request bodies older than the policy go.

Real rows of every kind (traces with span bodies through the tracing room's
ingest, prediction rows and labels through the monitoring room's), on SQLite
and PostgreSQL; the run deletes in bounded batches, keeps what is young, and
records itself in the audit trail. A real server runs it on its own schedule,
and ``OPSLOOP_RETENTION_SCHEDULER=0`` keeps it off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsloop import Client
from opsloop.cli import app as cli
from opsloop.core import Context
from opsloop.governance._retention import start_retention
from opsloop.settings import Settings
from tests.conftest import fresh_pg_database, live_server

DAY_MS = 86_400_000


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _seed(c: Client, now: int) -> None:
    """Three ages of everything: 60 days, 3 days and 1 minute old."""
    ages = {"old": 60 * DAY_MS, "mid": 3 * DAY_MS, "new": 60_000}
    spans = []
    for i, (name, age) in enumerate(ages.items()):
        for j in range(3):  # three traces of each age, two spans each
            start_us = (now - age) * 1000 + j
            tid = f"{i + 1:02x}{j:030x}"
            for k in range(2):
                spans.append({
                    "trace_id": tid, "span_id": f"{k + 1:016x}", "name": name,
                    "start_us": start_us, "end_us": start_us + 500,
                    "inputs": {"prompt": f"{name} secret question"},
                    "outputs": {"text": f"{name} answer"},
                })  # fmt: skip
    c.tracing.ingest(spans)
    rows = [
        {"request_id": f"{name}-{j}", "row_index": 0, "deployment": "d", "model": "m",
         "inputs": {"x": j, "email": "a@b.co"}, "output": j, "ts": now - age}
        for name, age in ages.items() for j in range(3)
    ]  # fmt: skip
    c.monitoring.ingest(rows)
    c.monitoring.labels([{"request_id": r["request_id"], "label": 1} for r in rows])


def _counts(db: sa.Engine) -> dict[str, int]:
    q = {
        "traces": "SELECT COUNT(*) FROM traces",
        "spans": "SELECT COUNT(*) FROM spans",
        "span_bodies": "SELECT COUNT(*) FROM spans WHERE inputs IS NOT NULL",
        "predictions": "SELECT COUNT(*) FROM monitoring_predictions",
        "prediction_bodies": "SELECT COUNT(*) FROM monitoring_predictions WHERE inputs <> '{}'",
        "labels": "SELECT COUNT(*) FROM monitoring_labels",
    }
    with db.connect() as conn:
        return {k: int(conn.execute(sa.text(v)).scalar_one()) for k, v in q.items()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    with fresh_pg_database() if request.param == "postgres" else _nothing() as pg:
        yield pg


def test_a_run_deletes_old_rows_of_every_kind_in_bounded_batches(
    store: str | None, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=store,
        user="ops",
        retention_traces_days=30,
        retention_predictions_days=30,
        retention_bodies_days=1,
        retention_batch=2,
    )
    now = int(time.time() * 1000)
    with Client(settings=settings) as c:
        _seed(c, now)
        engine = c.context.database.engine
        # Labels are stamped when they arrive: age the old requests' labels as their rows.
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE monitoring_labels SET created_at = :t WHERE request_id LIKE 'old-%'"
                ),
                {"t": now - 60 * DAY_MS},
            )
        assert _counts(engine) == {
            "traces": 9, "spans": 18, "span_bodies": 18,
            "predictions": 9, "prediction_bodies": 9, "labels": 9,
        }  # fmt: skip
        report = c.governance.run_retention()
        assert _counts(engine) == {
            "traces": 6, "spans": 12, "span_bodies": 6,  # the 3-day-old bodies emptied too
            "predictions": 6, "prediction_bodies": 3, "labels": 6,
        }  # fmt: skip
        done = {(r.kind, r.hook.split(":")[1]): (r.rows, r.batches) for r in report.results}
        assert done == {
            ("traces", "purge_traces"): (3, 2),  # 3 rows in batches of 2: two transactions
            ("predictions", "purge_predictions"): (6, 4),  # 3 rows, then 3 labels
            ("bodies", "empty_span_bodies"): (6, 4),  # the 3-day-old traces' 6 spans
            ("bodies", "empty_prediction_bodies"): (3, 2),
        }
        kept = c.tracing.get_trace(f"02{0:030x}")
        assert {s.inputs for s in kept.spans} == {None} and kept.spans[0].end_us > 0
        young = c.tracing.get_trace(f"03{0:030x}")
        assert young.spans[0].inputs == {"prompt": "new secret question"}
        entry = c.governance.audit(actor="ops")[0]
        assert (entry.method, entry.route) == ("RETENTION", "retention.run")
        assert entry.response["results"][0]["rows"] == 3
        # A second run finds nothing, and records nothing.
        again = c.governance.run_retention()
        assert all(r.rows == 0 and r.batches == 1 for r in again.results)
        assert len(c.governance.audit(actor="ops")) == 1
        assert c.governance.verify_audit().ok


def test_the_server_runs_retention_on_its_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home", retention_traces_days=1, retention_interval_s=0.2)
    now = int(time.time() * 1000)
    with Client(settings=settings) as c:
        _seed(c, now)
    with live_server(settings) as srv:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = httpx.get(f"{srv.url}/api/v1/traces").json()["traces"]
            if len(listed) == 3:
                break
            time.sleep(0.1)
        assert sorted({t["name"] for t in listed}) == ["new"]
        policy = httpx.get(f"{srv.url}/api/v1/retention").json()
        assert policy["traces_days"] == 1 and policy["predictions_days"] is None
    # Switched off, or with no policy set, no thread starts.
    monkeypatch.setenv("OPSLOOP_RETENTION_SCHEDULER", "0")
    ctx = Context(settings)
    try:
        before = {t.name for t in threading.enumerate()}
        start_retention(ctx)()
        monkeypatch.delenv("OPSLOOP_RETENTION_SCHEDULER")
        start_retention(Context(Settings(home=tmp_path / "other")))()
        assert "opsloop-retention" not in {t.name for t in threading.enumerate()} - before
    finally:
        ctx.close()
    res = CliRunner().invoke(cli, ["retention", "show", "--home", str(tmp_path / "home")])
    assert res.exit_code == 0 and "predictions: kept forever" in res.output, res.output


@pytest.mark.parametrize("masking", [True, False])
def test_pii_is_masked_at_ingestion_per_server(masking: bool, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from opsloop.server import create_app

    patterns = ["pii"] if masking else []
    settings = Settings(home=tmp_path, trace_mask_patterns=patterns, pii_masking=masking)
    text = "mail ann@example.com or call +1 415 555 0100 from 10.1.2.3"
    span = {"trace_id": "c" * 32, "span_id": "d" * 16, "name": "chat", "start_us": 1,
            "end_us": 2, "inputs": {"prompt": text}}  # fmt: skip
    row = {"request_id": "r1", "deployment": "d", "inputs": {"note": text}, "output": text}
    with TestClient(create_app(settings)) as http:
        assert http.post("/api/v1/traces/batch", json={"spans": [span]}).status_code == 200
        assert (
            http.post("/api/v1/monitoring/ingest", json={"predictions": [row]}).status_code == 200
        )
        stored_span = http.get(f"/api/v1/traces/{'c' * 32}").json()["spans"][0]["inputs"]["prompt"]
        logged = http.get("/api/v1/monitoring/predictions", params={"deployment": "d"}).json()
    stored_row = logged["predictions"][0]
    if masking:
        for stored in (stored_span, stored_row["inputs"]["note"], stored_row["output"]):
            assert "ann@example.com" not in stored and "415" not in stored, stored
            assert "[EMAIL]" in stored and "[PHONE]" in stored and "[IP]" in stored, stored
    else:
        assert stored_span == text and stored_row["inputs"]["note"] == text
