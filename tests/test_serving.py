"""Model serving for tabular and Python-function models, on real sockets.

A real uvicorn server (in a thread, or ``opsloop serve`` in a subprocess where
signals or several workers matter) serves models saved with the registry's
flavors; clients are plain httpx. The micro-batcher is also exercised on its
own, on a real event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
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
import numpy as np
import pytest

import opsloop
from opsloop.errors import InvalidArgument, Unavailable
from opsloop.registry import Registry
from opsloop.registry.flavors import PyfuncContext, PythonModel, save_pyfunc
from opsloop.serving import MicroBatcher, ServeOptions, create_serving_app
from opsloop.settings import Settings
from tests._procs import child_env, wait_until
from tests.conftest import free_port, run_async

TREE = ["sklearn.tree._tree.Tree"]


# ---------------------------------------------------------------- models the tests serve


class AnswerModel(PythonModel):
    """Answers ``config['answer']`` for every row, after ``config['delay_s']`` seconds."""

    def load_context(self, context: PyfuncContext) -> None:
        self.answer = context.config["answer"]
        self.delay_s = float(context.config.get("delay_s", 0.0))
        time.sleep(float(context.config.get("load_delay_s", 0.0)))

    def predict(self, data: list[dict[str, Any]]) -> list[Any]:
        if self.delay_s:
            time.sleep(self.delay_s)
        return [f"{self.answer}:{row['x']}" for row in data]


def answer_model(path: Path, answer: str, **config: float) -> Path:
    return save_pyfunc(
        path,
        "tests.test_serving:AnswerModel",
        config={"answer": answer, **config},
        input_example=[{"x": 1.0}],
        output_example=["a"],
    )


class Table:
    """Feature rows with column names, in every shape a predict body takes."""

    def __init__(self, x: Any) -> None:
        self.x = x
        self.columns = [f"f{i}" for i in range(x.shape[1])]

    def matrix(self, n: int) -> Any:
        return self.x[:n]

    def records(self, n: int) -> list[dict[str, float]]:
        return [dict(zip(self.columns, map(float, row), strict=True)) for row in self.x[:n]]

    def by_column(self, n: int) -> dict[str, list[float]]:
        return {c: [float(v) for v in self.x[:n, i]] for i, c in enumerate(self.columns)}


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Table, Path]:
    """A fitted random forest, its feature table, and its saved model folder."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from opsloop.registry.flavors import save_sklearn

    x, y = make_classification(n_samples=400, n_features=5, n_informative=3, random_state=0)
    table = Table(x)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    folder = save_sklearn(
        model, tmp_path_factory.mktemp("rf") / "model", input_example=table.records(5)
    )
    return model, table, folder


# ---------------------------------------------------------------- servers


class ThreadServer:
    """``create_serving_app`` under uvicorn on a real port, in a thread of this process."""

    def __init__(self, target: Any, settings: Settings | None = None, **options: Any) -> None:
        import uvicorn

        self.app = create_serving_app(target, settings, options=ServeOptions(**options))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 30, "server start")
        assert self.thread.is_alive(), "server thread died"
        return self

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> Any:
            r = httpx.get(f"{self.url}/ready", timeout=5)
            return r.json() if r.status_code == 200 else None

        return wait_until(ready, timeout, "/ready")  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextlib.contextmanager
def serve_process(
    *args: str, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``opsloop serve ARGS`` in a subprocess; yields (process, url, log file)."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"opsloop-serve-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opsloop.serving.cli",
                *args,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=cwd or Path.cwd(),
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"opsloop serve exited {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/ready", timeout=2).status_code == 200
            return False

        wait_until(ready, 90, "opsloop serve to be ready")
        yield proc, url, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.unlink(missing_ok=True)


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- tabular serving


def test_random_forest_answers_like_the_model_in_every_input_form(forest: Any) -> None:
    model, frame, folder = forest
    want = model.predict(frame.matrix(12)).tolist()
    with ThreadServer(folder, trusted_types=TREE) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").json()["status"] == "ok"
        ready = srv.wait_ready()
        assert ready["model"] == "model"
        records = frame.records(12)
        columns = frame.by_column(12)
        assert c.post("/v1/predict", json={"records": records}).json() == {"predictions": want}
        assert c.post("/invocations", json={"columns": columns}).json()["predictions"] == want
        assert (
            c.post("/v1/predict", json={"inputs": frame.matrix(12).tolist()}).json()["predictions"]
            == want
        )
        assert (
            c.post(
                "/invocations",
                json={
                    "dataframe_split": {
                        "columns": frame.columns,
                        "data": frame.matrix(12).tolist(),
                    }
                },
            ).json()["predictions"]
            == want
        )
        proba = c.post("/v1/predict_proba", json={"records": records[:3]}).json()["predictions"]
        assert np.allclose(proba, model.predict_proba(frame.matrix(3)))
        meta = c.get("/v1/metadata").json()
        assert meta["flavor"] == "sklearn" and meta["kind"] == "tabular"
        assert [col["name"] for col in meta["signature"]["inputs"]] == frame.columns
        assert c.get("/v1/models").json()["data"][0]["id"] == "model"


def test_bad_input_is_a_400_in_the_error_shape_and_harms_nothing(forest: Any) -> None:
    model, frame, folder = forest
    good = frame.records(1)
    with ThreadServer(folder, trusted_types=TREE) as srv, httpx.Client(base_url=srv.url) as c:
        srv.wait_ready()
        bad_type = dict(good[0], f1="not a number")
        e = error_of(
            c.post("/v1/predict", json={"records": [good[0], bad_type]}), 400, "INVALID_ARGUMENT"
        )
        assert "f1" in e["message"] and e["details"]["row"] == 1
        missing = {k: v for k, v in good[0].items() if k != "f3"}
        e = error_of(c.post("/v1/predict", json={"records": [missing]}), 400, "INVALID_ARGUMENT")
        assert "f3" in e["message"]
        e = error_of(
            c.post("/v1/predict", json={"records": [dict(good[0], extra=1)]}),
            400,
            "INVALID_ARGUMENT",
        )
        assert "extra" in e["message"]
        error_of(
            c.post("/v1/predict", json={"columns": {"f0": [1.0], "f1": [1.0, 2.0]}}),
            400,
            "INVALID_ARGUMENT",
        )
        error_of(c.post("/v1/predict", json={"rows": good}), 400, "INVALID_ARGUMENT")
        error_of(
            c.post("/v1/predict", json={"records": good, "columns": {}}), 400, "INVALID_ARGUMENT"
        )
        error_of(c.post("/v1/predict", json={"records": []}), 400, "INVALID_ARGUMENT")
        error_of(c.post("/v1/predict", json={"inputs": [[1.0, 2.0]]}), 400, "INVALID_ARGUMENT")
        error_of(c.post("/v1/predict", content=b"{not json"), 400, "INVALID_ARGUMENT")
        error_of(c.post("/v1/predict", json=[1, 2]), 400, "INVALID_ARGUMENT")
        error_of(
            c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}),
            400,
            "INVALID_ARGUMENT",
        )
        error_of(c.get("/v1/nope"), 404, "NOT_FOUND")
        # Still serving, with the right answers.
        r = c.post("/v1/predict", json={"records": good})
        assert r.json()["predictions"] == model.predict(frame.matrix(1)).tolist()


def test_bodies_over_the_size_limit_are_refused(forest: Any, tmp_path: Path) -> None:
    _, frame, folder = forest
    settings = Settings(home=tmp_path / "h", max_request_bytes=2_000)
    with (
        ThreadServer(folder, settings, trusted_types=TREE) as srv,
        httpx.Client(base_url=srv.url) as c,
    ):
        srv.wait_ready()
        many = frame.records(50)
        for path in ("/v1/predict", "/invocations", "/v1/predict_proba"):
            error_of(c.post(path, json={"records": many}), 413, "PAYLOAD_TOO_LARGE")
        r = c.post("/v1/predict", json={"records": many[:2]})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
        error_of(c.get("/v1/predict"), 405, "METHOD_NOT_ALLOWED")


def test_concurrent_single_row_requests_are_merged_into_batches(forest: Any) -> None:
    model, frame, folder = forest
    records = frame.records(40)
    want = model.predict(frame.matrix(40)).tolist()
    with ThreadServer(folder, trusted_types=TREE, max_wait_ms=5) as srv:
        srv.wait_ready()

        def client(k: int) -> list[tuple[int, Any]]:
            got = []
            with httpx.Client(base_url=srv.url) as c:
                for i in range(k, len(records), 8):
                    r = c.post("/v1/predict", json={"records": [records[i]]})
                    assert r.status_code == 200, r.text
                    got.append((i, r.json()["predictions"][0]))
            return got

        with ThreadPoolExecutor(8) as pool:
            answers = dict(p for part in pool.map(client, range(8)) for p in part)
        assert [answers[i] for i in range(len(records))] == want
        stats = httpx.get(f"{srv.url}/v1/stats").json()["predict"]
        assert stats["requests"] == len(records) and stats["rows"] == len(records)
        assert stats["max_batch_rows"] > 1, stats
        assert stats["batches"] < len(records), stats


# ---------------------------------------------------------------- the batcher alone


def test_batcher_isolates_a_bad_request_and_respects_its_limits() -> None:
    calls: list[list[int]] = []

    def double(rows: list[int]) -> list[int]:
        calls.append(list(rows))
        if any(r < 0 for r in rows):
            raise InvalidArgument("negative input")
        return [2 * r for r in rows]

    async def main() -> None:
        b: MicroBatcher[int, int] = MicroBatcher(double, max_batch_size=4, max_wait_ms=50)
        results = await asyncio.gather(
            *[b.submit([i]) for i in (1, 2, -3, 4, 5, 6)], return_exceptions=True
        )
        assert results[:2] == [[2], [4]] and results[3:] == [[8], [10], [12]]
        assert isinstance(results[2], InvalidArgument)
        assert max(len(c) for c in calls) <= 4
        assert calls[0] == [1, 2, -3, 4]  # merged, in arrival order
        assert b.stats.retried_batches == 1
        # A request bigger than the batch limit runs alone, whole.
        assert await b.submit(list(range(10))) == [2 * i for i in range(10)]
        await b.close()
        with pytest.raises(Unavailable):
            await b.submit([1])

    run_async(main())


def test_batcher_finishes_what_it_holds_on_close() -> None:
    def slow(rows: list[int]) -> list[int]:
        time.sleep(0.05)
        return rows

    async def main() -> None:
        b: MicroBatcher[int, int] = MicroBatcher(slow, max_batch_size=2, max_wait_ms=0)
        pending = [asyncio.ensure_future(b.submit([i])) for i in range(6)]
        await asyncio.sleep(0)
        await b.close()
        assert [p.result() for p in pending] == [[i] for i in range(6)]
        assert b.stats.batches >= 3

    run_async(main())


# ---------------------------------------------------------------- readiness and reloads


def test_ready_is_503_until_the_model_has_loaded(tmp_path: Path) -> None:
    folder = answer_model(tmp_path / "slow-load", "v1", load_delay_s=1.5)
    with ThreadServer(folder) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").status_code == 200
        e = error_of(c.get("/ready"), 503, "UNAVAILABLE")
        assert "loading" in e["message"]
        error_of(c.post("/v1/predict", json={"records": [{"x": 1.0}]}), 503, "UNAVAILABLE")
        srv.wait_ready(30)
        assert c.post("/v1/predict", json={"records": [{"x": 1.0}]}).json() == {
            "predictions": ["v1:1.0"]
        }


def test_moving_the_alias_swaps_versions_without_failing_a_request(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", flush_interval_s=60.0)
    client = opsloop.Client(settings=settings)
    reg = Registry(client)
    # v2 loads slowly: requests keep flowing to v1 while it loads.
    reg.register("answers", answer_model(tmp_path / "v1", "v1", delay_s=0.01))
    reg.register("answers", answer_model(tmp_path / "v2", "v2", delay_s=0.01, load_delay_s=1.0))
    reg.set_alias("answers", "prod", 1)
    try:
        with ThreadServer("models:/answers@prod", settings, poll_interval_s=0.2) as srv:
            assert srv.wait_ready()["version"] == 1
            stop = threading.Event()
            seen: list[list[str]] = [[] for _ in range(4)]
            errors: list[str] = []

            def loop(k: int) -> None:
                with httpx.Client(base_url=srv.url, timeout=30) as c:
                    while not stop.is_set():
                        r = c.post("/v1/predict", json={"records": [{"x": float(k)}]})
                        if r.status_code != 200:
                            errors.append(r.text)
                        else:
                            answer = r.json()["predictions"][0].split(":")[0]
                            if answer != "v" + r.headers["x-opsloop-model-version"]:
                                errors.append(f"{answer} from version {r.headers}")
                            seen[k].append(answer)

            threads = [threading.Thread(target=loop, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            wait_until(lambda: all(len(s) > 5 for s in seen), 30, "requests before the move")
            reg.set_alias("answers", "prod", 2)
            wait_until(lambda: all(s and s[-1] == "v2" for s in seen), 60, "answers from v2")
            counts = [len(s) for s in seen]
            wait_until(
                lambda: all(len(s) > c + 5 for s, c in zip(seen, counts, strict=True)),
                30,
                "requests after the move",
            )
            stop.set()
            for t in threads:
                t.join(timeout=30)
            assert errors == []
            for s in seen:
                # Each client sees v1, then v2, never back.
                first_v2 = s.index("v2")
                assert set(s[:first_v2]) == {"v1"} and set(s[first_v2:]) == {"v2"}
            stats = httpx.get(f"{srv.url}/v1/stats").json()
            assert stats["reloads"] == 1 and stats["model"]["version"] == 2
            assert httpx.get(f"{srv.url}/v1/metadata").json()["alias"] == "prod"
    finally:
        client.close()


# ---------------------------------------------------------------- processes


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path) -> None:
    folder = answer_model(tmp_path / "slow", "done", delay_s=2.0)
    with serve_process(str(folder)) as (proc, url, log):
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                r = httpx.post(f"{url}/v1/predict", json={"records": [{"x": 7.0}]}, timeout=30)
                result["status"], result["body"] = r.status_code, r.json()
            except Exception as exc:
                result["error"] = repr(exc)

        t = threading.Thread(target=call)
        t.start()
        wait_until(
            lambda: httpx.get(f"{url}/v1/stats").json()["inflight"] == 1,
            10,
            "the request to be in flight",
        )
        proc.send_signal(signal.SIGTERM)
        t.join(timeout=30)
        assert result == {"status": 200, "body": {"predictions": ["done:7.0"]}}, log.read_text()
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2)


@pytest.mark.slow
def test_several_workers_each_serve_requests(tmp_path: Path) -> None:
    folder = answer_model(tmp_path / "w", "w")
    with serve_process(str(folder), "--workers", "2") as (_proc, url, _log):
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            # A new connection each time, so the kernel can hand it to either worker.
            with httpx.Client(base_url=url) as c:
                r = c.get("/ready")
                if r.status_code == 200:
                    pids.add(r.json()["pid"])
                    assert c.post("/v1/predict", json={"records": [{"x": 2.0}]}).json() == {
                        "predictions": ["w:2.0"]
                    }
        assert len(pids) == 2, pids


@pytest.mark.slow
def test_serve_command_fails_fast_on_what_cannot_be_served(tmp_path: Path, forest: Any) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsloop.serving.cli", *args, "--port", str(free_port())],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )

    r = run("models:/nope@prod", "--home", str(tmp_path / "h"))
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr, r.stderr
    r = run(str(forest[2]))  # a forest holds tree types that must be trusted by name
    assert r.returncode == 1 and "PERMISSION_DENIED" in r.stderr and TREE[0] in r.stderr, r.stderr
    r = run(str(tmp_path / "no-such-folder"))
    assert r.returncode == 1 and "INVALID_ARGUMENT" in r.stderr, r.stderr
