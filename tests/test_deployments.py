"""Deployments: model servers record themselves, heartbeat, show ``lost`` when silent, and stop.

Real parts: the service over SQLite, the REST API on a live server with the
remote SDK, a real ``opsloop serve`` process, and the quickstart's in-thread
model server following an alias move.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop
from opsloop.deployments import Deployments, DeploymentService
from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.registry import Registry
from opsloop.settings import Settings
from tests._procs import child_env, free_port, wait_until
from tests.conftest import live_server

REG = {
    "name": "models:/m@champion",
    "model_uri": "models:/m/1",
    "model_name": "m",
    "version": 1,
    "alias": "champion",
    "url": "http://127.0.0.1:9",
    "host": "box",
    "pid": 123,
    "flavor": "sklearn",
}


def _register_model(settings: Settings, tmp: Path, versions: int = 1) -> None:
    """``m`` with ``versions`` logistic regressions and ``champion`` on version 1."""
    from sklearn.linear_model import LogisticRegression

    from opsloop.registry.flavors import save_sklearn

    with opsloop.Client(settings=settings) as c:
        reg = Registry(c)
        for v in range(1, versions + 1):
            X = [[0.0, float(v)], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
            est = LogisticRegression().fit(X, [0, 1, 0, 1])
            folder = save_sklearn(
                est, tmp / f"m{v}", input_example=[{"a": 0.0, "b": 1.0}], overwrite=True
            )
            reg.register("m", folder)
        reg.set_alias("m", "champion", 1)


def test_service_register_heartbeat_lost_and_stop(home: Path) -> None:
    with opsloop.Client(home=home) as c:
        db: Any = c.context.database
        svc = DeploymentService(db, lost_after_s=0.3)
        d = svc.register(**REG)
        assert d.status == "running" and d.version == 1 and d.stopped_at is None
        time.sleep(0.05)
        beat = svc.heartbeat(d.id, version=2, model_uri="models:/m/2")
        assert beat.last_heartbeat_at > d.last_heartbeat_at and beat.version == 2
        assert beat.model_uri == "models:/m/2"
        time.sleep(0.4)
        # Silent past the window: shown lost (the stored status stays running).
        assert svc.get(d.id).status == "lost"
        assert [x.id for x in svc.list(status="lost")] == [d.id]
        assert svc.list(status="running") == []
        assert svc.heartbeat(d.id).status == "running"
        stopped = svc.stop(d.id)
        assert stopped.status == "stopped" and stopped.stopped_at is not None
        # A stopped server neither heartbeats nor stops again differently.
        with pytest.raises(Conflict):
            svc.heartbeat(d.id)
        assert svc.stop(d.id, failed=True).status == "stopped"
        with pytest.raises(NotFound):
            svc.get("nope")
        with pytest.raises(InvalidArgument):
            svc.register(**{**REG, "url": ""})
        with pytest.raises(InvalidArgument):
            svc.list(status="sleeping")
        # A failed stop is recorded as failed; the SDK embedded sees the same rows.
        f = svc.register(**{**REG, "name": "models:/m/1", "alias": None})
        assert svc.stop(f.id, failed=True).status == "failed"
        listed = Deployments(c).list()
        assert [x.id for x in listed] == [f.id, d.id]


def test_rest_api_and_remote_sdk_behave_like_embedded(home: Path) -> None:
    with live_server(Settings(home=home)) as srv:
        with opsloop.Client(srv.url) as remote:
            deps = Deployments(remote)
            d = deps.register(**REG)
            assert deps.get(d.id) == d
            assert deps.heartbeat(d.id, version=3).version == 3
            assert [x.id for x in deps.list(model_name="m")] == [d.id]
            assert deps.list(model_name="other") == []
            assert deps.stop(d.id).status == "stopped"
            with pytest.raises(Conflict):
                deps.heartbeat(d.id)
            with pytest.raises(NotFound):
                deps.get("missing")
        r = httpx.post(f"{srv.url}/api/v1/deployments", json={**REG, "version": 0})
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        # A running one whose heartbeat is stale reads lost over the API too.
        from opsloop.deployments._backend import deployment_service

        state = srv.app.state.opsloop
        state.provide(deployment_service, DeploymentService(state.database, lost_after_s=0.2))
        made = httpx.post(f"{srv.url}/api/v1/deployments", json=REG).json()
        assert made["status"] == "running"
        time.sleep(0.3)
        listed = httpx.get(f"{srv.url}/api/v1/deployments").json()["deployments"]
        assert {x["id"]: x["status"] for x in listed}[made["id"]] == "lost"
        hb = httpx.post(f"{srv.url}/api/v1/deployments/{made['id']}/heartbeat")
        assert hb.status_code == 200 and hb.json()["status"] == "running"


def test_in_thread_server_records_itself_and_follows_the_alias(tmp_path: Path) -> None:
    from opsloop.quickstart._serve_model import serve_model_in_thread

    settings = Settings(home=tmp_path / "home")
    _register_model(settings, tmp_path, versions=2)
    port = free_port()
    with serve_model_in_thread(
        "models:/m@champion", settings, port=port, heartbeat_interval_s=0.1, poll_interval_s=0.1
    ) as url:
        assert url == f"http://127.0.0.1:{port}"
        r = httpx.post(f"{url}/v1/predict", json={"records": [{"a": 1.0, "b": 0.0}]})
        assert r.status_code == 200, r.text
        with opsloop.Client(settings=settings) as c:
            deps = Deployments(c)
            (d,) = deps.list()
            assert (d.status, d.version, d.alias, d.url) == ("running", 1, "champion", url)
            Registry(c).set_alias("m", "champion", 2)
            wait_until(lambda: deps.get(d.id).version == 2, 20, "the heartbeat to report v2")
            assert deps.get(d.id).model_uri == "models:/m/2"
    with opsloop.Client(settings=settings) as c:
        final = Deployments(c).get(d.id)
    assert final.status == "stopped" and final.stopped_at is not None


def test_recording_failures_never_break_serving(tmp_path: Path) -> None:
    from opsloop.deployments import DeploymentRecorder

    # No such model: registering the deployment fails, the recorder only warns.
    rec = DeploymentRecorder(
        "models:/absent@x", Settings(home=tmp_path / "h"), url="http://127.0.0.1:1"
    )
    with rec:
        assert rec.deployment is None
    assert rec.deployment is None


@pytest.mark.slow
def test_opsloop_serve_registers_then_stops_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    _register_model(settings, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "opsloop.cli", "serve", "models:/m@champion"),
            *("--home", str(home), "--port", str(port), "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:

        def ready() -> bool:
            assert proc.poll() is None, proc.communicate()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/ready", timeout=2).status_code == 200
            return False

        wait_until(ready, 90, "opsloop serve to be ready")
        with opsloop.Client(settings=settings) as c:
            (d,) = Deployments(c).list()
        assert (d.status, d.url, d.version, d.model_name) == ("running", url, 1, "m")
        assert d.pid == proc.pid and d.workers == 1
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    with opsloop.Client(settings=settings) as c:
        after = Deployments(c).get(d.id)
    assert after.status == "stopped" and after.stopped_at is not None
