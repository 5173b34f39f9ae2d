"""Monitoring end to end: a served model's predictions logged off the request path, labels
joined later, the log exported as a dataset version, Prometheus /metrics read by the real
parser, monitors raising deduplicated alerts to an HMAC-signed local webhook and to the
``monitoring.alert`` event."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opsloop import Client
from opsloop.core import Room
from opsloop.monitoring import ALERT_EVENT, Monitoring, verify
from opsloop.registry.flavors import save_pyfunc
from opsloop.settings import Settings
from tests.conftest import BackendEnv, live_server
from tests.test_serving import ThreadServer, answer_model

RECEIVED: list[Any] = []


def on_alert(alert: Any) -> None:
    """A subscriber of the alert event (declared below through a real room declaration)."""
    RECEIVED.append(alert)


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_served_predictions_are_logged_labelled_exported_and_counted(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", flush_interval_s=60.0)
    # no signature: free-form records (a text column with PII)
    folder = save_pyfunc(tmp_path / "m", "tests.test_serving:AnswerModel", config={"answer": "yes"})
    with (
        ThreadServer(folder, settings, deployment="churn") as srv,
        httpx.Client(base_url=srv.url) as c,
    ):
        srv.wait_ready()
        ids = []
        for i in range(6):
            r = c.post(
                "/v1/predict",
                json={"records": [{"x": float(i)}, {"x": 10.0 + i, "who": "bob@example.com"}]},
            )
            assert r.status_code == 200
            ids.append(r.headers["x-opsloop-response-id"])
        assert c.post("/v1/predict", json={"records": "nope"}).status_code == 400
        fams = _families(c.get("/metrics").text)
        reqs = {
            s.labels["status"]: s.value
            for s in fams["opsloop_requests"].samples
            if s.name == "opsloop_requests_total"
        }
        assert reqs == {"200": 6.0, "400": 1.0}
        lat = [
            s for s in fams["opsloop_request_latency_seconds"].samples if s.name.endswith("_count")
        ]
        assert sum(s.value for s in lat) == 7.0
        assert all(s.labels["deployment"] == "churn" for s in lat)
    # the server closed: its logger flushed
    client = Client(settings=settings)
    try:
        mon = client.monitoring
        rows = mon.predictions("churn")
        assert len(rows) == 12 and {r["request_id"] for r in rows} == set(ids)
        masked = [r for r in rows if "who" in r["inputs"]]
        assert masked and all(r["inputs"]["who"] == "[EMAIL]" for r in masked)
        assert all(r["output"].startswith("yes:") and r["latency_ms"] > 0 for r in rows)
        # labels arrive later and join by request id (and row)
        mon.label(ids[0], "yes:0.0")
        mon.labels([{"request_id": ids[1], "row_index": 1, "label": "no"}])
        labelled = mon.predictions("churn", labelled=True)
        assert {(r["request_id"], r["row_index"], r["label"]) for r in labelled} == {
            (ids[0], 0, "yes:0.0"),
            (ids[1], 1, "no"),
        }
        s = mon.summary("churn", since=int(time.time() * 1000) - 120_000)
        assert s["requests"] == 7 and s["errors"] == 0 and s["rows"] == 12
        assert s["latency_p99"] is not None
        v = mon.export("churn", "churn-log")
        table = client.datasets.to_arrow(v)
        assert table.num_rows == 12
        assert {"x", "prediction", "label", "request_id", "model_version"} <= set(
            table.column_names
        )
        assert sorted(x for x in table.column("label").to_pylist() if x) == ["no", "yes:0.0"]
    finally:
        client.close()


def test_sampling_logs_a_share_and_monitoring_off_adds_nothing(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", flush_interval_s=60.0)
    folder = answer_model(tmp_path / "m", "a")
    with ThreadServer(folder, settings, deployment="s", log_sample_ratio=0.0) as srv:
        srv.wait_ready()
        for _ in range(5):
            assert httpx.post(f"{srv.url}/v1/predict", json={"records": [{"x": 1}]}).is_success
    with ThreadServer(folder, settings, deployment="off", monitoring=False) as srv:
        srv.wait_ready()
        assert httpx.post(f"{srv.url}/v1/predict", json={"records": [{"x": 1}]}).is_success
        assert httpx.get(f"{srv.url}/metrics").status_code == 404
    with Client(settings=settings) as client:
        assert client.monitoring.predictions("s") == []
        assert client.monitoring.summary("s")["requests"] == 5  # metrics count every request
        assert client.monitoring.summary("off")["requests"] == 0


class _Receiver(http.server.BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a: Any) -> None:
        pass


def test_monitors_alert_once_cool_down_resolve_sign_and_publish(
    backend: BackendEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opsloop.rooms

    rooms = opsloop.rooms.declarations()
    sub = Room(name="subscriber", hooks=((ALERT_EVENT, "tests.test_monitoring:on_alert"),))
    monkeypatch.setattr(opsloop.rooms, "declarations", lambda: (*rooms, sub))
    RECEIVED.clear()
    _Receiver.got = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    mon: Monitoring = backend.client.monitoring
    try:
        mon.create_monitor(
            "errors",
            deployment="api",
            metric="error_rate",
            op=">",
            threshold=0.1,
            interval_s=60,
            window_s=60,
            cooldown_s=600,
            min_rows=10,
            webhook_url=f"http://127.0.0.1:{httpd.server_port}/hook",
            webhook_secret="s3cret",
        )
        m = mon.monitor("errors")
        assert m.has_secret and "webhook_secret" not in m.model_dump()
        t0 = (int(time.time()) // 60 - 10) * 60_000  # ten minutes ago, on a minute

        def minute(k: int, errors: int) -> None:
            mon.ingest(
                [],
                [
                    {
                        "minute": t0 + k * 60_000,
                        "deployment": "api",
                        "version": "1",
                        "route": "/v1/predict",
                        "requests": 20,
                        "errors": errors,
                        "b2": 20,
                    }
                ],
            )

        def check(k: int) -> Any:  # the check made 5 s after minute k's window closed
            return mon.run_monitor("errors", now=t0 + (k + 1) * 60_000 + 5_000)

        minute(0, 10)
        r = check(0)
        assert r.breached and r.value == pytest.approx(0.5) and r.alert.change == "opened"
        minute(1, 8)
        assert check(1).alert is None  # still firing, inside the cooldown: no new notice
        minute(2, 0)
        r = check(2)
        assert not r.breached and r.alert.change == "resolved"
        alerts = mon.alerts(monitor="errors")
        assert [a.state for a in alerts] == ["resolved"] and alerts[0].notifications == 2
        if not backend.remote:  # the event runs where the monitor runs (the server, remotely)
            assert [a.change for a in RECEIVED] == ["opened", "resolved"]
        deadline = time.time() + 10
        while len(_Receiver.got) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(_Receiver.got) == 2
        for headers, body in _Receiver.got:
            h = {k.lower(): v for k, v in headers.items()}
            assert verify("s3cret", h["x-opsloop-timestamp"], body, h["x-opsloop-signature"])
            assert not verify("wrong", h["x-opsloop-timestamp"], body, h["x-opsloop-signature"])
        assert [json.loads(b)["alert"]["change"] for _, b in _Receiver.got] == [
            "opened",
            "resolved",
        ]
    finally:
        httpd.shutdown()


def test_server_metrics_endpoint_and_bad_input(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with live_server(settings) as srv, httpx.Client(base_url=srv.url) as c:
        now = int(time.time() * 1000)
        ok = c.post(
            "/api/v1/monitoring/ingest",
            json={
                "rollups": [
                    {
                        "minute": now,
                        "deployment": "d",
                        "version": "2",
                        "route": "/v1/predict",
                        "requests": 4,
                        "errors": 1,
                        "b1": 4,
                    }
                ]
            },
        )
        assert ok.status_code == 200
        fams = _families(c.get("/metrics").text)
        req = fams["opsloop_window_requests"].samples[0]
        assert req.value == 4.0 and req.labels == {
            "deployment": "d",
            "version": "2",
            "route": "/v1/predict",
        }
        bad = c.post("/api/v1/monitoring/ingest", json={"rollups": [{"minute": -1}]})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
        bad = c.post("/api/v1/monitoring/labels", json={"labels": [{"request_id": "x y"}]})
        assert bad.status_code == 400
        assert (
            c.post(
                "/api/v1/monitoring/monitors",
                json={"name": "m", "deployment": "d", "metric": "nope"},
            ).status_code
            == 400
        )
        assert (
            c.get("/api/v1/monitoring/summary", params={"deployment": "d"}).json()["requests"] == 4
        )
        # The server's scheduler (ticking every second) runs a due monitor by itself.
        last_minute = now // 60_000 * 60_000 - 60_000
        c.post(
            "/api/v1/monitoring/ingest",
            json={
                "rollups": [{"minute": last_minute, "deployment": "live", "requests": 3, "b0": 3}]
            },
        )
        created = c.post(
            "/api/v1/monitoring/monitors",
            json={
                "name": "live",
                "deployment": "live",
                "metric": "requests",
                "threshold": 0,
                "interval_s": 1,
                "window_s": 180,
                "min_rows": 1,
            },
        )
        assert created.status_code == 201
        t0 = time.time()
        while time.time() - t0 < 30:
            firing = c.get("/api/v1/monitoring/alerts", params={"state": "firing"}).json()
            if firing["alerts"]:
                break
            time.sleep(0.1)
        assert firing["alerts"][0]["monitor"] == "live" and firing["alerts"][0]["value"] == 3
        # its window closed 5 s (the grace) before the check: far inside the 60 s
        assert time.time() - t0 < 10


def test_performance_is_estimated_before_labels_and_realised_as_they_join(client: Client) -> None:
    mon = client.monitoring
    hour = (int(time.time()) // 3600 - 2) * 3_600_000
    rows = [
        {
            "request_id": f"p{i}",
            "deployment": "clf",
            "route": "/v1/predict_proba",
            "inputs": {"x": i},
            "output": [0.8, 0.2] if i % 2 else [0.3, 0.7],
            "latency_ms": 1.0,
            "ts": hour + (i // 10) * 3_600_000 + i,
        }
        for i in range(20)
    ]
    mon.ingest(rows)
    first, second = mon.performance("clf", since=hour, bucket_s=3600)
    assert first["estimated_accuracy"] == pytest.approx(0.75) and first["labelled"] == 0
    assert first["realised_accuracy"] is None
    # labels (class 0) arrive for the first hour: the odd rows (top class 0) are right
    mon.labels([{"request_id": f"p{i}", "label": 0} for i in range(10)])
    first, second = mon.performance("clf", since=hour, bucket_s=3600)
    assert first["labelled"] == 10 and first["realised_accuracy"] == pytest.approx(0.5)
    assert second["realised_accuracy"] is None and second["estimated_accuracy"] is not None


def test_feedback_rate_and_score_per_model_version(client: Client) -> None:
    mon = client.monitoring
    hour = (int(time.time()) // 3600 - 1) * 3_600_000
    mon.ingest(
        [
            {
                "request_id": f"f{i}",
                "deployment": "bot",
                "version": "1" if i < 6 else "2",
                "route": "/v1/predict",
                "inputs": {"q": i},
                "output": "a",
                "ts": hour + i,
            }
            for i in range(10)
        ]
    )
    for i, up in ((0, True), (1, False), (2, True), (7, True)):
        client.feedback.annotate("thumbs", up, prediction_id=f"f{i}")
    v1, v2 = mon.feedback("bot", since=hour, bucket_s=3600)
    assert (v1["version"], v1["requests"], v1["feedback"]) == ("1", 6, 3)
    assert v1["feedback_rate"] == pytest.approx(0.5) and v1["mean_score"] == pytest.approx(2 / 3)
    assert (v2["version"], v2["feedback_rate"], v2["mean_score"]) == ("2", 0.25, 1.0)
