"""Fine-tuning jobs on the bundled SmolLM2: real TRL training, a real SIGKILL, real resume.

The base model is registered once for the module; jobs train a few steps on a
handful of short rows (these run on 2 busy CPU cores). Workers are real
processes: the kill test sends SIGKILL to one mid-training and resumes the
job from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import opsloop
from opsloop.errors import Conflict, InvalidArgument, NotFound
from opsloop.finetune import FinetuneService, finetune_service
from opsloop.settings import Settings
from tests._procs import wait_until
from tests.conftest import live_server

pytest.importorskip("trl")
pytest.importorskip("gguf")

QA = [{"prompt": f"What is {i} plus {i}?", "completion": f"{2 * i}."} for i in range(8)]
PREFS = [
    {"prompt": f"Say the number {i}.", "chosen": f"{i}", "rejected": f"Never {i + 1}!"}
    for i in range(6)
]


@dataclass
class Env:
    client: opsloop.Client
    cache: Path
    home: Path

    @property
    def svc(self) -> FinetuneService:
        return self.client.context.room(finetune_service)

    def spec(self, **over: Any) -> dict[str, Any]:
        """Tiny settings: a few steps of one short row each."""
        base: dict[str, Any] = {
            "base_model": "models:/smol@prod",
            "dataset": "qa",
            "max_steps": 3,
            "batch_size": 1,
            "max_length": 48,
            "lora_r": 4,
            "checkpoint_every": 1,
            "cache_dir": str(self.cache),
        }
        return {**base, **over}


def _live(ft: Any, job_id: str) -> Any:
    """The job, failing the test at once if it finished (a wait would only time out)."""
    job = ft.get(job_id)
    assert not job.done, f"job {job_id} ended {job.state}: {job.error}"
    return job


@pytest.fixture(scope="module")
def env(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from opsloop.registry import bundled_gguf

    home = tmp_path_factory.mktemp("ft-home")
    client = opsloop.Client(settings=Settings(home=home, flush_interval_s=60.0))
    mv = client.registry.register(
        "smol",
        bundled_gguf("smollm2"),
        flavor="transformers",
        options={"model_id": "SmolLM2-135M-Instruct", "max_new_tokens": 4},
    )
    client.registry.set_alias("smol", "prod", mv.version)
    client.datasets.create("qa", QA)
    client.datasets.create("prefs", PREFS)
    yield Env(client, model_cache, home)
    for job in client.finetune.list():  # no worker outlives the module
        if not job.done:
            client.finetune.cancel(job.id)
    client.close()


def test_bad_jobs_are_refused_or_failed_on_every_backend(backend: Any) -> None:
    ft = backend.client.finetune
    with pytest.raises(InvalidArgument, match="base_model"):
        ft.submit(dataset="qa")
    with pytest.raises(InvalidArgument, match="max_steps"):
        ft.submit(base_model="models:/m", dataset="d", max_steps=0)
    with pytest.raises(InvalidArgument, match="columns must be different"):
        ft.submit(base_model="models:/m", dataset="d", completion_column="prompt")
    with pytest.raises(InvalidArgument, match="unknown job state"):
        ft.list(state="sleeping")
    if backend.remote:
        with pytest.raises(InvalidArgument, match="cache_dir cannot be set through the API"):
            ft.submit(base_model="models:/m", dataset="d", cache_dir="/etc")
    assert ft.list() == []  # nothing stored for malformed input

    job = ft.submit(base_model="models:/nope@prod", dataset="nothing", max_steps=2)
    assert job.state == "failed" and job.error and "NOT_FOUND" in job.error
    assert job.output_model == "nope-sft" and job.attempts == 0 and job.run_id
    assert [j.id for j in ft.list()] == [job.id] == [j.id for j in ft.list(state="failed")]
    assert ft.list(state="running") == []
    run = backend.client.get_run(job.run_id)
    assert run.status == "FAILED" and run.tags["opsloop.finetune.job"] == job.id
    with pytest.raises(Conflict):
        ft.cancel(job.id)  # already finished
    with pytest.raises(Conflict, match="failed before it trained"):
        ft.resume(job.id)
    with pytest.raises(NotFound):
        ft.get("0" * 32)
    with pytest.raises(NotFound):
        ft.cancel("0" * 32)
    assert ft.get(job.id) == job


def test_sft_job_survives_sigkill_resumes_from_its_checkpoint_and_registers_an_adapter(
    env: Env,
) -> None:
    ft = env.client.finetune
    job = ft.submit(env.spec(output_model="smol-qa", cost_per_hour=1.5))
    assert job.state == "queued" and job.pid is not None
    assert job.spec["base_model"] == "models:/smol/1" and job.spec["dataset"] == "qa@1"
    assert job.spec["completion_column"] == "completion"
    wait_until(lambda: _live(ft, job.id).state == "running", 300, "the worker to start")

    # A second job waits its turn (one trains at a time per home); cancelled while queued,
    # its worker leaves without training.
    other = ft.submit(env.spec(output_model="smol-other"))
    assert other.state == "queued"
    assert ft.cancel(other.id).state == "cancelled"
    wait_until(lambda: not env.svc.worker_alive(ft.get(other.id)), 60, "the queued worker to exit")
    assert ft.get(other.id).attempts == 0

    # SIGKILL the worker once it saved a checkpoint: the job still reads running, its worker is gone.
    running = wait_until(
        lambda: (j := _live(ft, job.id)).checkpoint_step and j, 600, "a first checkpoint"
    )
    os.kill(running.pid, signal.SIGKILL)
    wait_until(lambda: not env.svc.worker_alive(ft.get(job.id)), 30, "the worker to die")
    killed = ft.get(job.id)
    assert killed.state == "running" and killed.checkpoint_step >= 1
    resumed = ft.resume(job.id)
    assert resumed.state in ("queued", "running") and resumed.pid != killed.pid
    with pytest.raises(Conflict, match="is alive"):
        ft.resume(job.id)  # its new worker runs

    done = ft.wait(job.id, timeout_s=900)
    assert done.state == "succeeded", done.error
    # It went on from the checkpoint (global step and optimizer state), not from step 0.
    assert done.resumed_from_step is not None
    assert done.resumed_from_step >= killed.checkpoint_step >= 1
    assert done.attempts == 2 and done.step == 3 and done.checkpoint_step == 3
    state = json.loads(
        (
            env.home / "finetune" / job.id / "checkpoints" / "checkpoint-3" / "trainer_state.json"
        ).read_text()
    )
    assert state["global_step"] == 3

    # It is a run: loss curve, learning rate, throughput, wall time and cost.
    run = env.client.get_run(done.run_id)
    assert run.status == "FINISHED"
    assert run.tags["opsloop.finetune.result"] == "models:/smol-qa/1"
    assert int(run.tags["opsloop.finetune.resumed_from_step"]) == done.resumed_from_step
    for key in (
        "loss",
        "learning_rate",
        "tokens_per_second",
        "wall_time_s",
        "cost_usd",
        "job_hooks_s",
    ):
        assert key in run.metrics, key
    loss = env.client.get_metric_history(done.run_id, "loss")
    assert set(loss.steps) == {1, 2, 3}
    wall = run.metrics["wall_time_s"].value
    assert wall == pytest.approx(done.elapsed_s, rel=0.05)
    assert run.metrics["cost_usd"].value == pytest.approx(wall / 3600 * 1.5, rel=0.05)
    assert run.params["max_steps"] == "3" and run.params["base_model"] == "models:/smol/1"
    assert [i.dataset_name for i in env.client.datasets.run_inputs(done.run_id)] == ["qa"]

    # The result: a version holding the adapter alone, pinned to its base version.
    mv = env.client.registry.resolve(done.result_uri)
    assert mv.flavor == "peft" and mv.metadata["base_model"] == "models:/smol/1"
    assert mv.source_run_id == done.run_id
    assert "adapter_model.safetensors" in mv.files and "adapter_config.json" in mv.files
    assert not any(p.startswith("model") for p in mv.files) and mv.size < 5_000_000

    # It loads through the registry (base + adapter) and changes the model; merging
    # registers a full model that computes the same.
    import torch

    from opsloop.registry import LoadedCausalLM, load_model

    adapted = load_model(done.result_uri, client=env.client, cache_dir=env.cache)
    base = load_model("models:/smol/1", client=env.client, cache_dir=env.cache)
    assert isinstance(adapted, LoadedCausalLM) and isinstance(base, LoadedCausalLM)
    enc = base.tokenizer(["What is 3 plus 3?"], return_tensors="pt")
    with torch.inference_mode():
        a = adapted.model(**enc).logits
        b = base.model(**enc).logits
    assert (a - b).abs().max().item() > 1e-4
    del base
    merged_mv = ft.merge(done.result_uri, "smol-qa-merged", cache_dir=env.cache)
    assert merged_mv.flavor == "transformers"
    assert merged_mv.tags["opsloop.finetune.merged_from"] == "models:/smol-qa/1"
    merged = load_model(merged_mv.uri, client=env.client, cache_dir=env.cache)
    assert isinstance(merged, LoadedCausalLM)
    with torch.inference_mode():
        m = merged.model(**enc).logits
    assert (m - a).abs().max().item() < 1e-3
    del merged

    # `opsloop serve` serves the adapter version (base + adapter through the registry).
    import httpx

    from tests.test_serving import ThreadServer

    settings = env.client.context.settings
    serve_opts = {"cache_dir": env.cache, "device": "cpu", "poll_interval_s": 0}
    with ThreadServer(done.result_uri, settings, **serve_opts) as srv:
        srv.wait_ready(300)
        meta = httpx.get(f"{srv.url}/v1/metadata").json()
        assert meta["flavor"] == "peft" and meta["version"] == 1
        reply = httpx.post(
            f"{srv.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "What is 3 plus 3?"}], "max_tokens": 3},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] >= 1
    with pytest.raises(InvalidArgument, match="merge takes a peft adapter"):
        ft.merge("models:/smol/1", "x")
    with pytest.raises(Conflict):
        ft.resume(job.id)  # succeeded


def test_cancel_stops_a_training_worker(env: Env) -> None:
    ft = env.client.finetune
    job = ft.submit(env.spec(max_steps=500, checkpoint_every=1000, output_model="smol-long"))
    wait_until(lambda: _live(ft, job.id).step >= 1, 600, "the first step")
    cancelled = ft.cancel(job.id)
    assert cancelled.state == "cancelled"
    wait_until(lambda: not env.svc.worker_alive(ft.get(job.id)), 120, "the worker to stop")
    after = ft.get(job.id)
    assert after.state == "cancelled" and after.result_version is None and after.step < 500
    assert env.client.get_run(after.run_id).status == "KILLED"
    with pytest.raises(NotFound):
        env.client.registry.resolve("models:/smol-long")
    with pytest.raises(Conflict):
        ft.cancel(job.id)


def test_a_server_starts_the_worker_of_a_remote_client(env: Env, tmp_path: Path) -> None:
    import fcntl

    settings = env.client.context.settings
    lock = env.home / "finetune" / ".queue.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as srv, lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another job "trains": the server's worker waits its turn
        remote = opsloop.Client(
            settings=settings.model_copy(update={"tracking_uri": srv.url, "home": tmp_path})
        )
        try:
            ft = remote.finetune
            job = ft.submit(base_model="models:/smol@prod", dataset="qa", max_steps=2)
            assert job.state == "queued" and job.pid and job.spec["base_model"] == "models:/smol/1"
            assert env.svc.worker_alive(job)  # a process on this machine, started by the server
            assert ft.cancel(job.id).state == "cancelled"
            wait_until(lambda: not env.svc.worker_alive(job), 60, "the server's worker to exit")
            assert (
                ft.get(job.id).state == "cancelled"
                and remote.get_run(job.run_id).status == "KILLED"
            )
        finally:
            remote.close()


def test_dpo_in_the_foreground_and_the_columns_it_needs(env: Env) -> None:
    ft = env.client.finetune
    wrong = ft.submit(env.spec(method="dpo", dataset="qa"))
    assert wrong.state == "failed" and "no column(s) ['chosen', 'rejected']" in (wrong.error or "")
    seen: list[int] = []
    job = ft.run(
        env.spec(method="dpo", dataset="prefs", max_steps=1, output_model="smol-dpo"),
        progress=lambda step, total, metrics: seen.append(step),
    )
    assert job.state == "succeeded", job.error
    assert job.attempts == 1 and job.step == 1 and seen and max(seen) == 1
    assert job.pid is None  # trained in this process: a cancel never signals the caller
    run = env.client.get_run(job.run_id)
    assert "loss" in run.metrics and "tokens_per_second" in run.metrics
    mv = env.client.registry.resolve("models:/smol-dpo/1")
    assert mv.flavor == "peft" and mv.metadata["base_model"] == "models:/smol/1"


def test_distill_makes_a_dataset_of_teacher_answers_and_a_student_job(env: Env) -> None:
    ft = env.client.finetune
    env.client.datasets.create(
        "questions", [{"prompt": "What is the capital of France?"}, {"prompt": "Name a colour."}]
    )
    job = ft.distill(
        "models:/smol/1",  # a registered model as the teacher (any provider spec works)
        "questions",
        base_model="models:/smol@prod",
        max_tokens=8,
        **{k: v for k, v in env.spec().items() if k not in ("base_model", "dataset")},
    )
    assert job.state in ("queued", "running") and job.spec["dataset"] == "questions-distilled@1"
    ft.cancel(job.id)  # training on it is the SFT job tested above
    rows = env.client.datasets.head("questions-distilled@1")
    assert [r["prompt"] for r in rows] == ["What is the capital of France?", "Name a colour."]
    assert "Paris" in rows[0]["completion"] and rows[1]["completion"].strip()
    assert rows[0]["teacher"] == "models:/smol/1" and rows[0]["teacher_latency_s"] > 0
    wait_until(lambda: not env.svc.worker_alive(ft.get(job.id)), 120, "the worker to stop")
    with pytest.raises(InvalidArgument, match="no prompts"):
        ft.distill("models:/smol/1", "questions", base_model="models:/smol@prod", max_rows=0)
    with pytest.raises(InvalidArgument, match=r"no column\(s\) \['question'\]"):
        ft.distill("models:/smol/1", "qa", base_model="models:/smol@prod", prompt_column="question")


def test_cli_lists_shows_and_reports_errors(env: Env) -> None:
    from typer.testing import CliRunner

    from opsloop.cli import app

    home = str(env.home)

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})

    bad = cli("finetune", "run", "--base", "models:/smol@prod", "--dataset", "qa",
              "--method", "rlhf", "--detach", "--home", home)  # fmt: skip
    assert bad.exit_code != 0
    assert "error [INVALID_ARGUMENT]" in bad.output and "Traceback" not in bad.output
    bad_set = cli(
        "finetune", "run", "--base", "m", "--dataset", "d", "--set", "oops", "--home", home
    )
    assert "error [INVALID_ARGUMENT]: --set takes KEY=VALUE" in bad_set.output
    started = cli("finetune", "run", "--base", "models:/smol@prod", "--dataset", "qa", "--detach",
                  "--set", f"cache_dir={json.dumps(str(env.cache))}", "--json", "--home", home)  # fmt: skip
    assert started.exit_code == 0, started.output
    job = json.loads(started.stdout)
    assert job["state"] == "queued" and job["spec"]["cache_dir"] == str(env.cache)
    cancelled = cli("finetune", "cancel", job["id"], "--json", "--home", home)
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    again = cli("finetune", "cancel", job["id"], "--home", home)
    assert again.exit_code != 0 and "error [CONFLICT]" in again.output
    listed = cli("finetune", "list", "--json", "--home", home)
    assert listed.exit_code == 0, listed.output
    jobs = json.loads(listed.stdout)
    assert [j["id"] for j in jobs] == [j.id for j in env.client.finetune.list()]
    shown = cli("finetune", "show", job["id"], "--json", "--home", home)
    assert json.loads(shown.stdout)["state"] == "cancelled"
    assert "cancelled" in cli("finetune", "show", job["id"], "--home", home).stdout
    missing = cli("finetune", "show", "nope", "--home", home)
    assert missing.exit_code != 0 and "error [NOT_FOUND]" in missing.output
    table = cli("finetune", "list", "--home", home)
    assert "cancelled" in table.stdout and "models:/smol/1" in table.stdout
