"""Shared fixtures: homes, clients, PostgreSQL databases, live servers, served models.

Services: under CI=true a missing PostgreSQL fails the tests that need it;
elsewhere they are skipped with a message saying how to enable them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Several pytest-xdist workers on few cores: each worker's PyTorch (and the processes it
# starts, which inherit this) computes on one thread. OpenMP threads oversubscribed spin:
# SmolLM2 generating and training beside any other busy process took 45.6 s with two
# threads and 8.2 s with one on the 2-core CI machine (alone, two threads gave 8.4 s).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from opsloop.settings import Settings

if TYPE_CHECKING:
    from opsloop import Client

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("OPSLOOP_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


@pytest.fixture(scope="session", autouse=True)
def default_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's default home (``OPSLOOP_HOME``): no test reads or writes ``~/.opsloop``.

    Code that uses the default context (``load_model("models:/...")`` without a
    client) lands here, at this opsloop's schema, whatever the user's own home holds.
    """
    home = tmp_path_factory.mktemp("default-home")
    old = os.environ.get("OPSLOOP_HOME")
    os.environ["OPSLOOP_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("OPSLOOP_HOME", None)
        else:
            os.environ["OPSLOOP_HOME"] = old


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where converted GGUF weights and materialised model files are kept for the session.

    ``OPSLOOP_TEST_MODEL_CACHE`` keeps them across sessions (the first
    conversion takes tens of seconds).
    """
    env = os.environ.get("OPSLOOP_TEST_MODEL_CACHE")
    if env:
        return Path(env)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One cache for all the session's workers (their base temps share a parent):
        # conversions are made under a file lock and moved in whole, so each model is
        # converted once per session, not once per worker.
        shared = tmp_path_factory.getbasetemp().parent / "model-cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("model-cache")


def run_async(coro: Any) -> Any:
    """``asyncio.run(coro)``, in a thread of its own when this thread already runs an event
    loop: Playwright's sync API (the session ``browser`` of a UI test that ran earlier in
    this xdist worker) keeps one running in the main thread, where ``asyncio.run`` fails."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: list[Any] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    # the caller's context goes with it: a span current here is the parent there too
    t = threading.Thread(target=contextvars.copy_context().run, args=(main,))
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_available() -> str | None:
    try:
        import psycopg  # noqa: F401
        import sqlalchemy as sa

        eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


def require_service(name: str, reason: str | None) -> None:
    if reason is None:
        return
    msg = f"{name} is not reachable ({reason})"
    if IN_CI:
        pytest.fail(f"{msg}: under CI=true the tests that need it must run")
    pytest.skip(f"{msg}: start it (see README, 'Services') to run these tests")


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards."""
    import sqlalchemy as sa

    require_service("PostgreSQL", _pg_available())
    name = f"opsloop_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "opsloop-home"
    h.mkdir()
    return h


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


class LiveServer:
    """``opsloop`` REST server on a real socket, in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from opsloop.server import create_app

        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.time() + 20
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    srv = LiveServer(settings).start()
    try:
        yield srv
    finally:
        srv.stop()


BACKENDS = ["embedded-sqlite", "remote-sqlite", "embedded-postgres", "remote-postgres"]
"""The four ways every room's SDK is checked: its seam embedded or remote, on SQLite or PostgreSQL."""


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


@dataclass
class BackendEnv:
    """One of the four backends: the client, where the data lands, and the test's folder."""

    client: Client
    mode: str  # "embedded" or "remote"
    db_url: str  # the database the rooms write to (the server's, when remote)
    tmp: Path
    server: LiveServer | None = None

    @property
    def remote(self) -> bool:
        return self.mode == "remote"


@contextlib.contextmanager
def backend_env(name: str, tmp_path: Path, **settings_kw: Any) -> Iterator[BackendEnv]:
    """A client on backend ``name`` (one of ``BACKENDS``), closed afterwards."""
    from opsloop import Client

    mode, db = name.split("-")
    with fresh_pg_database() if db == "postgres" else _NullContext() as pg:
        settings = Settings(
            home=tmp_path / "home", database_url=pg, flush_interval_s=60.0, **settings_kw
        )
        if mode == "embedded":
            c = Client(settings=settings)
            try:
                yield BackendEnv(c, mode, settings.resolved_database_url, tmp_path)
            finally:
                c.close()
            return
        with live_server(settings) as srv:
            c = Client(
                settings=settings.model_copy(
                    update={"tracking_uri": srv.url, "home": tmp_path / "client"}
                )
            )
            assert c.is_remote
            try:
                yield BackendEnv(c, mode, settings.resolved_database_url, tmp_path, srv)
            finally:
                c.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendEnv]:
    """Every room's contract tests take this: they run four times, once per backend."""
    if request.param.endswith("postgres"):
        request.applymarker(pytest.mark.postgres)
    with backend_env(request.param, tmp_path) as env:
        yield env


@pytest.fixture
def client(home: Path) -> Iterator[Client]:
    """An embedded ``opsloop.Client`` on the test's home, closed after the test."""
    from opsloop import Client

    c = Client(home=home)
    yield c
    c.close()


@pytest.fixture
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off for the test (its verbosity restored after)."""
    optuna = pytest.importorskip("optuna")
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def serve_registered(
    home: Path,
    model_cache: Path,
    name: str,
    source: Path,
    flavor: str,
    options: dict[str, Any],
    **serve_opts: Any,
) -> Iterator[tuple[Any, Settings]]:
    """``opsloop serve models:/NAME@prod`` (a ``ThreadServer``, ready) of ``source`` registered
    in a fresh ``home``; yields the server and the settings it runs with."""
    from opsloop import Client
    from opsloop.registry import Registry
    from tests.test_serving import ThreadServer

    settings = Settings(home=home, flush_interval_s=60.0)
    client = Client(settings=settings)
    reg = Registry(client)
    mv = reg.register(name, source, flavor=flavor, options=options)
    reg.set_alias(name, "prod", mv.version)
    try:
        with ThreadServer(
            f"models:/{name}@prod",
            settings,
            cache_dir=model_cache,
            device="cpu",
            poll_interval_s=0,
            **serve_opts,
        ) as srv:
            srv.wait_ready(600)
            yield srv, settings
    finally:
        client.close()


# ------------------------------------------------------------------ the browser (UI tests)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    msg = f"{CHROMIUM} is missing: install Debian's chromium package to run the UI tests"
    if IN_CI:
        pytest.fail(f"{msg} (under CI=true the UI tests must run)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test process, shared by every test that drives a page.

    Playwright's sync API runs an event loop for as long as it is open, so a test
    that opened a second one in the same process (a pytest-xdist worker runs many
    files) would fail: every test takes this fixture instead.
    """
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


# ---------------------------------------------------------------------------------------
# The slowest files first. Whole files go to a worker (--dist loadfile) in collection
# order, so a long file collected last keeps one worker busy while the others are idle;
# handing the longest out first (longest-processing-time order) ends the workers together.
# tests/durations.json holds each file's seconds from a full run, written by
# OPSLOOP_RECORD_DURATIONS=tests/durations.json scripts/test.sh; files it lacks keep their
# place after the ones it knows.
_DURATIONS = Path(__file__).with_name("durations.json")
_seconds: dict[str, float] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        weights: dict[str, float] = json.loads(_DURATIONS.read_text())
    except (OSError, ValueError):
        return
    items.sort(key=lambda item: -float(weights.get(item.nodeid.split("::", 1)[0], 0.0)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("OPSLOOP_RECORD_DURATIONS"):
        path = report.nodeid.split("::", 1)[0]
        _seconds[path] = _seconds.get(path, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("OPSLOOP_RECORD_DURATIONS")
    if out and not hasattr(session.config, "workerinput") and _seconds:
        ranked = dict(sorted(_seconds.items(), key=lambda kv: -kv[1]))
        Path(out).write_text(json.dumps({k: round(v, 1) for k, v in ranked.items()}, indent=1))
