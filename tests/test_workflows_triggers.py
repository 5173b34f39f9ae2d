"""Schedules and event triggers: idempotent inbox, the rooms' events, and a server killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop import Client
from opsloop.workflows import Workflows, parse_cron, step, workflow
from tests._procs import START_TIMEOUT_S, child_env, free_port, wait_until
from tests.test_registry import saved_model

SEEN: list[dict[str, Any]] = []


@step
def react(event: dict[str, Any], gate_file: str = "") -> str:
    if gate_file:  # the server-kill test: the first run blocks until the server is killed
        gate = Path(gate_file)
        (gate.parent / "started").write_text(str(os.getpid()))
        while gate.exists():
            time.sleep(0.05)
    SEEN.append(event)
    return f"{event['name']}:{event.get('model') or event.get('dataset') or event['key']}"


@workflow
def on_event(event: dict[str, Any] | None = None, gate_file: str = ""):
    return react(event or {}, gate_file)


def test_cron_next_times() -> None:
    base = 1767225600000  # 2026-01-01 00:00 UTC, a Thursday
    assert parse_cron("*/15 * * * *").next_after(base) == base + 15 * 60_000
    assert parse_cron("0 3 * * *").next_after(base) == base + 3 * 3_600_000
    assert parse_cron("30 2 1 * *").next_after(base) == base + 9_000_000
    assert (
        parse_cron("30 2 1 * *").next_after(base + 9_000_000) == base + 31 * 86_400_000 + 9_000_000
    )
    assert parse_cron("0 0 * * 1").next_after(base) == base + 4 * 86_400_000  # the Monday


def test_events_from_the_rooms_start_runs_once(client: Client, tmp_path: Path) -> None:
    wf = Workflows(client)
    SEEN.clear()
    wf.on("alias", on_event, "registry.alias_moved", match={"alias": "champion"})
    wf.on("versions", on_event, "registry.version_created")
    wf.on("data", on_event, "datasets.version_created")
    wf.on("fb", on_event, "feedback.created", every=3)
    wf.on("alerts", on_event, "monitoring.alert")
    wf.schedule("yearly", on_event, "0 0 1 1 *")

    v = client.registry.register("churn", saved_model(tmp_path))
    client.registry.set_alias("churn", "champion", v.version)
    client.registry.set_alias("churn", "staging", v.version)  # does not match
    client.datasets.create("rows", [{"a": 1}, {"a": 2}])
    client.feedback.define_score("ok", "boolean")
    for i in range(7):
        client.feedback.annotate("ok", True, trace_id=f"{i:032x}")
    assert wf.emit("monitoring.alert", "alert-1", {"monitor": "drift"}) == 1
    assert wf.emit("monitoring.alert", "alert-1", {"monitor": "drift"}) == 0  # redelivered

    assert wf.dispatch() == 6  # alias, version, dataset, 2 x every-3 feedback, alert
    assert sorted(e["name"] for e in SEEN) == [
        "datasets.version_created",
        "feedback.created",
        "feedback.created",
        "monitoring.alert",
        "registry.alias_moved",
        "registry.version_created",
    ]
    assert next(e for e in SEEN if e["name"] == "registry.alias_moved")["alias"] == "champion"
    assert wf.dispatch() == 0  # polled again: nothing new, nothing run twice
    done = [e for e in wf.events() if e.status == "done"]
    assert len(done) == 6 and all(e.run_id for e in done)
    alert = next(e for e in done if e.event == "monitoring.alert")
    run = client.get_run(alert.run_id or "")
    assert run.tags["opsloop.workflow.trigger"] == f"alerts:{alert.id}"
    assert len([e for e in wf.events(trigger="fb") if e.status == "counted"]) == 5
    # a schedule fires once per firing time, at that time
    svc: Any = wf._backend.triggers
    t = next(t for t in wf.triggers() if t.name == "yearly")
    assert svc.fire_schedules(now=t.next_at) == 1 and svc.fire_schedules(now=t.next_at) == 0
    assert wf.dispatch() == 1 and len(SEEN) == 7


def _server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = child_env(
        OPSLOOP_WORKFLOWS_INTERVAL="0.2",
        OPSLOOP_WORKFLOWS_LEASE="1.5",
        PYTHONPATH=os.pathsep.join(str(Path(p).resolve()) for p in sys.path if p),
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsloop.cli",
            "server",
            "--home",
            str(home),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _events(url: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/workflows/events", timeout=5)
    r.raise_for_status()
    return list(r.json()["events"])


@pytest.mark.slow
def test_event_survives_a_server_killed_mid_run(home: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.write_text("")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Client(home=home) as client:
        Workflows(client).on("alerts", on_event, "monitoring.alert", {"gate_file": str(gate)})
    proc = _server(home, port)
    try:
        wait_until(lambda: proc.poll() is None and _up(url), START_TIMEOUT_S, "server")
        body = {"event": "monitoring.alert", "key": "a-1", "payload": {"monitor": "drift"}}
        assert httpx.post(f"{url}/api/v1/workflows/events", json=body).json()["recorded"] == 1
        wait_until(lambda: (tmp_path / "started").exists(), 30, "the run to start")
        started = wait_until(lambda: _events(url)[0]["run_id"], 10, "the run id recorded")
        proc.send_signal(signal.SIGKILL)  # mid-run: no cleanup at all
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    gate.unlink()  # the resumed run will not block
    proc = _server(home, port)
    try:
        wait_until(lambda: proc.poll() is None and _up(url), START_TIMEOUT_S, "server again")
        ev = wait_until(
            lambda: next((e for e in _events(url) if e["status"] == "done"), None), 30, "done"
        )
        assert ev["run_id"] == started and ev["attempts"] == 2  # resumed, not started again
        # the same event delivered again is not acted on again
        body = {"event": "monitoring.alert", "key": "a-1", "payload": {"monitor": "drift"}}
        assert httpx.post(f"{url}/api/v1/workflows/events", json=body).json()["recorded"] == 0
        runs = httpx.get(f"{url}/api/v1/workflows/runs").json()["runs"]
        assert [r["id"] for r in runs] == [started] and runs[0]["status"] == "FINISHED"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
