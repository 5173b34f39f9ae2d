"""``opsloop serve --on ray``: the same model server as Ray Serve replicas on a real local Ray
cluster (started once for this module).

Checked: the predict routes and their micro-batching inside a replica, one deployment record
per replica, an alias move reaching both replicas while requests flow without a single
failure, graceful deletion marking the records stopped, and the CLI end to end with each
replica also answering on its own (direct) port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import opsloop
from opsloop.cli import app as cli_app
from opsloop.deployments import Deployments
from opsloop.registry import Registry
from opsloop.serving import RayOptions, ServeOptions, deploy_on_ray
from opsloop.settings import Settings
from tests._procs import child_env, free_port, wait_until

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TREE = "sklearn.tree._tree.Tree"
ROW = {"a": 1.0, "b": 0.0}


def _register(home: Path) -> Settings:
    """``forest`` v1 predicts 1 for ROW, v2 predicts 0; ``champion`` on v1."""
    from sklearn.ensemble import RandomForestClassifier

    from opsloop.registry.flavors import save_sklearn

    settings = Settings(home=home)
    X = [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]] * 4
    with opsloop.Client(settings=settings) as c:
        reg = Registry(c)
        for v, y in ((1, [0, 1, 0, 1] * 4), (2, [1, 0, 1, 0] * 4)):
            est = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
            folder = save_sklearn(est, home / f"v{v}", input_example=[{"a": 0.0, "b": 1.0}])
            reg.register("forest", folder)
        reg.set_alias("forest", "champion", 1)
    return settings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A local Ray instance with Serve on a free port; torn down with every process it started."""
    # Replicas and handles report their load every second (Ray's default: 10 s), so the
    # autoscaling test sees a scale-up within seconds.
    pushes = ("RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
              "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S")  # fmt: skip
    os.environ.update({"RAY_USAGE_STATS_ENABLED": "0", **dict.fromkeys(pushes, "1")})
    home = tmp_path_factory.mktemp("ray-home")
    settings = _register(home)
    info = ray.init(
        num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    port = free_port()
    try:
        yield {"settings": settings, "port": port, "address": info.address_info["gcs_address"]}
    finally:
        serve.shutdown()
        ray.shutdown()
        for key in ("RAY_USAGE_STATS_ENABLED", *pushes):
            os.environ.pop(key, None)


def _options(**kw: Any) -> ServeOptions:
    return ServeOptions(trusted_types=[TREE], poll_interval_s=0.3, monitoring=False, **kw)


def _running(settings: Settings) -> list[Any]:
    with opsloop.Client(settings=settings) as c:
        return Deployments(c.context).list(model_name="forest", status="running")


@pytest.mark.slow
def test_two_replicas_batch_record_and_hot_swap_an_alias_without_a_failed_request(
    cluster: dict[str, Any],
) -> None:
    settings, port = cluster["settings"], cluster["port"]
    url = deploy_on_ray(
        "models:/forest@champion",
        settings,
        _options(max_wait_ms=5.0),
        RayOptions(app_name="swap", replicas=2, replica_cpus=0.5),
        port=port,
    )
    assert url == f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as http:
        # The same routes as a local server, answered once every replica has loaded.
        r = http.post("/v1/predict", json={"inputs": [ROW]})
        assert r.status_code == 200 and r.json() == {"predictions": [1]}
        assert r.headers["x-opsloop-model-version"] == "1"
        assert http.post("/invocations", json={"dataframe_records": [ROW]}).json() == {
            "predictions": [1]
        }
        assert http.get("/v1/metadata").json()["flavor"] == "sklearn"
        bad = http.post("/v1/predict", json={"inputs": "nope"})
        assert bad.status_code == 400 and "error" in bad.json()

        # Each replica records itself as a deployment (its own pid), as local serving does.
        deps = wait_until(lambda: len(_running(settings)) == 2 and _running(settings), 30)
        assert {d.url for d in deps} == {url} and len({d.pid for d in deps}) == 2
        assert {d.version for d in deps} == {1} and os.getpid() not in {d.pid for d in deps}

        # Concurrent requests share batches inside a replica.
        with ThreadPoolExecutor(32) as pool:
            answers = list(
                pool.map(lambda _: http.post("/v1/predict", json={"inputs": [ROW]}), range(256))
            )
        assert all(a.status_code == 200 for a in answers)
        hist: dict[int, dict[str, int]] = {}
        for _ in range(20):
            s = http.get("/v1/stats").json()
            hist[s["pid"]] = s["predict"]["batch_rows_histogram"]
        assert any(int(k) > 1 for h in hist.values() for k in h), hist

        # Move the alias while requests flow: both replicas swap, none fails.
        stop = threading.Event()
        seen: list[tuple[int, str]] = []

        def hammer() -> None:
            with httpx.Client(base_url=url, timeout=30) as h:
                while not stop.is_set():
                    a = h.post("/v1/predict", json={"inputs": [ROW]})
                    seen.append((a.status_code, a.headers.get("x-opsloop-model-version", "")))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            with opsloop.Client(settings=settings) as c:
                Registry(c).set_alias("forest", "champion", 2)

            def both_swapped() -> bool:
                pids = {}
                for _ in range(20):
                    j = http.get("/ready").json()
                    pids[j["pid"]] = j["version"]
                return len(pids) == 2 and set(pids.values()) == {2}

            wait_until(both_swapped, 60, "both replicas on version 2")
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert seen and all(code == 200 for code, _ in seen), {c for c, _ in seen}
        versions = [v for _, v in seen]
        assert versions[0] == "1" and versions[-1] == "2"
        assert http.post("/v1/predict", json={"inputs": [ROW]}).json() == {"predictions": [0]}
        wait_until(lambda: {d.version for d in _running(settings)} == {2}, 30, "heartbeats")

    # Deleting the application drains the replicas; each marks its record stopped.
    serve.delete("swap")
    wait_until(lambda: not _running(settings), 30, "records stopped")
    with opsloop.Client(settings=settings) as c:
        stopped = Deployments(c.context).list(model_name="forest", status="stopped")
    assert len(stopped) == 2


@pytest.mark.slow
def test_cli_serves_on_an_existing_cluster_and_stops_gracefully(
    cluster: dict[str, Any],
) -> None:
    settings, port, direct = cluster["settings"], cluster["port"], free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsloop.cli",
            "--home",
            str(settings.home),
            "serve",
            "models:/forest/1",
            "--on",
            "ray",
            "--address",
            cluster["address"],
            "--replica-cpus",
            "0.5",
            "--port",
            str(port),
            "--direct-port",
            str(direct),
            "--replicas",
            "1",
            "--trust",
            TREE,
            "--no-monitoring",
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any("opsloop serve:" in ln for ln in lines) or proc.poll(), 120)
        assert proc.poll() is None, "".join(lines)
        # The replica answers on its own port (no Ray hop) and through Ray's proxy alike.
        for at in (direct, port):
            r = httpx.post(f"http://127.0.0.1:{at}/v1/predict", json={"inputs": [ROW]}, timeout=30)
            assert r.json() == {"predictions": [1]}, at
        assert any(f"http://127.0.0.1:{direct}" in ln for ln in lines)
        (dep,) = wait_until(lambda: _running(settings), 30)
        assert dep.url == f"http://127.0.0.1:{direct}" and dep.version == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
    assert any("opsloop serve: stopped" in ln for ln in lines)
    with pytest.raises(httpx.ConnectError):  # the replica's own server went with it
        httpx.get(f"http://127.0.0.1:{direct}/health", timeout=5)
    assert not _running(settings)
    # The application is gone from the cluster; the cluster itself still runs.
    assert "opsloop" not in serve.status().applications
    assert ray.is_initialized()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--replicas", "2"], "need --on ray"),
        (["--on", "ray", "--workers", "2"], "--workers is for one machine"),
        (["--on", "mars"], "use local or ray"),
        (["--on", "ray", "--replicas", "2", "--max-replicas", "3"], "not both"),
        (["--on", "ray", "--max-replicas", "3", "--direct-port", "9"], "fixed number"),
    ],
)
def test_bad_ray_flags_are_clear_errors_before_anything_starts(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    res = CliRunner().invoke(
        cli_app, ["--home", str(tmp_path), "serve", "models:/forest@champion", *args]
    )
    assert res.exit_code != 0 and needle in res.output, res.output


@pytest.mark.slow
def test_autoscaling_adds_a_replica_under_load(
    cluster: dict[str, Any],
) -> None:
    """Ray's autoscaler, for real: with one request in flight as the target, 16 clients push
    the average above it and a second replica starts, no request failing (scaling down is
    Ray's own, after ``downscale_delay_s``: not waited for here)."""
    settings, port = cluster["settings"], cluster["port"]
    url = deploy_on_ray(
        "models:/forest@champion",
        settings,
        _options(max_wait_ms=2.0),
        RayOptions(
            app_name="scale",
            min_replicas=1,
            max_replicas=2,
            target_ongoing_requests=1,
            upscale_delay_s=1,
            downscale_delay_s=3,
            look_back_period_s=11,
            replica_cpus=0.5,
        ),
        port=port,
    )

    def replicas() -> int:
        app = serve.status().applications["scale"]
        return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())

    stop, failed = threading.Event(), []

    def load() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                if http.post("/v1/predict", json={"inputs": [ROW] * 50}).status_code != 200:
                    failed.append(1)

    try:
        assert replicas() == 1
        threads = [threading.Thread(target=load) for _ in range(16)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: replicas() == 2, 90)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert failed == []
    finally:
        serve.delete("scale")


def test_autoscaling_bounds_become_a_ray_autoscaling_config_ray_accepts() -> None:
    opts = RayOptions(
        min_replicas=0, max_replicas=5, target_ongoing_requests=16
    ).deployment_options()
    assert opts["autoscaling_config"] == {
        "min_replicas": 0,
        "max_replicas": 5,
        "initial_replicas": 1,
        "target_ongoing_requests": 16.0,
        "upscale_delay_s": 30.0,
        "downscale_delay_s": 600.0,
        "look_back_period_s": 30.0,
    }
    assert "num_replicas" not in opts and opts["max_ongoing_requests"] == 256
    # Ray validates the options when the deployment is declared (no cluster needed).
    from opsloop.serving._ray import OpsloopReplica

    dep = serve.deployment(**opts)(type("R", (OpsloopReplica,), {}))
    assert dep.max_ongoing_requests == 256 and dep.ray_actor_options["num_cpus"] == 1.0
    with pytest.raises(ValueError):  # and refuses what it would not run
        serve.deployment(**{**opts, "num_replicas": 2})(type("R", (OpsloopReplica,), {}))
    fixed = RayOptions(replicas=3, replica_cpus=0.5).deployment_options()
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"]["num_cpus"] == 0.5
