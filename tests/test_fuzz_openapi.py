"""Schemathesis fuzzes the server's whole OpenAPI document: no request may answer 5xx.

The document is the one ``create_app(settings)`` serves at ``/api/v1/openapi.json``
on a fresh SQLite home, loaded and driven in-process through the ASGI app:

- every operation alone: positive and negative examples of its own;
- linked operations: schemathesis' state machine follows OpenAPI links (``links()``
  below, added to the document as it loads), so the experiments, runs, datasets,
  models, prompts, deployments, traces and studies one call creates or lists are
  what later calls use. A seeded world (Parquet-backed dataset versions, a model
  version, evaluation runs, traces) gives the lists real ids from the first step,
  and every scenario starts again from it;
- what the fuzzer found, pinned: each of those requests answered 500.

Each response is checked: schemathesis' ``not_a_server_error`` and
``response_schema_conformance``, every 4xx in the one ``{"error": {...}}`` shape,
and a refused request leaves the database as it was. Failures are collected, so one
run lists them all, each with a curl command and the server-side traceback. Both
fuzzing tests assert that every operation of the document was called, naming any
that was not. Generation is derandomized: a run reproduces.
"""

from __future__ import annotations

import json
import os
import sqlite3
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from opsloop.server import create_app
from opsloop.settings import Settings
from opsloop.workflows import step as wf_step
from opsloop.workflows import workflow as wf_workflow

pytestmark = pytest.mark.slow

API = "/api/v1"
STATELESS_EXAMPLES = 6  # per operation and generation mode (positive, negative)
STATEFUL_STEPS = 25  # at most, per scenario
# The linked runs: one state machine per family of rooms (OpenAPI tags), with its
# number of scenarios. A machine over the whole document spends most steps on the
# entry points of every room; per family, its steps go deep into the family's chains.
FAMILIES: list[tuple[list[str], int]] = [
    (["meta", "tracking", "evaluation", "tuning"], 40),
    (["registry", "evaluation", "blobs"], 40),
    (["datasets", "tracking", "evaluation", "blobs"], 40),
    (["prompts", "deployments"], 25),
    (["meta", "tracing", "otlp"], 25),
    (["feedback", "tracing"], 25),
    (["finetune"], 10),
    (["indexes"], 10),
    (["gateway"], 15),
    (["workflows"], 20),
    (["monitoring"], 10),
    (["governance"], 10),
]

# ---------------------------------------------------------------------------- the seeded world

DESCRIPTOR = {"flavor": "pyfunc", "metadata": {"python_model": "fuzz_model:Model"}}
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _right(x: dict[str, Any]) -> str:
    return str(int(str(x["question"])) + 1)


def _half_right(x: dict[str, Any]) -> str:
    return _right(x) if int(str(x["question"])) % 2 else "no"


@wf_step
def fuzz_step(n: int) -> int:
    return n * 2


@wf_workflow
def fuzz_workflow(n: int = 1):  # type: ignore[no-untyped-def]
    return fuzz_step(n)


def seed(settings: Settings, app: Any, tmp: Path) -> dict[str, Any]:
    """Things a fuzzer cannot make from nothing: Parquet-backed versions, models, evaluations."""
    import opsloop
    from opsloop.evaluation import evaluate

    rows = [{"question": str(i), "answer": str(i + 1), "group": "ab"[i % 2]} for i in range(12)]
    with opsloop.Client(settings=settings) as c:
        exp = c.create_experiment("fuzz-seed")
        run = c.create_run(exp.id, params={"p": "1"}, tags={"t": "1"})
        c.log_metrics(run.id, {"m": 0.5, "loss": 1.0}, step=0)
        c.log_metrics(run.id, {"m": 0.7, "loss": 0.5}, step=1)
        c.flush()
        model_dir = tmp / "model"
        model_dir.mkdir()
        (model_dir / "opsloop-model.json").write_text(json.dumps(DESCRIPTOR))
        (model_dir / "weights.bin").write_bytes(b"\x00\x01\x02")
        c.log_artifacts(run.id, model_dir, "model")
        c.datasets.create("fuzz-ds", rows, message="all rows")
        c.datasets.create("fuzz-ds", rows[:-2], message="fewer rows")
        c.datasets.log_input(run.id, "fuzz-ds@1")
        c.registry.register("fuzz-model", f"runs:/{run.id}/model")
        c.registry.set_alias("fuzz-model", "champion", 1)
        for fn in (_right, _half_right):
            evaluate(fn, rows, metrics="exact_match", client=c, n_bootstrap=20)
        c.prompts.create("fuzz-prompt", "Hello {{name}}", labels=["prod"])
        c.prompts.create("fuzz-prompt", [{"role": "user", "content": "Hi {{name}}"}])

    http = TestClient(app, raise_server_exceptions=True)  # no `with`: the fuzzer owns the lifespan

    def post(url: str, body: Any, status: int = 200) -> Any:
        r = http.post(API + url, json=body)
        assert r.status_code == status, (url, r.status_code, r.text)
        return r.json()

    served = {"name": "fuzz-dep", "model_uri": "models:/fuzz-model@champion", "version": 1}
    served.update(model_name="fuzz-model", url="http://127.0.0.1:9")
    deployment = post("/deployments", served, 201)
    # Stopped: a running one reads "lost" once its heartbeat is 15 s old, mid-run.
    post(f"/deployments/{deployment['id']}/stop", {})
    # A fine-tuning job that failed validation (the world's model is no language model),
    # so no request of the fuzzer can start a training worker.
    job = post(
        "/finetune/jobs", {"spec": {"base_model": "models:/fuzz-model/1", "dataset": "x"}}, 201
    )
    assert job["state"] == "failed", job
    t0 = 1_700_000_000_000_000
    spans = [
        {
            "trace_id": f"{i + 1:032x}",
            "span_id": f"{i + 1:016x}",
            "name": "chat",
            "start_us": t0 + i * 1000,
            "end_us": t0 + i * 1000 + 500,
            "attributes": {"gen_ai.request.model": "gpt-4o", "user.id": "u1"},
        }
        for i in range(3)
    ]
    post("/traces/batch", {"spans": spans})
    tuning = post("/experiments", {"name": "fuzz-tuning"}, 201)
    study = {"name": "fuzz-study", "experiment_id": tuning["id"]}
    post("/tuning/studies", {**study, "directions": ["maximize"], "objectives": ["acc"]}, 201)
    r = http.put(
        f"{API}/evaluations/gates/fuzz-model",
        json={"rules": [{"metric": "exact_match", "min": 0.1}]},
    )
    assert r.status_code == 200, r.text
    r = http.put(f"{API}/traces/prices/fuzz-llm", json={"input_per_mtok": 1, "output_per_mtok": 2})
    assert r.status_code == 200, r.text
    r = http.put(f"{API}/feedback/scores/fuzz_score", json={"kind": "numeric", "max_value": 5})
    assert r.status_code == 200, r.text
    post("/feedback/annotations", {"name": "fuzz_score", "value": 3, "trace_id": f"{1:032x}"})
    queue = {"name": "fuzz_queue", "filter": "score.fuzz_score >= 1", "scores": ["fuzz_score"]}
    post("/feedback/queues", queue, 201)
    post("/feedback/queues/fuzz_queue/fill", {})
    post("/tokens", {"user": "fuzz", "role": "editor", "name": "seeded"}, 201)
    # A protected alias with a pending request (forced: the seeded version lacks the gate's
    # metric), so the approvals' lists, decisions and protections have real ids.
    r = http.put(f"{API}/approvals/protections/fuzz-model/production", json={"reviewers": ["x"]})
    assert r.status_code == 200, r.text
    asked = {"model": "fuzz-model", "alias": "production", "version": 1, "force": True}
    post("/approvals", asked, 201)
    post("/indexes", {"name": "fuzz-index", "dim": 4})
    vectors = [[1.0, 0.0, 0.0, float(i)] for i in range(1, 6)]
    items = {"ids": [f"i{i}" for i in range(5)], "vectors": vectors, "texts": ["a b"] * 5}
    post("/indexes/fuzz-index/items", {**items, "metadata": [{"n": i} for i in range(5)]})
    v1 = http.get(f"{API}/dataset-versions/fuzz-ds@1").json()
    with opsloop.Client(settings=settings) as c:
        wf_run = c.workflows.run(
            fuzz_workflow, {"n": 3}
        )  # a workflow run, a step run, a cache entry
    return {
        "run": run.id,
        "data_digest": v1["storage"]["data"]["digest"],
        "ds_version": v1["id"],
        "wf_run": wf_run.run_id,
    }


# ---------------------------------------------------------------------------- OpenAPI links


@dataclass
class Link:
    source: str  # "METHOD /path", the /api/v1 prefix left out
    status: str
    target: str
    parameters: dict[str, Any]  # by parameter name; a target takes those it declares
    body: Any = None
    merge: bool = True  # merge ``body`` into a generated one, or send it as it is


def rb(pointer: str) -> str:
    return f"$response.body#{pointer}"


def req(name: str) -> str:
    return f"$request.path.{name}"


def links(world: dict[str, Any]) -> list[Link]:
    """The links the document lacks: each operation is reached with ids real calls returned.

    Each family has a hub: its list (the seeded world is in it) and its create call
    fan out to its operations; everything else chains from what those returned.
    Few, short chains keep the state machine's rules few, so each gets its turn.
    """
    out: list[Link] = []

    def link(
        source: str,
        status: str,
        targets: str | list[str],
        params: dict[str, Any] | None = None,
        body: Any = None,
        merge: bool = True,
    ) -> None:
        for target in [targets] if isinstance(targets, str) else targets:
            out.append(Link(source, status, target, dict(params or {}), body, merge))

    def exact(
        source: str, status: str, target: str, body: Any, params: dict[str, Any] | None = None
    ) -> None:
        # A body that makes the call succeed, sent as it is: the chain goes on from there.
        link(source, status, target, params, body, merge=False)

    def study(experiment_id: str) -> dict[str, Any]:
        return {
            "name": f"study-{{{experiment_id}}}",
            "experiment_id": experiment_id,
            "directions": ["maximize"],
            "objectives": ["acc"],
        }

    # ------------------------------------------------------------ experiments
    link("GET /health", "200", ["GET /experiments", "GET /traces", "POST /v1/traces"])
    exp_id, exp_name = rb("/experiments/0/id"), rb("/experiments/0/name")
    link(
        "GET /experiments",
        "200",
        [
            "GET /experiments/{experiment_id}",
            "PATCH /experiments/{experiment_id}",
            "DELETE /experiments/{experiment_id}",
            "PUT /experiments/{experiment_id}/tags/{key}",
            "DELETE /experiments/{experiment_id}/tags/{key}",
            "GET /experiments/by-name/{name}",
            "GET /evaluations",
            "GET /tuning/studies",
        ],
        {"experiment_id": exp_id, "name": exp_name},
    )
    exact("GET /experiments", "200", "POST /runs", {"experiment_id": exp_id})
    exact("GET /experiments", "200", "POST /runs/search", {"experiment_ids": [exp_id]})
    exact("GET /experiments", "200", "POST /tuning/studies", study(exp_id))
    link(
        "POST /experiments",
        "201",
        ["GET /experiments/{experiment_id}", "DELETE /experiments/{experiment_id}"],
        {"experiment_id": rb("/id")},
    )
    exact("POST /experiments", "201", "POST /runs", {"experiment_id": rb("/id")})
    exact("POST /experiments", "201", "POST /tuning/studies", study(rb("/id")))
    link(
        "PATCH /experiments/{experiment_id}",
        "200",
        "GET /experiments/by-name/{name}",
        {"name": rb("/name")},
    )
    link(
        "DELETE /experiments/{experiment_id}",
        "204",
        "POST /experiments/{experiment_id}/restore",
        {"experiment_id": req("experiment_id")},
    )

    # ------------------------------------------------------------ runs
    run_id = rb("/runs/0/id")
    link(
        "POST /runs/search",
        "200",
        [
            "GET /runs/{run_id}",
            "PATCH /runs/{run_id}",
            "DELETE /runs/{run_id}",
            "POST /runs/{run_id}/batch",
            "PUT /runs/{run_id}/tags/{key}",
            "DELETE /runs/{run_id}/tags/{key}",
            "GET /runs/{run_id}/metric-history",
            "GET /runs/{run_id}/metric-histories",
            "GET /runs/{run_id}/artifacts",
            "PUT /runs/{run_id}/artifacts/{path}",
            "GET /runs/{run_id}/artifacts/{path}",
            "GET /runs/{run_id}/inputs",
            "POST /runs/{run_id}/restore",
            "GET /evaluations/{run_id}",
        ],
        {
            "run_id": run_id,
            "key": "t",
            "keys": "m",
            "path": "model/opsloop-model.json",
            "recursive": True,
        },
    )
    link(
        "POST /runs/search",
        "200",
        "GET /runs/{run_id}/metric-history",
        {"run_id": run_id, "key": "m"},
    )
    exact("POST /runs/search", "200", "POST /runs/compare", {"run_ids": [run_id, rb("/runs/1/id")]})
    exact(
        "POST /runs/search",
        "200",
        "POST /runs/{run_id}/inputs",
        {"dataset_version": "fuzz-ds@1"},
        {"run_id": run_id},
    )
    link(
        "POST /runs",
        "201",
        [
            "GET /runs/{run_id}",
            "PATCH /runs/{run_id}",
            "DELETE /runs/{run_id}",
            "POST /runs/{run_id}/restore",
            "POST /runs/{run_id}/batch",
            "PUT /runs/{run_id}/tags/{key}",
            "PUT /runs/{run_id}/artifacts/{path}",
            "GET /runs/{run_id}/inputs",
        ],
        {"run_id": rb("/id")},
    )
    exact("POST /runs", "201", "POST /runs/compare", {"run_ids": [rb("/id")]})
    exact(
        "POST /runs",
        "201",
        "POST /runs/{run_id}/inputs",
        {"dataset_version": "fuzz-ds@latest", "context": "eval"},
        {"run_id": rb("/id")},
    )
    link("DELETE /runs/{run_id}", "204", "POST /runs/{run_id}/restore", {"run_id": req("run_id")})
    link(
        "PUT /runs/{run_id}/tags/{key}",
        "204",
        "DELETE /runs/{run_id}/tags/{key}",
        {"run_id": req("run_id"), "key": req("key")},
    )
    link(
        "PUT /runs/{run_id}/artifacts/{path}",
        "201",
        ["GET /runs/{run_id}/artifacts/{path}", "GET /runs/{run_id}/artifacts"],
        {"run_id": req("run_id"), "path": rb("/path")},
    )
    link(
        "GET /runs/{run_id}/artifacts",
        "200",
        "GET /runs/{run_id}/artifacts/{path}",
        {"run_id": req("run_id"), "path": rb("/0/path")},
    )
    evaluation = rb("/evaluations/0/run_id")
    link(
        "GET /evaluations",
        "200",
        [
            "GET /evaluations/{run_id}",
            "GET /runs/{run_id}",
            "PATCH /runs/{run_id}",
            "PUT /runs/{run_id}/tags/{key}",
            "GET /runs/{run_id}/metric-history",
            "GET /runs/{run_id}/metric-histories",
            "GET /runs/{run_id}/artifacts",
            "GET /runs/{run_id}/artifacts/{path}",
            "GET /runs/{run_id}/inputs",
            "DELETE /runs/{run_id}/tags/{key}",
            "POST /runs/{run_id}/restore",
        ],
        {
            "run_id": evaluation,
            "key": "opsloop.eval",
            "keys": "exact_match",
            "path": "eval/examples.jsonl",
            "recursive": True,
        },
    )
    exact(
        "GET /evaluations",
        "200",
        "POST /runs/compare",
        {"run_ids": [evaluation, rb("/evaluations/1/run_id")]},
    )
    exact(
        "GET /evaluations",
        "200",
        "POST /runs/{run_id}/inputs",
        {"dataset_version": "fuzz-ds@2", "context": "eval"},
        {"run_id": evaluation},
    )
    link(
        "GET /evaluations/{run_id}",
        "200",
        "GET /evaluations/compare",
        {
            "runs": f"{{{req('run_id')}}},{{{req('run_id')}}}",
            "metric": "exact_match",
            "n_bootstrap": 10,
        },
    )
    link(
        "GET /evaluations",
        "200",
        "GET /evaluations/compare",
        {
            "runs": f"{{{evaluation}}},{{{rb('/evaluations/1/run_id')}}}",
            "metric": "exact_match",
            "baseline": 0,
            "n_bootstrap": 20,
        },
    )

    # ------------------------------------------------------------ datasets and blobs
    ds_name, ds_version = rb("/datasets/0/name"), rb("/datasets/0/latest_version")
    ref = f"{{{ds_name}}}@{{{ds_version}}}"
    link(
        "GET /datasets",
        "200",
        [
            "GET /datasets/{name}",
            "GET /datasets/{name}/versions",
            "GET /datasets/{name}/versions/{version}",
            "POST /datasets/{name}/versions",
            "GET /dataset-versions/{ref}",
            "GET /dataset-versions/{ref}/rows",
            "GET /dataset-versions/{ref}/diff",
            "POST /dataset-versions/{ref}/splits",
            "GET /dataset-versions/{ref}/children",
            "GET /dataset-versions/{ref}/runs",
        ],
        {
            "name": ds_name,
            "version": ds_version,
            "ref": ref,
            "other": f"{{{ds_name}}}@1",
            "columns": "question",
            "key": "question",
        },
    )
    data_digest = world["data_digest"]
    link(
        "GET /datasets",
        "200",
        ["GET /blobs/{digest}", "HEAD /blobs/{digest}"],
        {"digest": data_digest},
    )
    exact("GET /datasets", "200", "POST /blobs/missing", {"digests": [data_digest, EMPTY_SHA256]})
    # Nothing lists blobs; the empty one is what an upload without a body must name.
    link("GET /datasets", "200", "PUT /blobs/{digest}", {"digest": EMPTY_SHA256})
    link(
        "POST /datasets",
        "201",
        ["GET /datasets/{name}", "GET /datasets/{name}/versions"],
        {"name": rb("/name")},
    )
    link(
        "GET /datasets/{name}/versions",
        "200",
        "GET /datasets/{name}/versions/{version}",
        {"name": req("name"), "version": rb("/versions/0/version")},
    )
    link(
        "GET /datasets/{name}/versions/{version}",
        "200",
        [
            "GET /dataset-versions/{ref}",
            "GET /dataset-versions/{ref}/rows",
            "GET /dataset-versions/{ref}/diff",
            "GET /registry/lineage/datasets/{dataset_version_id}",
        ],
        {"ref": rb("/id"), "dataset_version_id": rb("/id"), "other": "fuzz-ds@1"},
    )
    exact(
        "GET /datasets/{name}/versions/{version}",
        "200",
        "POST /dataset-versions/{ref}/splits",
        {"fractions": {"a": 0.7, "b": 0.3}, "stratify": "group"},
        {"ref": rb("/id")},
    )
    fields = "kind format content_digest row_count size_bytes columns profile sample validation"
    manifest = {k: rb(f"/{k}") for k in [*fields.split(), "status", "storage"]}
    link(
        "GET /dataset-versions/{ref}",
        "200",
        "POST /datasets/{name}/versions",
        {"name": rb("/dataset_name")},
        {"manifest": manifest},
    )
    link(
        "GET /dataset-versions/{ref}",
        "200",
        ["GET /blobs/{digest}", "HEAD /blobs/{digest}"],
        {"digest": rb("/storage/data/digest")},
    )
    exact(
        "GET /dataset-versions/{ref}",
        "200",
        "POST /blobs/missing",
        {"digests": [rb("/storage/data/digest"), EMPTY_SHA256]},
    )
    exact(
        "GET /dataset-versions/{ref}",
        "200",
        "POST /dataset-versions/{ref}/splits",
        {"fractions": {"train": 0.5, "test": 0.5}, "seed": 1},
        {"ref": rb("/id")},
    )
    link(
        "PUT /blobs/{digest}",
        "201",
        ["GET /blobs/{digest}", "HEAD /blobs/{digest}"],
        {"digest": rb("/digest")},
    )

    # ------------------------------------------------------------ registry and gates
    model, latest = rb("/models/0/name"), rb("/models/0/latest_version")
    link(
        "GET /registry/models",
        "200",
        [
            "GET /registry/models/{name}",
            "PATCH /registry/models/{name}",
            "DELETE /registry/models/{name}",
            "PUT /registry/models/{name}/tags/{key}",
            "GET /registry/models/{name}/history",
            "GET /registry/models/{name}/versions",
            "GET /registry/models/{name}/aliases",
            "GET /registry/models/{name}/aliases/{alias}",
            "DELETE /registry/models/{name}/aliases/{alias}",
            "GET /registry/models/{name}/versions/{version}",
            "PATCH /registry/models/{name}/versions/{version}",
            "DELETE /registry/models/{name}/versions/{version}",
            "PUT /registry/models/{name}/versions/{version}/tags/{key}",
            "GET /registry/models/{name}/versions/{version}/card",
            "PUT /registry/models/{name}/versions/{version}/card",
            "GET /registry/models/{name}/versions/{version}/lineage",
            "GET /registry/models/{name}/versions/{version}/files",
            "GET /registry/models/{name}/versions/{version}/files/{path}",
            "DELETE /registry/models/{name}/tags/{key}",
            "DELETE /registry/models/{name}/versions/{version}/tags/{key}",
            "GET /evaluations/gates/{model}",
            "DELETE /evaluations/gates/{model}",
        ],
        {
            "name": model,
            "model": model,
            "version": latest,
            "alias": "champion",
            "key": "fuzz.tag",
            "path": "opsloop-model.json",
        },
    )
    exact(
        "GET /registry/models",
        "200",
        "POST /registry/models/{name}/versions",
        {"source": f"runs:/{world['run']}/model"},
        {"name": model},
    )
    exact(
        "GET /registry/models",
        "200",
        "PUT /registry/models/{name}/aliases/{alias}",
        {"version": latest},
        {"name": model},
    )
    exact(
        "GET /registry/models",
        "200",
        "PUT /evaluations/gates/{model}",
        {"rules": [{"metric": "exact_match", "min": 0.1}]},
        {"model": model},
    )
    link("GET /registry/models", "200", "PUT /blobs/{digest}", {"digest": EMPTY_SHA256})
    exact(
        "GET /registry/models",
        "200",
        "POST /blobs/missing",
        {"digests": [world["data_digest"], EMPTY_SHA256]},
    )
    link(
        "GET /registry/models",
        "200",
        "GET /registry/resolve",
        {"uri": f"models:/{{{model}}}@champion"},
    )
    link(
        "GET /registry/models",
        "200",
        "GET /registry/lineage/datasets/{dataset_version_id}",
        {"dataset_version_id": world["ds_version"]},
    )
    link(
        "POST /registry/models",
        "201",
        [
            "GET /registry/models/{name}",
            "DELETE /registry/models/{name}",
            "PUT /registry/models/{name}/tags/{key}",
            "POST /registry/models/{name}/rename",
        ],
        {"name": rb("/name")},
    )
    exact(
        "POST /registry/models",
        "201",
        "POST /registry/models/{name}/versions",
        {"source": f"runs:/{world['run']}/model"},
        {"name": rb("/name")},
    )
    link(
        "PUT /registry/models/{name}/tags/{key}",
        "204",
        "DELETE /registry/models/{name}/tags/{key}",
        {"name": req("name"), "key": req("key")},
    )
    name, number = rb("/name"), rb("/version")
    link(
        "POST /registry/models/{name}/versions",
        "201",
        [
            "GET /registry/models/{name}/versions/{version}",
            "DELETE /registry/models/{name}/versions/{version}",
            "PUT /registry/models/{name}/versions/{version}/tags/{key}",
            "GET /registry/models/{name}/versions/{version}/files",
            "GET /registry/models/{name}/versions/{version}/lineage",
        ],
        {"name": name, "version": number},
    )
    exact(
        "POST /registry/models/{name}/versions",
        "201",
        "PUT /registry/models/{name}/aliases/{alias}",
        {"version": number},
        {"name": name},
    )
    link(
        "POST /registry/models/{name}/versions",
        "201",
        "GET /registry/resolve",
        {"uri": f"models:/{{{name}}}/{{{number}}}"},
    )
    link(
        "PUT /registry/models/{name}/versions/{version}/tags/{key}",
        "204",
        "DELETE /registry/models/{name}/versions/{version}/tags/{key}",
        {"name": req("name"), "version": req("version"), "key": req("key")},
    )
    link(
        "GET /registry/models/{name}/versions/{version}/lineage",
        "200",
        "GET /registry/lineage/datasets/{dataset_version_id}",
        {"dataset_version_id": rb("/datasets/0/dataset_version_id")},
    )
    link(
        "GET /registry/models/{name}/versions/{version}/files",
        "200",
        "GET /registry/models/{name}/versions/{version}/files/{path}",
        {"name": req("name"), "version": req("version"), "path": rb("/files/0/path")},
    )
    exact(
        "GET /registry/models/{name}/versions/{version}/files",
        "200",
        "POST /blobs/missing",
        {"digests": [rb("/files/0/digest")]},
    )
    link(
        "PUT /registry/models/{name}/aliases/{alias}",
        "200",
        [
            "GET /registry/models/{name}/aliases/{alias}",
            "DELETE /registry/models/{name}/aliases/{alias}",
            "GET /registry/resolve",
        ],
        {
            "name": req("name"),
            "alias": req("alias"),
            "uri": f"models:/{{{req('name')}}}@{{{req('alias')}}}",
        },
    )
    link(
        "GET /registry/models/{name}/aliases",
        "200",
        "GET /registry/models/{name}/aliases/{alias}",
        {"name": req("name"), "alias": rb("/aliases/0/alias")},
    )
    link(
        "PUT /evaluations/gates/{model}",
        "200",
        ["GET /evaluations/gates/{model}", "DELETE /evaluations/gates/{model}"],
        {"model": req("model")},
    )

    # ------------------------------------------------------------ prompts
    prompt, newest = rb("/prompts/0/name"), rb("/prompts/0/latest_version")
    link(
        "GET /prompts",
        "200",
        [
            "GET /prompts/{name}",
            "GET /prompts/{name}/versions",
            "POST /prompts/{name}/versions",
            "GET /prompts/{name}/versions/{version}",
            "GET /prompts/{name}/labels",
            "GET /prompts/{name}/labels/{label}",
            "DELETE /prompts/{name}/labels/{label}",
            "GET /prompts/{name}/diff",
        ],
        {"name": prompt, "version": newest, "label": "prod", "a": newest, "b": "1"},
    )
    exact(
        "GET /prompts",
        "200",
        "PUT /prompts/{name}/labels/{label}",
        {"version": newest},
        {"name": prompt},
    )
    exact(
        "GET /prompts",
        "200",
        "POST /prompts/{name}/render",
        {"label": "prod", "variables": {"name": "fuzz"}},
        {"name": prompt},
    )
    name, number = rb("/name"), rb("/version")
    link(
        "POST /prompts/{name}/versions",
        "201",
        ["GET /prompts/{name}/versions/{version}", "GET /prompts/{name}/diff"],
        {"name": name, "version": number, "a": "1", "b": number},
    )
    exact(
        "POST /prompts/{name}/versions",
        "201",
        "PUT /prompts/{name}/labels/{label}",
        {"version": number},
        {"name": name},
    )
    exact(
        "POST /prompts/{name}/versions",
        "201",
        "POST /prompts/{name}/render",
        {"version": number, "variables": {"name": "fuzz"}},
        {"name": name},
    )
    link(
        "PUT /prompts/{name}/labels/{label}",
        "200",
        ["GET /prompts/{name}/labels/{label}", "DELETE /prompts/{name}/labels/{label}"],
        {"name": req("name"), "label": req("label")},
    )
    link(
        "GET /prompts/{name}/labels",
        "200",
        "GET /prompts/{name}/labels/{label}",
        {"name": req("name"), "label": rb("/labels/0/label")},
    )

    # ------------------------------------------------------------ deployments
    deployment = [
        "GET /deployments/{deployment_id}",
        "POST /deployments/{deployment_id}/heartbeat",
        "POST /deployments/{deployment_id}/stop",
    ]
    link("GET /deployments", "200", deployment, {"deployment_id": rb("/deployments/0/id")})
    link("POST /deployments", "201", deployment, {"deployment_id": rb("/id")})

    # ------------------------------------------------------------ governance
    gov_token = ["GET /tokens/{token_id}", "POST /tokens/{token_id}/revoke"]
    link("POST /tokens", "201", gov_token, {"token_id": rb("/token/id")})
    link("GET /tokens", "200", gov_token, {"token_id": rb("/tokens/0/id")})
    link("GET /tokens", "200", ["GET /audit", "GET /audit/verify", "GET /whoami"])
    decide = [
        "GET /approvals/{approval_id}",
        "POST /approvals/{approval_id}/approve",
        "POST /approvals/{approval_id}/reject",
    ]
    link("POST /approvals", "201", decide, {"approval_id": rb("/id")})
    link("GET /approvals", "200", decide, {"approval_id": rb("/approvals/0/id")})
    link("GET /tokens", "200", ["GET /approvals", "GET /approvals/protections"])
    link("GET /tokens", "200", ["GET /retention", "POST /retention/run"])
    link(
        "GET /approvals/protections",
        "200",
        [
            "PUT /approvals/protections/{model}/{alias}",
            "DELETE /approvals/protections/{model}/{alias}",
        ],
        {"model": rb("/protections/0/model"), "alias": rb("/protections/0/alias")},
    )

    # ------------------------------------------------------------ gateway
    gw_key = [
        "GET /gateway/keys/{key_id}",
        "POST /gateway/keys/{key_id}/revoke",
        "PUT /gateway/keys/{key_id}/limits",
    ]
    link("POST /gateway/keys", "201", gw_key, {"key_id": rb("/key/id")})
    link("GET /gateway/keys", "200", gw_key, {"key_id": rb("/keys/0/id")})
    gw_route = ["GET /gateway/routes/{name}", "DELETE /gateway/routes/{name}"]
    link("PUT /gateway/routes/{name}", "200", gw_route, {"name": req("name")})
    link("GET /gateway/routes", "200", gw_route, {"name": rb("/routes/0/name")})
    link("PUT /gateway/teams/{name}", "200", "GET /gateway/teams/{name}", {"name": req("name")})
    route_spec = {"upstreams": [{"url": "http://127.0.0.1:9/v1"}], "cache": {"ttl_s": 5}}
    exact("GET /gateway/routes", "200", "PUT /gateway/routes/{name}", route_spec, {"name": "r1"})
    exact(
        "GET /gateway/teams",
        "200",
        "PUT /gateway/teams/{name}",
        {"daily_tokens": 9},
        {"name": "t1"},
    )
    link("GET /gateway/keys", "200", "GET /gateway/usage", {"group_by": "route"})
    link("GET /gateway/teams", "200", "GET /gateway/teams/{name}", {"name": rb("/teams/0/name")})

    # ------------------------------------------------------------ workflows
    wf_key = "ab" * 32
    link(
        "GET /workflows/runs",
        "200",
        ["GET /workflows/runs/{run_id}", "GET /workflows/cache", "GET /workflows/triggers"],
        {"run_id": rb("/runs/0/id")},
    )
    link("GET /workflows/runs", "200", "GET /workflows/events", {"limit": 5})
    exact(
        "GET /workflows/cache",
        "200",
        "PUT /workflows/cache/{key}",
        {
            "step": "fuzz:step",
            "run_id": world["wf_run"],
            "outputs": {"return": {"path": "p", "digest": EMPTY_SHA256, "size": 0}},
        },
        {"key": wf_key},
    )
    link(
        "PUT /workflows/cache/{key}",
        "204",
        ["GET /workflows/cache/{key}", "POST /workflows/cache/{key}/hits"],
        {"key": req("key")},
    )
    exact("GET /workflows/cache", "200", "POST /workflows/cache/drop", {"keys": [wf_key]})
    exact(
        "GET /workflows/triggers",
        "200",
        "POST /workflows/triggers",
        {
            "name": "fuzz-trigger",
            "workflow": "tests.test_fuzz_openapi:fuzz_workflow",
            "kind": "event",
            "spec": {"event": "monitoring.alert"},
        },
    )
    link(
        "POST /workflows/triggers",
        "201",
        "DELETE /workflows/triggers/{name}",
        {"name": rb("/name")},
    )
    exact(
        "GET /workflows/events",
        "200",
        "POST /workflows/events",
        {"event": "monitoring.alert", "key": "fuzz-1", "payload": {"monitor": "fuzz"}},
    )

    # ------------------------------------------------------------ monitoring
    mon = [
        "GET /monitoring/monitors/{name}",
        "DELETE /monitoring/monitors/{name}",
        "POST /monitoring/monitors/{name}/run",
    ]
    link("POST /monitoring/monitors", "201", mon, {"name": rb("/name")})
    link("GET /monitoring/monitors", "200", mon, {"name": rb("/monitors/0/name")})
    exact(
        "GET /monitoring/monitors",
        "200",
        "POST /monitoring/monitors",
        {"name": "m1", "deployment": "d", "metric": "error_rate", "threshold": 0.1},
    )
    link("GET /monitoring/monitors", "200", "GET /monitoring/alerts", {"state": "firing"})
    link("GET /monitoring/monitors", "200", "GET /monitoring/scores", {"name": "thumbs"})
    link("GET /monitoring/monitors", "200", "GET /monitoring/usage", {"route": "chat"})
    link(
        "GET /monitoring/monitors",
        "200",
        [
            "GET /monitoring/deployments",
            "GET /monitoring/metrics",
            "GET /monitoring/predictions",
            "GET /monitoring/summary",
            "GET /monitoring/performance",
        ],
        {"deployment": "d"},
    )
    exact(
        "GET /monitoring/deployments",
        "200",
        "POST /monitoring/ingest",
        {
            "predictions": [
                {"request_id": "r1", "deployment": "d", "inputs": {"x": 1}, "output": 1}
            ],
            "rollups": [{"minute": 1_700_000_000_000, "deployment": "d", "requests": 1}],
        },
    )
    exact(
        "GET /monitoring/deployments",
        "200",
        "POST /monitoring/labels",
        {"labels": [{"request_id": "r1", "label": 1}]},
    )

    # ------------------------------------------------------------ finetune
    job = [
        "GET /finetune/jobs/{job_id}",
        "POST /finetune/jobs/{job_id}/cancel",
        "POST /finetune/jobs/{job_id}/resume",
    ]
    link("GET /finetune/jobs", "200", job, {"job_id": rb("/jobs/0/id")})
    link("POST /finetune/jobs", "201", job, {"job_id": rb("/id")})

    # ------------------------------------------------------------ vector indexes
    index_ops = [
        "GET /indexes/{name}",
        "DELETE /indexes/{name}",
        "POST /indexes/{name}/items",
        "POST /indexes/{name}/items/delete",
        "POST /indexes/{name}/search",
    ]
    link("GET /indexes", "200", [*index_ops, "POST /indexes"], {"name": rb("/indexes/0/name")})
    link("POST /indexes", "200", index_ops, {"name": rb("/name")})

    # ------------------------------------------------------------ tracing
    trace = ["GET /traces/{trace_id}", "DELETE /traces/{trace_id}", "GET /traces/stats"]
    link("GET /traces", "200", trace, {"trace_id": rb("/traces/0/id")})
    link(
        "POST /traces/batch",
        "200",
        [*trace, "GET /traces"],
        {"trace_id": "$request.body#/spans/0/trace_id"},
    )
    link(
        "GET /traces/prices",
        "200",
        ["PUT /traces/prices/{model}", "DELETE /traces/prices/{model}"],
        {"model": rb("/prices/0/model")},
    )
    link(
        "PUT /traces/prices/{model}",
        "200",
        ["DELETE /traces/prices/{model}", "GET /traces/prices"],
        {"model": req("model")},
    )

    # ------------------------------------------------------------ feedback
    score_ops = [
        "GET /feedback/scores/{name}",
        "GET /feedback/scores/{name}/agreement",
        "DELETE /feedback/scores/{name}",
    ]
    link("GET /feedback/scores", "200", score_ops, {"name": rb("/scores/0/name")})
    link("PUT /feedback/scores/{name}", "200", score_ops, {"name": req("name")})
    annotation_ops = [
        "GET /feedback/annotations/{annotation_id}",
        "DELETE /feedback/annotations/{annotation_id}",
    ]
    link(
        "GET /feedback/annotations",
        "200",
        annotation_ops,
        {"annotation_id": rb("/annotations/0/id")},
    )
    link("POST /feedback/annotations", "200", annotation_ops, {"annotation_id": rb("/id")})
    exact(
        "GET /traces",
        "200",
        "POST /feedback/annotations",
        {"name": "thumbs", "value": True, "trace_id": rb("/traces/0/id")},
    )
    link(
        "GET /feedback/annotations",
        "200",
        ["GET /feedback/exports", "POST /feedback/training-data"],
        {"trace_id": rb("/annotations/0/trace_id")},
    )
    exact(
        "GET /feedback/annotations",
        "200",
        "POST /feedback/exports",
        {"dataset_version_id": rb("/annotations/0/id"), "kind": "sft", "links": []},
    )
    exact(
        "GET /feedback/scores",
        "200",
        "PUT /feedback/scores/{name}",
        {"kind": "boolean"},
        {"name": "fuzz_defined"},
    )
    queue_ops = [
        "GET /feedback/queues/{name}",
        "DELETE /feedback/queues/{name}",
        "POST /feedback/queues/{name}/fill",
        "POST /feedback/queues/{name}/assign",
        "POST /feedback/queues/{name}/claim",
        "GET /feedback/queues/{name}/items",
        "GET /feedback/queues/{name}/progress",
    ]
    link("GET /feedback/queues", "200", queue_ops, {"name": rb("/queues/0/name")})
    link("POST /feedback/queues", "201", queue_ops, {"name": rb("/name")})
    exact(
        "GET /feedback/scores",
        "200",
        "POST /feedback/queues",
        {"name": "fuzz_q2", "filter": "score.thumbs is null", "scores": ["thumbs"]},
    )
    link(
        "GET /feedback/queues/{name}/items",
        "200",
        [
            "POST /feedback/queues/{name}/items/{trace_id}/complete",
            "POST /feedback/queues/{name}/items/{trace_id}/skip",
        ],
        {"name": req("name"), "trace_id": rb("/items/0/trace_id")},
    )
    link(
        "POST /feedback/queues/{name}/claim",
        "200",
        [
            "POST /feedback/queues/{name}/items/{trace_id}/complete",
            "POST /feedback/queues/{name}/items/{trace_id}/skip",
        ],
        {"name": req("name"), "trace_id": rb("/item/trace_id")},
    )

    # ------------------------------------------------------------ tuning
    study_ops = [
        "GET /tuning/studies/{name}",
        "GET /tuning/studies/{name}/summary",
        "DELETE /tuning/studies/{name}",
    ]
    link("GET /tuning/studies", "200", study_ops, {"name": rb("/studies/0/name")})
    for status in ("200", "201"):  # get or create
        link("POST /tuning/studies", status, study_ops, {"name": rb("/study/name")})
    return out


def add_links(doc: dict[str, Any], world: dict[str, Any]) -> None:
    """Write ``links(world)`` into the document's responses."""
    paths = doc["paths"]

    def find(label: str) -> dict[str, Any]:
        method, path = label.split(" ", 1)
        for candidate in (API + path, path):
            op = paths.get(candidate, {}).get(method.lower())
            if op is not None:
                return op
        raise AssertionError(f"no operation {label} in the document")

    for n, link in enumerate(links(world)):
        source, target = find(link.source), find(link.target)
        declared = {p["name"]: p["in"] for p in target.get("parameters", [])}
        params = {f"{declared[k]}.{k}": v for k, v in link.parameters.items() if k in declared}
        definition: dict[str, Any] = {"operationId": target["operationId"]}
        if params:
            definition["parameters"] = params
        if link.body is not None:
            definition["requestBody"] = link.body
            if not link.merge:
                definition["x-schemathesis"] = {"merge_body": False}
        # A success the document does not list (201 from a get-or-create) gets its entry here.
        response = source["responses"].setdefault(link.status, {"description": "Success"})
        response.setdefault("links", {})[f"{n}-{target['operationId']}"] = definition


# ---------------------------------------------------------------------------- checks


class CrashRecorder:
    """The app as a real server runs it: an exception raised after the 500 went out is logged.

    Starlette re-raises an unhandled exception once its handler has answered 500
    (uvicorn logs it); here its opsloop frames are kept for the failure report.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.crashes: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if not started:
                raise
            frames = [
                f"  {f.filename.rsplit('/src/', 1)[-1]}:{f.lineno} {f.name}: {f.line}"
                for f in traceback.extract_tb(exc.__traceback__)
                if "/opsloop/" in f.filename
            ]
            self.crashes.append("\n".join([*frames, f"{type(exc).__name__}: {exc}"]))

    def take(self) -> str:
        out = "\n".join(self.crashes)
        self.crashes.clear()
        return out


class SQLiteFile:
    """The app's database file, seen from a connection of its own.

    ``version()`` is SQLite's ``data_version``, which moves when another connection
    commits. ``restore()`` puts back what ``snapshot()`` saved (the seeded world).
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.saved = sqlite3.connect(":memory:", check_same_thread=False)

    def version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def snapshot(self) -> None:
        self.conn.backup(self.saved)

    def restore(self) -> None:
        self.saved.backup(self.conn)

    def close(self) -> None:
        self.conn.close()
        self.saved.close()


def error_shape(response: Any) -> str | None:
    """What is wrong with a 4xx body, or None when it is the one error shape."""
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return f"not {{'error': {{...}}}}: {str(body)[:200]}"
    err = body["error"]
    if not (set(err) <= {"code", "message", "details"} and {"code", "message"} <= set(err)):
        return f"error keys {sorted(err)}"
    if not (isinstance(err["code"], str) and err["code"].isupper()):
        return f"error code {err['code']!r}"
    if not (isinstance(err["message"], str) and err["message"]):
        return "no error message"
    return None


@dataclass
class Harness:
    """Checks every response and keeps what it saw: calls, successes and failures by kind."""

    schema: Any
    server: CrashRecorder
    db: SQLiteFile
    calls: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)

    def check(self, case: Any, response: Any, version_before: int) -> None:
        label, status = case.operation.label, response.status_code
        self.calls[label] += 1
        self.ok[label] += 200 <= status < 300
        crash = self.server.take()
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except FailureGroup as exc:
            self.failures.setdefault(f"{label} {status}", f"{label} -> {status}\n{exc}\n{crash}")
        # HEAD answers no body; OTLP answers errors as an OTLP Status, as its specification says.
        if 400 <= status < 500 and case.method != "HEAD" and not label.endswith(" /v1/traces"):
            why = error_shape(response)
            if why:
                self.failures.setdefault(
                    f"{label} {status} shape",
                    f"{label} -> {status}: {why}\n{case.as_curl_command()}",
                )
        if status >= 400 and self.db.version() != version_before:
            self.failures.setdefault(
                f"{label} {status} wrote",
                f"{label} -> {status} changed the database: {response.text[:300]}\n"
                f"{case.as_curl_command()}",
            )

    def report(self) -> None:
        every = {op.label for op in operations(self.schema)}
        summary = (
            f"{sum(self.calls.values())} calls; never answered 2xx: {sorted(every - set(self.ok))}"
        )
        failures = list(self.failures.values())
        assert not failures, f"{len(failures)} failure(s) in {summary}\n\n" + "\n\n".join(failures)
        never = sorted(every - set(self.calls))
        assert not never, f"operations never called (add or fix a link): {never}; {summary}"


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def load_schema(app: Any, world: dict[str, Any]) -> Any:
    """The app's own document, read through the ASGI app, with ``links(world)`` added."""

    @schemathesis.hook
    def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
        add_links(raw_schema, world)

    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all"},  # positive and negative
            # The links are the ones above, not inferred ones, so every run follows the same graph.
            "phases": {"stateful": {"inference": {"algorithms": []}}},
        }
    )
    try:
        return schemathesis.openapi.from_asgi(f"{API}/openapi.json", app, config=config)
    finally:
        schemathesis.hooks.unregister(before_load_schema)


@dataclass
class Fuzzed:
    schema: Any
    server: CrashRecorder
    db: SQLiteFile
    world: dict[str, Any]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The app on a fresh home, seeded, its document loaded with the links."""
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = Settings(home=tmp / "home")
    # The fuzzer checks the API and that a refused request writes nothing: the background
    # writers (workflows' dispatcher, monitoring's scheduler) stay off.
    switches = ("OPSLOOP_WORKFLOWS_DISPATCH", "OPSLOOP_MONITORING_SCHEDULER")
    saved = {k: os.environ.get(k) for k in switches}
    os.environ.update(dict.fromkeys(switches, "0"))
    app = create_app(settings)
    world = seed(settings, app, tmp)
    server = CrashRecorder(app)
    schema = load_schema(server, world)
    db = SQLiteFile(Path(settings.resolved_database_url.removeprefix("sqlite:///")))
    db.snapshot()
    try:
        yield Fuzzed(schema, server, db, world)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        db.close()
        shutdown_lifespans()  # the app's lifespan, started by the first call, disposes its engine


@pytest.fixture
def harness(fuzzed: Fuzzed) -> Harness:
    fuzzed.db.restore()
    return Harness(fuzzed.schema, fuzzed.server, fuzzed.db)


# ---------------------------------------------------------------------------- the tests


def test_every_operation_alone_never_answers_5xx(harness: Harness) -> None:
    h = harness
    for op in operations(h.schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=STATELESS_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                before = h.db.version()
                h.check(case, case.call(), before)

            try:
                call()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body (GET /health).
                assert mode is GenerationMode.NEGATIVE, op.label
    h.report()


def test_linked_operations_never_answer_5xx(harness: Harness) -> None:
    h = harness
    for tags, scenarios in FAMILIES:
        machine: Any = h.schema.include(tag=tags).as_state_machine()

        class Scenario(machine):  # type: ignore[misc, valid-type]
            def setup(self) -> None:
                h.db.restore()  # every scenario starts from the seeded world, so runs replay

            def before_call(self, case: Any) -> None:
                self.version_before = h.db.version()

            def validate_response(self, response: Any, case: Any, *args: Any, **kw: Any) -> None:
                h.check(case, response, self.version_before)

        Scenario.run(
            settings=hypothesis.settings(
                max_examples=scenarios,
                stateful_step_count=STATEFUL_STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )
    h.report()


def test_what_the_fuzzer_found_stays_fixed(fuzzed: Fuzzed) -> None:
    """Each of these answered 500 (some after storing what no reply could hold)."""
    fuzzed.db.restore()
    http = TestClient(fuzzed.server.app, raise_server_exceptions=False)
    big = 2**70
    source = f"runs:/{fuzzed.world['run']}/model"
    v1 = http.get(f"{API}/dataset-versions/fuzz-ds@1").json()
    manifest = {k: v1[k] for k in ("format", "content_digest", "row_count", "size_bytes")}
    manifest.update(columns=v1["columns"], profile={}, sample={}, storage=v1["storage"])
    experiment = http.get(f"{API}/experiments").json()["experiments"][0]["id"]
    evaluation = http.get(f"{API}/evaluations").json()["evaluations"][0]["run_id"]
    running = {"name": "d", "model_uri": "m", "model_name": "m", "url": "u"}
    served = http.post(f"{API}/deployments", json=running).json()["id"]
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/traces/stats", {"params": {"min_latency_ms": 5.9e16}}),
        ("GET", "/traces", {"params": {"since_ms": 2**62}}),
        ("POST", "/deployments", {"json": {**running, "pid": big}}),
        ("POST", f"/deployments/{served}/heartbeat", {"json": {"version": big}}),
        ("POST", "/datasets/fuzz-ds/versions", {"json": {"manifest": {**manifest, "storage": {}}}}),
        (
            "POST",
            "/datasets/x/versions",
            {"json": {"manifest": {**manifest, "profile": {"n": big}}}},
        ),
        ("GET", "/registry/models/fuzz-model/history", {"params": {"before_id": big}}),
        ("GET", f"/evaluations/{evaluation}", {"params": {"offset": big}}),
        ("GET", "/dataset-versions/fuzz-ds@1/rows", {"params": {"offset": big}}),
        ("POST", "/prompts/p/versions", {"json": {"template": "x", "metadata": {"n": big}}}),
        (
            "POST",
            "/registry/models/m/versions",
            {"json": {"source": source, "options": {"n": big}}},
        ),
        (
            "POST",
            "/registry/models/m/versions",
            {"json": {"source": source, "signature": {"inputs": 5}}},
        ),
        (
            "POST",
            "/registry/models/m/versions",
            {
                "json": {
                    "source": source,
                    "signature": {"inputs": [{"name": "x", "type": "tensor", "shape": [big]}]},
                }
            },
        ),
        (
            "POST",
            "/tuning/studies",
            {
                "json": {
                    "name": "s",
                    "experiment_id": experiment,
                    "directions": ["maximize"],
                    "objectives": ["acc"],
                    "space": {"n": {"type": "int", "low": 0, "high": big}},
                }
            },
        ),
    ]
    for method, path, kw in cases:
        before = fuzzed.db.version()
        r = http.request(method, API + path, **kw)
        assert (r.status_code, error_shape(r)) == (400, None), (method, path, r.text)
        assert fuzzed.db.version() == before, (method, path, "wrote to the database")
    # A file name outside plain ASCII downloads as RFC 5987 filename*.
    url = f"{API}/runs/{fuzzed.world['run']}/artifacts/d/ünï code.bin"
    assert http.put(url, content=b"\x00").status_code == 201
    r = http.get(url)
    assert r.status_code == 200 and r.content == b"\x00"
    expected = "attachment; filename*=utf-8''%C3%BCn%C3%AF%20code.bin"
    assert r.headers["content-disposition"] == expected
