"""System metrics sampled while a fluent run is active, and only then."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import opsloop
from opsloop import Client
from opsloop.sdk import _fluent
from opsloop.tracking import SystemMetricsSampler
from tests._procs import wait_until


@pytest.fixture
def fluent(home: Path) -> Iterator[Path]:
    opsloop.set_tracking_uri(str(home))
    try:
        yield home
    finally:
        while opsloop.active_run() is not None:
            opsloop.end_run()
        opsloop.set_tracking_uri(None)
        _fluent._experiment_name = None


def sampler_threads() -> int:
    return sum(t.name == "opsloop-system-metrics" for t in threading.enumerate())


def burn_cpu(seconds: float) -> int:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += sum(i * i for i in range(2_000))
    return x


def test_system_metrics_are_sampled_during_a_run(fluent: Path) -> None:
    before = sampler_threads()
    ballast = bytearray(64 * 1024 * 1024)  # the process's RSS includes this
    with opsloop.start_run("sys", system_metrics_interval_s=0.1) as run:
        assert sampler_threads() == before + 1
        burn_cpu(0.3)
        # Poll instead of trusting a sleep: a loaded CI box may sample late.
        client = opsloop.get_client()
        wait_until(
            lambda: len(client.get_metric_history(run.run_id, "system/cpu_percent").steps) >= 4,
            timeout=30,
            what="four system metric samples",
        )
        burn_cpu(0.2)
    assert sampler_threads() == before  # stopped at run end
    ballast[-1] = 1

    total_mb = psutil.virtual_memory().total / 1e6
    with Client(home=fluent) as reader:
        keys = set(reader.list_metric_keys(run.run_id))
        assert {
            "system/cpu_percent",
            "system/memory_used_mb",
            "system/memory_percent",
            "system/process_rss_mb",
            "system/process_cpu_percent",
        } <= keys
        cpu = reader.get_metric_history(run.run_id, "system/cpu_percent")
        mem = reader.get_metric_history(run.run_id, "system/memory_used_mb")
        rss = reader.get_metric_history(run.run_id, "system/process_rss_mb")
        proc_cpu = reader.get_metric_history(run.run_id, "system/process_cpu_percent")
        n = len(cpu.steps)
        assert n >= 4
        for h in (cpu, mem, rss, proc_cpu):
            assert h.steps == list(range(n))  # one sample, one step, for every key
        assert all(0.0 <= v <= 100.0 for v in cpu.values)  # type: ignore[operator]
        assert all(0.0 < v <= total_mb for v in mem.values)  # type: ignore[operator]
        assert all(64.0 <= v <= total_mb for v in rss.values)  # type: ignore[operator]
        # The process burned CPU the whole time: some sample must show it.
        assert max(proc_cpu.values) > 10.0  # type: ignore[type-var]

        # Nothing more arrives once the run ended.
        time.sleep(0.4)
        assert len(reader.get_metric_history(run.run_id, "system/cpu_percent").steps) == n


def test_no_system_metrics_when_disabled(fluent: Path) -> None:
    before = sampler_threads()
    with opsloop.start_run(log_system_metrics=False, system_metrics_interval_s=0.05) as run:
        assert sampler_threads() == before
        opsloop.log_metric("loss", 1.0)
        time.sleep(0.3)
    with Client(home=fluent) as reader:
        assert set(reader.list_metric_keys(run.run_id)) == {"loss"}


def test_sampler_stops_when_the_run_fails(fluent: Path) -> None:
    before = sampler_threads()
    with pytest.raises(RuntimeError), opsloop.start_run(system_metrics_interval_s=0.05) as run:
        assert sampler_threads() == before + 1
        raise RuntimeError("boom")
    assert sampler_threads() == before
    with Client(home=fluent) as reader:
        assert reader.get_run(run.run_id).status == "FAILED"


def test_nested_runs_each_sample_their_own(fluent: Path) -> None:
    with opsloop.start_run("outer", system_metrics_interval_s=0.05) as outer:
        with opsloop.start_run("inner", system_metrics_interval_s=0.05) as inner:
            c = opsloop.get_client()
            wait_until(
                lambda: len(c.get_metric_history(inner.run_id, "system/cpu_percent").steps) >= 2,
                what="inner samples",
            )
        n_inner = len(c.get_metric_history(inner.run_id, "system/cpu_percent").steps)
        wait_until(
            lambda: len(c.get_metric_history(outer.run_id, "system/cpu_percent").steps) >= 2,
            what="outer samples",
        )
    with Client(home=fluent) as reader:
        assert reader.get_run(inner.run_id).parent_run_id == outer.run_id
        assert len(reader.get_metric_history(inner.run_id, "system/cpu_percent").steps) == n_inner


def test_sampler_survives_a_failing_logger() -> None:
    """A sampling or logging hiccup must never break the training process."""
    calls: list[int] = []

    def log(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        if len(calls) <= 2:
            raise OSError("disk full")

    sampler = SystemMetricsSampler(log, interval_s=0.02).start()
    try:
        wait_until(lambda: len(calls) >= 5, what="samples after failures")
    finally:
        sampler.stop()
    assert sampler.samples >= 3
    n = len(calls)
    time.sleep(0.1)
    assert len(calls) == n
    with pytest.raises(ValueError):
        SystemMetricsSampler(log, interval_s=0)
