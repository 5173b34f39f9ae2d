"""Helpers shared by the benchmark scripts: timing, result tables, server processes.

Benchmarks print figures; they never assert on them. Everything here runs on
the local machine only (servers bind to 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` took (wall clock, ``perf_counter``)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_time(
    fn: Callable[[], Any], repeat: int, warmup: int = 1, budget_s: float = 15.0, least: int = 3
) -> float:
    """Median seconds over ``repeat`` calls, after ``warmup`` untimed calls.

    Slow calls stop early: once the timed calls took ``budget_s`` in all, the
    median is taken over those made (at least ``least``).
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeat and (len(times) < least or sum(times) < budget_s):
        times.append(timed(fn))
    return statistics.median(times)


# ---------------------------------------------------------------------------- results


@dataclass
class Figure:
    """One side of a comparison: ``n`` units of work done in ``seconds``."""

    n: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Comparison:
    """The same work measured on opsloop and on the reference system.

    ``ratio`` compares rates (units per second), so the two sides may run
    different ``n`` (the slow side runs fewer to keep the benchmark short).
    ``goal`` is the speed-up the project aims for, or None for information only.
    """

    scenario: str
    mode: str
    unit: str
    ours: Figure
    theirs: Figure
    goal: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours.rate / self.theirs.rate if self.theirs.rate > 0 else float("inf")

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.ratio >= self.goal

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ours"]["rate"] = self.ours.rate
        d["theirs"]["rate"] = self.theirs.rate
        d["ratio"] = self.ratio
        d["met"] = self.met
        return d


def fmt_rate(rate: float, unit: str) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M {unit}/s"
    if rate >= 1e4:
        return f"{rate / 1e3:.1f} k {unit}/s"
    if rate >= 100:
        return f"{rate:,.0f} {unit}/s"
    return f"{rate:.2f} {unit}/s"


def fmt_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def print_table(
    title: str, rows: Sequence[Comparison], ours: str = "opsloop", theirs: str = "MLflow"
) -> None:
    """A rich table: per row both sides' n, time and rate, the speed-up and the goal."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    t.add_column("scenario")
    t.add_column("mode")
    t.add_column(f"{ours} n", justify="right")
    t.add_column(f"{ours} time", justify="right")
    t.add_column(f"{ours} rate", justify="right")
    t.add_column(f"{theirs} n", justify="right")
    t.add_column(f"{theirs} time", justify="right")
    t.add_column(f"{theirs} rate", justify="right")
    t.add_column("speed-up", justify="right")
    t.add_column("goal", justify="right")
    for r in rows:
        if r.met is None:
            goal = "-"
        else:
            goal = f"[green]≥{r.goal:g}x ok[/]" if r.met else f"[red]≥{r.goal:g}x MISSED[/]"
        t.add_row(
            r.scenario + (f" [dim]({r.note})[/]" if r.note else ""),
            r.mode,
            f"{r.ours.n:,}",
            fmt_seconds(r.ours.seconds),
            fmt_rate(r.ours.rate, r.unit),
            f"{r.theirs.n:,}",
            fmt_seconds(r.theirs.seconds),
            fmt_rate(r.theirs.rate, r.unit),
            f"{r.ratio:,.1f}x",
            goal,
        )
    Console(width=200).print(t)


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------- servers


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def server_process(
    cmd: Sequence[str],
    health_url: str,
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    start_timeout_s: float = 120.0,
    settle_timeout_s: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server as a subprocess until the block ends; wait until ``health_url`` answers.

    After the first healthy answer it also waits (up to ``settle_timeout_s``)
    until the server's processes are idle, so start-up work (spawning workers,
    background job runners) does not land in the measurements. The server gets
    its own process group, so workers it forks are stopped with it (SIGTERM,
    then SIGKILL after 10 s). Its output goes to ``log_path``, whose tail is
    shown if it fails to start.
    """
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + start_timeout_s
            while not _healthy(health_url):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"server exited with code {proc.returncode}: {' '.join(cmd)}\n"
                        f"{_tail(log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server not healthy after {start_timeout_s:.0f} s: {health_url}\n"
                        f"{_tail(log_path)}"
                    )
                time.sleep(0.2)
            healthy_after = time.monotonic() - deadline + start_timeout_s
            idle_after = wait_idle(proc.pid, timeout_s=settle_timeout_s)
            print(
                f"  server up: healthy after {healthy_after:.1f} s, idle {idle_after:.1f} s later",
                flush=True,
            )
            yield proc
        finally:
            _stop(proc)


def _group_cpu_seconds(pgid: int) -> float | None:
    """CPU seconds used so far by the live processes of a process group (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for e in entries:
        if not e.isdigit():
            continue
        try:
            stat = Path(f"/proc/{e}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields[2] is pgrp; utime, stime follow at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_idle(pgid: int, *, timeout_s: float, busy: float = 0.25, window_s: float = 2.0) -> float:
    """Wait until a process group uses under ``busy`` CPUs over ``window_s``; return seconds waited.

    The threshold is not zero because some servers poll while idle (MLflow's
    job consumers use a few percent of a CPU each).
    """
    t0 = time.monotonic()
    prev = _group_cpu_seconds(pgid)
    if prev is None:
        time.sleep(min(timeout_s, 5.0))
        return time.monotonic() - t0
    while time.monotonic() - t0 < timeout_s:
        time.sleep(window_s)
        cur = _group_cpu_seconds(pgid)
        if cur is None or cur - prev < busy * window_s:
            break
        prev = cur
    return time.monotonic() - t0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # The group id is the leader's pid (start_new_session): only processes we started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    # Workers that outlived the leader (or a leader that ignored SIGTERM).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def python_cmd(code: str) -> list[str]:
    """A command that runs ``code`` with this interpreter."""
    return [sys.executable, "-c", code]
