"""Running a workflow's graph: cache lookups, attempts with backoff, a child run per step.

For each node, in order: its inputs are the outputs of the steps before it;
its key hashes the step's code and the project code it reaches, the
packages that code uses, its parameters and the content hashes of its
inputs (``_fingerprint``). A key found in the cache, fresh enough for the
step's external inputs and whose artifact reads back with the same digest,
is a hit: the step is not run. Otherwise the step runs on the executor,
with retries and backoff, and its output is stored as a content-addressed
artifact of the step's run and indexed under the key.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opsloop.errors import OpsloopError
from opsloop.store import now_ms
from opsloop.tracking import RunStatus, Tracking
from opsloop.workflows._errors import StepFailed
from opsloop.workflows._executors import Executor, RemoteStepError
from opsloop.workflows._fingerprint import clear_caches, code_fingerprint, value_digest
from opsloop.workflows._step import Graph, Node, Output, Step
from opsloop.workflows.entities import CacheEntry, StepResult, WorkflowResult

__all__ = ["OUTPUT_PATH", "TAGS", "CacheBackend", "run_graph"]

OUTPUT_PATH = "outputs/return.pkl"
KEY_VERSION = 1


class TAGS:
    """Tags on workflow runs (a contract with the UI and the CLI: never rename)."""

    WORKFLOW = "opsloop.workflow"  # the workflow's name, on the parent and every step run
    REF = "opsloop.workflow.ref"  # module:attr of the workflow, on the parent
    ROLE = "opsloop.workflow.role"  # "workflow" | "step"
    STEP = "opsloop.workflow.step"  # the node's name, on a step run
    STEP_REF = "opsloop.workflow.step_ref"  # module:qualname of the step function
    CACHE = "opsloop.workflow.cache"  # "hit" | "miss" | "off" | "resumed"
    KEY = "opsloop.workflow.key"
    DIGEST = "opsloop.workflow.digest"  # the output's content hash
    FROM = "opsloop.workflow.cached_from"  # the step run that made the outputs (hits, resumes)
    INPUTS = "opsloop.workflow.inputs"  # JSON {arg: {"digest", "run_id"}}: lineage
    ATTEMPTS = "opsloop.workflow.attempts"  # JSON [{"attempt", "seconds", "error"}]
    EXECUTOR = "opsloop.workflow.executor"
    ERROR = "opsloop.workflow.error"
    TRIGGER = "opsloop.workflow.trigger"  # the event or schedule that started the run
    DAG = "opsloop.workflow.dag"  # JSON of the graph, on the parent


class CacheBackend(Protocol):
    def get(self, key: str) -> CacheEntry | None: ...

    def put(self, key: str, step: str, run_id: str, outputs: Mapping[str, Any]) -> None: ...

    def hit(self, key: str) -> None: ...

    def drop(self, keys: list[str]) -> int: ...


@dataclass
class _Done:
    value: Any
    digest: str
    run_id: str


class _Digest:
    """An upstream output inside a step's arguments, hashed by its content digest."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def __repr__(self) -> str:
        return f"digest:{self.digest}"


def _substitute(v: Any, fn: Callable[[Output], Any]) -> Any:
    if isinstance(v, Output):
        return fn(v)
    if isinstance(v, list):
        return [_substitute(x, fn) for x in v]
    if isinstance(v, tuple):
        return tuple(_substitute(x, fn) for x in v)
    if isinstance(v, dict):
        return {k: _substitute(x, fn) for k, x in v.items()}
    return v


def step_key(node: Node, done: Mapping[str, _Done], code_memo: dict[str, tuple[str, str]]) -> str:
    """The cache key of ``node`` given the finished upstream steps."""
    s = node.step
    if s.ref not in code_memo:
        fp = code_fingerprint([s, *s.uses])
        code_memo[s.ref] = (fp.code_digest(), fp.packages_digest())
    code, packages = code_memo[s.ref]
    args = {k: _substitute(v, lambda o: _Digest(done[o.node].digest)) for k, v in node.args.items()}
    doc = {
        "v": KEY_VERSION,
        "step": s.ref,
        "code": code,
        "packages": packages,
        "args": {k: value_digest(v) for k, v in sorted(args.items())},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _fresh(entry: CacheEntry, s: Step[..., Any]) -> bool:
    if not s.external:
        return True
    return (now_ms() - entry.created_at) <= min(s.external.values()) * 1000


class Runner:
    """One workflow run: the parent run, then each node in order."""

    def __init__(
        self,
        tracking: Tracking,
        cache: CacheBackend,
        executor: Executor,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.t = tracking
        self.cache = cache
        self.executor = executor
        self.sleep = sleep
        self.code_memo: dict[str, tuple[str, str]] = {}

    # -- one step --------------------------------------------------------------------------
    def _load(self, run_id: str, digest: str) -> Any | None:
        try:
            data = self.t.read_artifact(run_id, OUTPUT_PATH)
        except OpsloopError:
            return None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return None
        return pickle.loads(data)

    def _lineage(self, node: Node, done: Mapping[str, _Done]) -> str:
        return json.dumps(
            {o: {"digest": done[o].digest, "run_id": done[o].run_id} for o in node.upstream}
        )

    def _step_run(
        self,
        parent: Run_,
        node: Node,
        key: str,
        cache: str,
        done: Mapping[str, _Done],
        extra: Mapping[str, str] | None = None,
    ) -> str:
        params = {}
        for k, v in node.args.items():
            if not isinstance(v, Output):
                r = repr(v)
                params[k] = r if len(r) <= 500 else r[:497] + "..."
        run = self.t.create_run(
            parent.experiment_id,
            name=node.name,
            parent_run_id=parent.id,
            params=params,
            tags={
                TAGS.WORKFLOW: parent.workflow,
                TAGS.ROLE: "step",
                TAGS.STEP: node.name,
                TAGS.STEP_REF: node.step.ref,
                TAGS.KEY: key,
                TAGS.CACHE: cache,
                TAGS.INPUTS: self._lineage(node, done),
                TAGS.EXECUTOR: self.executor.name,
                **dict(extra or {}),
            },
        )
        return run.id

    def run_node(self, parent: Run_, node: Node, done: dict[str, _Done]) -> StepResult:
        s = node.step
        t0 = time.perf_counter()
        key = step_key(node, done, self.code_memo)
        if s.cache:
            entry = self.cache.get(key)
            if entry is not None and _fresh(entry, s):
                digest = str(entry.outputs["return"]["digest"])
                value = self._load(entry.run_id, digest)
                if value is None:  # the artifact is gone or changed: never a stale hit
                    self.cache.drop([key])
                else:
                    extra = {TAGS.FROM: entry.run_id, TAGS.DIGEST: digest}
                    rid = self._step_run(parent, node, key, "hit", done, extra)
                    self.t.update_run(rid, status=RunStatus.FINISHED.value, end_time=now_ms())
                    self.cache.hit(key)
                    done[node.name] = _Done(value, digest, entry.run_id)
                    return StepResult(
                        name=node.name,
                        step=s.ref,
                        run_id=rid,
                        status="cached",
                        key=key,
                        digest=digest,
                        seconds=time.perf_counter() - t0,
                    )
        rid = self._step_run(parent, node, key, "miss" if s.cache else "off", done)
        kwargs = {k: _substitute(v, lambda o: done[o.node].value) for k, v in node.args.items()}
        attempts: list[dict[str, Any]] = []
        for attempt in range(1, s.retries + 2):
            a0 = time.perf_counter()
            try:
                value = self.executor.call(s, kwargs, s.timeout)
            except Exception as e:
                msg = f"{type(e).__name__}: {e}" if not isinstance(e, RemoteStepError) else str(e)
                attempts.append(
                    {
                        "attempt": attempt,
                        "seconds": round(time.perf_counter() - a0, 4),
                        "error": msg[:2000],
                    }
                )
                if attempt <= s.retries:
                    self.sleep(min(s.backoff * 2 ** (attempt - 1), s.backoff_max))
                    continue
                self.t.set_tags(rid, {TAGS.ATTEMPTS: json.dumps(attempts), TAGS.ERROR: msg[:4000]})
                self.t.set_terminated(rid, RunStatus.FAILED)
                return StepResult(
                    name=node.name,
                    step=s.ref,
                    run_id=rid,
                    status="failed",
                    key=key,
                    attempts=attempt,
                    seconds=time.perf_counter() - t0,
                    error=msg,
                )
            attempts.append({"attempt": attempt, "seconds": round(time.perf_counter() - a0, 4)})
            break
        data = pickle.dumps(value, protocol=5)
        info = self.t.backend.upload_artifact(rid, OUTPUT_PATH, io.BytesIO(data))
        digest = info.digest or "sha256:" + hashlib.sha256(data).hexdigest()
        self.t.set_tags(rid, {TAGS.DIGEST: digest, TAGS.ATTEMPTS: json.dumps(attempts)})
        self.t.set_terminated(rid, RunStatus.FINISHED)
        self.cache.put(
            key, s.ref, rid, {"return": {"path": OUTPUT_PATH, "digest": digest, "size": len(data)}}
        )
        done[node.name] = _Done(value, digest, rid)
        return StepResult(
            name=node.name,
            step=s.ref,
            run_id=rid,
            status="ran",
            key=key,
            digest=digest,
            attempts=len(attempts),
            seconds=time.perf_counter() - t0,
        )

    # -- the whole graph ------------------------------------------------------------------
    def run(
        self, parent: Run_, graph: Graph, resumed: Mapping[str, StepResult] | None = None
    ) -> WorkflowResult:
        clear_caches()  # a package may have changed since the last run in this process
        done: dict[str, _Done] = {}
        results: list[StepResult] = []
        failed: StepResult | None = None
        for node in graph.nodes.values():
            if failed is not None:
                results.append(StepResult(name=node.name, step=node.step.ref, status="skipped"))
                continue
            prev = (resumed or {}).get(node.name)
            if prev is not None and prev.digest and prev.run_id:
                value = self._load(prev.run_id, prev.digest)
                if value is not None:
                    done[node.name] = _Done(value, prev.digest, prev.run_id)
                    results.append(prev.model_copy(update={"status": "resumed", "seconds": 0.0}))
                    continue
            r = self.run_node(parent, node, done)
            results.append(r)
            if r.status == "failed":
                failed = r
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        if failed is not None:
            self.t.set_tags(parent.id, {TAGS.ERROR: f"step {failed.name}: {failed.error}"[:4000]})
        self.t.set_terminated(parent.id, status)
        outputs: dict[str, Any] = {}
        if failed is None:
            value = _substitute(graph.result, lambda o: done[o.node].value)
            # a workflow returning a dict names its outputs; anything else is "return"
            outputs = value if isinstance(graph.result, dict) else {"return": value}
        result = WorkflowResult(
            run_id=parent.id,
            workflow=parent.workflow,
            status=status.value,
            steps=results,
            outputs=outputs,
        )
        if failed is not None:
            raise StepFailed(
                f"workflow {parent.workflow}: step {failed.name} failed after "
                f"{failed.attempts} attempt(s): {failed.error}",
                details={"run_id": parent.id, "step": failed.name, "step_run_id": failed.run_id},
            ).with_result(result)
        return result


@dataclass
class Run_:
    """The parent run as the runner needs it."""

    id: str
    experiment_id: str
    workflow: str


def run_graph(
    tracking: Tracking,
    cache: CacheBackend,
    executor: Executor,
    parent: Run_,
    graph: Graph,
    resumed: Mapping[str, StepResult] | None = None,
) -> WorkflowResult:
    return Runner(tracking, cache, executor).run(parent, graph, resumed)
