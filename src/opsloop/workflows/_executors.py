"""Where a step's attempt runs: in this process, in a local process of its own, or on Ray.

An executor runs one attempt, ``call(step, kwargs, timeout)``, and returns its
value or raises (``StepTimeout`` past the timeout, after stopping the attempt
where it can: a local process is killed, a Ray task cancelled; a thread in
this process cannot be stopped and is left to finish). The orchestrator does
the rest (caching, retries, runs), so every executor gives the same results
and shares the same cache.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import traceback
from typing import Any, Protocol

from opsloop.workflows._errors import StepTimeout, WorkflowDefinitionError
from opsloop.workflows._step import Step

__all__ = ["EXECUTORS", "Executor", "make_executor"]

EXECUTORS = ("inline", "process", "ray")


class RemoteStepError(Exception):
    """A step's exception raised in another process, with its traceback as text."""


class Executor(Protocol):
    name: str

    def call(self, step: Step[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any: ...

    def close(self) -> None: ...


class InlineExecutor:
    """The step runs in this process (a thread when it has a timeout)."""

    name = "inline"

    def call(self, step: Step[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
        if timeout is None:
            return step.fn(**kwargs)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = step.fn(**kwargs)
            except BaseException as e:
                box["error"] = e

        t = threading.Thread(target=target, daemon=True, name=f"step-{step.name}")
        t.start()
        t.join(timeout)
        if t.is_alive():
            raise StepTimeout(
                f"step {step.name} ran past {timeout:g} s", details={"step": step.name}
            )
        if "error" in box:
            raise box["error"]
        return box["value"]

    def close(self) -> None:
        pass


def _child(conn: Any, step: Step[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        conn.send(("ok", step.fn(**kwargs)))
    except BaseException as e:
        try:
            conn.send(("error", e))
        except Exception:
            conn.send(("error", RemoteStepError(traceback.format_exc())))
    finally:
        conn.close()


class ProcessExecutor:
    """Each attempt in a local process of its own (forked where the OS allows), killed on timeout."""

    name = "process"

    def __init__(self) -> None:
        methods = mp.get_all_start_methods()
        self._mp: Any = mp.get_context(
            "fork" if "fork" in methods and os.name == "posix" else "spawn"
        )

    def call(self, step: Step[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
        recv, send = self._mp.Pipe(duplex=False)
        proc = self._mp.Process(target=_child, args=(send, step, kwargs), daemon=True)
        proc.start()
        send.close()
        try:
            if not recv.poll(timeout):
                proc.kill()
                raise StepTimeout(
                    f"step {step.name} ran past {timeout:g} s", details={"step": step.name}
                )
            try:
                status, value = recv.recv()
            except EOFError:
                proc.join(5)
                raise RemoteStepError(
                    f"step {step.name}: its process died (exit code {proc.exitcode})"
                ) from None
        finally:
            recv.close()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        pass


def _ray_call(step: Step[..., Any], kwargs: dict[str, Any]) -> Any:
    return step.fn(**kwargs)


class RayExecutor:
    """Each attempt a Ray task (``ray.init()`` connects to ``RAY_ADDRESS`` or starts a local one)."""

    name = "ray"

    def __init__(self) -> None:
        import ray  # lazy: an optional, heavy dependency

        if not ray.is_initialized():
            ray.init(log_to_driver=False, configure_logging=False, include_dashboard=False)
        self._ray = ray
        self._task = ray.remote(num_cpus=1, max_retries=0)(_ray_call)

    def call(self, step: Step[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
        ray = self._ray
        ref = self._task.remote(step, kwargs)
        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            raise StepTimeout(
                f"step {step.name} ran past {timeout:g} s", details={"step": step.name}
            ) from None
        except ray.exceptions.RayTaskError as e:
            cause = e.as_instanceof_cause()
            raise cause from None

    def close(self) -> None:
        pass


def make_executor(name: str) -> Executor:
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor()
    if name == "ray":
        return RayExecutor()
    raise WorkflowDefinitionError(f"unknown executor {name!r} (one of {', '.join(EXECUTORS)})")
