"""Real processes and real sockets for the crash, concurrency and buffer tests.

- ``ServerProcess``: ``opsloop``'s REST server in its own interpreter (so it
  can be SIGKILLed), waited for through ``/api/v1/health``.
- ``start_script``: a Python snippet in a fresh interpreter, stdout/stderr piped,
  with ``LineReader`` to read its stdout line by line with a timeout.
- ``FaultyProxy``: a TCP proxy in front of a real server that can pass
  traffic, refuse it, or forward requests and drop the replies (the "request
  stored, answer lost" case that makes retries dangerous).
- Writer scripts used by several test files, as source text.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

PY = sys.executable
START_TIMEOUT_S = 60.0  # interpreter + FastAPI import on a loaded 2-core box


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """This environment without ``OPSLOOP_*`` (children get their settings explicitly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


# ---------------------------------------------------------------------------- server


_SERVER_CODE = (
    "import sys, uvicorn; from opsloop.settings import Settings; "
    "from opsloop.server import create_app; "
    "uvicorn.run(create_app(Settings(home=sys.argv[1])), host='127.0.0.1', "
    "port=int(sys.argv[2]), log_level='warning')"
)


class ServerProcess:
    """``opsloop`` server on ``home`` in a subprocess; ``kill()`` is a real SIGKILL."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = Path(home)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self.home.parent / f"server-{self.port}-{time.monotonic_ns()}.log"

    def start(self, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(
                [PY, "-c", _SERVER_CODE, str(self.home), str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{self.url}/api/v1/health", timeout=2.0)
                if r.status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not answer /api/v1/health: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no cleanup runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- scripts


def start_script(source: str, *args: str | os.PathLike[str]) -> subprocess.Popen[str]:
    """Run ``source`` with ``python -c`` (argv[1:] = ``args``), stdout and stderr piped."""
    return subprocess.Popen(
        [PY, "-c", source, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def run_script(
    source: str, *args: str | os.PathLike[str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` to completion and return its exit status and output."""
    return subprocess.run(
        [PY, "-c", source, *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )


class LineReader:
    """Reads a pipe on a thread so the test can wait for a line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout: float = START_TIMEOUT_S) -> str | None:
        """The next line, or None at end of stream; raises TimeoutError if none comes."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output line within {timeout:.0f}s") from None

    def rest(self, timeout: float = 30.0) -> list[str]:
        """Every remaining line up to end of stream (the process must be ending)."""
        out = []
        while (line := self.next(timeout)) is not None:
            out.append(line)
        return out


def kill(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# ---------------------------------------------------------------------------- proxy


class FaultyProxy:
    """A loopback TCP proxy to ``upstream_port`` whose ``mode`` can change at any time.

    - ``"pass"``: bytes flow both ways.
    - ``"refuse"``: connections are closed at once, kept-alive ones at their next
      request (the upstream is down).
    - ``"drop_reply"``: requests reach the upstream, but the first byte of its
      answer closes the connection instead (the write happened, the reply was lost).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.refused = 0
        self.dropped = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if self.mode == "refuse":
                self.refused += 1
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        socks = [client, upstream]
        try:
            while not self._closed:
                ready, _, _ = select.select(socks, [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client and self.mode == "refuse":
                        self.refused += 1  # the upstream "went down" under a kept-alive connection
                        return
                    if s is upstream and self.mode == "drop_reply":
                        self.dropped += 1
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


# ---------------------------------------------------------------------------- writers

# A training loop that logs forever and flushes every N steps, printing
# "confirmed <steps>" only after flush() returned. argv: home, run_id, every,
# flush_interval_s. Step i logs loss = value(i) and acc = 1 - value(i).
CONFIRMING_WRITER = r"""
import sys
from opsloop import Client, Settings
home, run_id, every, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = Client(settings=Settings(home=home, flush_interval_s=interval))
print("ready", flush=True)
i = 0
while True:
    v = (i * 7919 % 10007) / 10007.0
    c.log_metrics(run_id, {"loss": v, "acc": 1.0 - v}, step=i)
    i += 1
    if i % every == 0:
        c.flush()
        print(f"confirmed {i}", flush=True)
"""


def writer_value(i: int) -> float:
    """The ``loss`` value ``CONFIRMING_WRITER`` logs at step ``i``."""
    return (i * 7919 % 10007) / 10007.0


# A process sharing one SQLite home with others. argv: home, worker index, go
# file (the barrier: every worker waits for it, then starts at once), runs,
# points per run. Prints one JSON report: its runs and when it started/ended.
CONCURRENT_WORKER = r"""
import json, sys, time
from pathlib import Path
from opsloop import Client, Settings
home, idx, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
n_runs, n_points = int(sys.argv[4]), int(sys.argv[5])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
t0 = time.time()
c = Client(settings=Settings(home=home, flush_interval_s=0.05))  # creates the schema if empty
shared = c.get_or_create_experiment("shared")
mine = c.create_experiment(f"worker-{idx}", tags={"worker": idx})
runs = {}
for r in range(n_runs):
    exp = shared.id if r % 2 == 0 else mine.id
    run = c.create_run(exp, name=f"w{idx}-r{r}", params={"worker": idx, "r": r}, tags={"phase": "start"})
    for i in range(n_points):
        c.log_metric(run.id, "loss", i * 0.5 + idx, step=i)
        if i % 1000 == 999:
            c.flush()
        if i % 2500 == 0:
            c.set_tag(run.id, "progress", str(i))
            c.log_param(run.id, f"p{i}", i)
            page = c.search_runs([shared.id, mine.id], filter=f"params.worker = '{idx}'")
            assert run.id in {x.id for x in page.runs}
    c.log_text(run.id, f"worker {idx} run {r}\n" * 50, f"notes/w{idx}-r{r}.txt")
    c.set_terminated(run.id)
    runs[run.id] = {"experiment_id": exp, "points": n_points, "worker": idx, "r": r}
c.close()
print(json.dumps({"runs": runs, "start": t0, "end": time.time(), "shared": shared.id}), flush=True)
"""
