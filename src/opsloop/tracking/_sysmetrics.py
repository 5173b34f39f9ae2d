"""System metrics sampled in the background while a run is active.

Logged as ordinary metrics under ``system/``: CPU and memory of the machine
and of this process, disk use and throughput, network throughput, and, where
an NVIDIA driver and ``nvidia-ml-py`` are present, GPU utilisation and memory.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

LogFn = Callable[[dict[str, float], int], None]


class _Gpu:
    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.nv: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, h in enumerate(self.handles):
            with contextlib.suppress(Exception):
                util = self.nv.nvmlDeviceGetUtilizationRates(h)
                mem = self.nv.nvmlDeviceGetMemoryInfo(h)
                out[f"system/gpu_{i}_utilization_percent"] = float(util.gpu)
                out[f"system/gpu_{i}_memory_used_mb"] = mem.used / 1e6
                out[f"system/gpu_{i}_memory_percent"] = 100.0 * mem.used / max(mem.total, 1)
        return out


def sample_once(proc: Any, last_io: dict[str, Any], gpu: _Gpu | None) -> dict[str, float]:
    """One sample of every system metric (rates since the previous sample)."""
    import psutil

    now = time.monotonic()
    vm = psutil.virtual_memory()
    out: dict[str, float] = {
        "system/cpu_percent": psutil.cpu_percent(interval=None),
        "system/memory_used_mb": (vm.total - vm.available) / 1e6,
        "system/memory_percent": vm.percent,
        "system/process_rss_mb": proc.memory_info().rss / 1e6,
        "system/process_cpu_percent": proc.cpu_percent(interval=None),
    }
    with contextlib.suppress(Exception):
        du = psutil.disk_usage(os.getcwd())
        out["system/disk_used_percent"] = du.percent
        out["system/disk_free_gb"] = du.free / 1e9
    with contextlib.suppress(Exception):
        dio = psutil.disk_io_counters()
        nio = psutil.net_io_counters()
        if last_io:
            dt = max(now - last_io["t"], 1e-6)
            out["system/disk_read_mb_per_s"] = (dio.read_bytes - last_io["dr"]) / 1e6 / dt
            out["system/disk_write_mb_per_s"] = (dio.write_bytes - last_io["dw"]) / 1e6 / dt
            out["system/network_recv_mb_per_s"] = (nio.bytes_recv - last_io["nr"]) / 1e6 / dt
            out["system/network_sent_mb_per_s"] = (nio.bytes_sent - last_io["ns"]) / 1e6 / dt
        last_io.update(
            t=now, dr=dio.read_bytes, dw=dio.write_bytes, nr=nio.bytes_recv, ns=nio.bytes_sent
        )
    if gpu is not None:
        out.update(gpu.sample())
    return out


class SystemMetricsSampler:
    """A daemon thread calling ``log(metrics, step)`` every ``interval_s`` seconds."""

    def __init__(self, log: LogFn, interval_s: float = 10.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._log = log
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sample: Callable[[], dict[str, float]] = dict
        self.samples = 0

    def start(self) -> SystemMetricsSampler:
        import psutil

        proc = psutil.Process()
        proc.cpu_percent(interval=None)
        psutil.cpu_percent(interval=None)
        gpu = _Gpu()
        last_io: dict[str, Any] = {}
        sample_once(proc, last_io, gpu)  # prime the rate counters

        self._sample = lambda: sample_once(proc, last_io, gpu)

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                self._log_one()

        self._thread = threading.Thread(target=loop, name="opsloop-system-metrics", daemon=True)
        self._thread.start()
        return self

    def _log_one(self) -> None:
        try:
            self._log(self._sample(), self.samples)
            self.samples += 1
        except Exception:
            # A sampling hiccup must never break the training process.
            return

    def stop(self) -> None:
        """Stop sampling, taking one last sample so even a short run has its end state."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            self._log_one()
