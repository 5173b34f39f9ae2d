"""A job's training: LoRA SFT or DPO with TRL on the base model, checkpoints, resume, cancel.

``run_job(ctx, job_id)`` is what a worker process runs (``_worker``) and what
``opsloop finetune run`` runs in the foreground. It waits its turn (one job
trains at a time per home: a file lock), moves the job to ``running``, loads
the base model through the registry, reads the dataset version, trains with
checkpoints every ``checkpoint_every`` steps (continuing from the latest one
when an earlier attempt died), logs the run's metrics, and registers the
adapter as a new version of ``output_model``, pinned to its base version.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opsloop.core import Context
from opsloop.datasets import Datasets
from opsloop.errors import InvalidArgument, OpsloopError
from opsloop.finetune._backend import finetune_service
from opsloop.finetune._service import JOB_TAG, FinetuneService, work_dir
from opsloop.finetune.entities import FinetuneJob, JobSpec
from opsloop.registry import LoadedCausalLM, Registry, load_model
from opsloop.registry.flavors import save_peft
from opsloop.tracking import Tracking

__all__ = ["STOP", "Progress", "latest_checkpoint", "run_job"]

# Set by the worker's SIGTERM handler (a cancel): training stops after its current step.
STOP = threading.Event()
HEARTBEAT_S = 1.0

Progress = Callable[[int, int, dict[str, float]], None]  # (step, max_steps, latest metrics)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` under ``folder`` (its trainer state is written last)."""
    found: list[tuple[int, Path]] = []
    for p in folder.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and (p / "trainer_state.json").is_file() and (p / "optimizer.pt").is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


@contextlib.contextmanager
def _turn(ctx: Context, svc: FinetuneService, job_id: str) -> Iterator[bool]:
    """Wait for this home's training slot; yields False when the job stops being queued."""
    lock_path = Path(ctx.settings.home) / "finetune" / ".queue.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if svc.get(job_id).state != "queued" or STOP.is_set():
                    yield False
                    return
                time.sleep(0.5)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_job(
    ctx: Context, job_id: str, *, progress: Progress | None = None, worker: bool = False
) -> FinetuneJob:
    """Train job ``job_id`` here and now (it must be ``queued``); return it finished.

    ``worker``: this process is the job's own worker (``_worker``), so a cancel
    may signal it; otherwise (``Finetune.run``) a cancel is seen at the next
    heartbeat and the calling program is left alone.
    """
    svc = ctx.room(finetune_service)
    with _turn(ctx, svc, job_id) as mine:
        if not mine:
            return svc.get(job_id)
        if not svc.mark_running(job_id, pid=os.getpid() if worker else None):
            return svc.get(job_id)
        job = svc.get(job_id)
        tracking = ctx.room(Tracking)
        try:
            _train(ctx, svc, tracking, job, progress)
        except BaseException as exc:
            if isinstance(exc, OpsloopError):
                message = f"[{exc.code}] {exc}"
            elif isinstance(exc, KeyboardInterrupt):
                message = "interrupted (resume it with `opsloop finetune resume`)"
            else:
                message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
            if svc.fail(job_id, message) and job.run_id:
                with contextlib.suppress(Exception):
                    tracking.set_terminated(job.run_id, "FAILED")
            if not isinstance(exc, Exception):
                raise
    return svc.get(job_id)


def _train(
    ctx: Context,
    svc: FinetuneService,
    tracking: Tracking,
    job: FinetuneJob,
    progress: Progress | None,
) -> None:
    spec = JobSpec.model_validate(job.spec)
    folder = work_dir(ctx, job.id)
    ckpt_dir = folder / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    lm = load_model(spec.base_model, client=ctx, cache_dir=spec.cache_dir, device=spec.device)
    if not isinstance(lm, LoadedCausalLM):
        raise InvalidArgument(f"{spec.base_model} did not load as a causal language model")
    tokenizer = lm.tokenizer
    tokenizer.padding_side = "right"
    rows = load_rows(ctx, spec, chat=lm.has_chat_template)
    resume = latest_checkpoint(ckpt_dir)
    trainer = build_trainer(spec, lm.model, tokenizer, rows, ckpt_dir, device=_device(spec))
    if len(trainer.train_dataset) == 0:
        raise InvalidArgument(
            f"no row of {spec.dataset} keeps any answer tokens within max_length="
            f"{spec.max_length} (with the chat template's own tokens); raise max_length",
            details={"field": "max_length"},
        )
    callback = job_callback(svc, tracking, job, spec, progress)
    trainer.add_callback(callback)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the run has the logs; stdout stays quiet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if job.run_id:
        tracking.flush(job.run_id)
    if svc.get(job.id).state != "running":  # cancelled: the cancel marked the run KILLED
        return
    if STOP.is_set() or trainer.state.global_step < spec.max_steps:
        raise RuntimeError(
            f"training stopped at step {trainer.state.global_step} of {spec.max_steps}"
        )
    adapter = save_adapter(trainer.model, folder / "adapter", spec)
    registry = ctx.room(Registry)
    mv = registry.register(
        str(spec.output_model),
        adapter,
        run_id=job.run_id,
        description=f"{spec.method} LoRA adapter on {spec.base_model} from {spec.dataset}",
        tags={JOB_TAG: job.id, "opsloop.finetune.method": spec.method},
    )
    elapsed = callback.elapsed()
    final = {
        "wall_time_s": elapsed,
        "cost_usd": elapsed / 3600.0 * spec.cost_per_hour,
        "checkpoint_step": float(trainer.state.global_step),
        "job_hooks_s": callback.hook_s,  # this attempt's time in the job's trainer hooks
    }
    if job.run_id:
        tracking.log_metrics(job.run_id, final, step=trainer.state.global_step)
    svc.progress(job.id, step=trainer.state.global_step, elapsed_s=elapsed)
    if svc.succeed(job.id, result_version=mv.version) and job.run_id:
        tracking.set_tag(job.run_id, "opsloop.finetune.result", mv.uri)
        tracking.set_terminated(job.run_id, "FINISHED")


def _device(spec: JobSpec) -> str:
    if spec.device:
        return spec.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_rows(ctx: Context, spec: JobSpec, *, chat: bool) -> list[dict[str, Any]]:
    """The dataset version's rows in TRL's shape (chat turns when the model has a chat template)."""
    cols = spec.columns()
    out: list[dict[str, Any]] = []
    for i, row in enumerate(
        ctx.room(Datasets).iter_rows(spec.dataset, columns=list(cols.values()))
    ):
        if spec.max_rows is not None and i >= spec.max_rows:
            break
        item: dict[str, Any] = {}
        for role, column in cols.items():
            value = row.get(column)
            if not isinstance(value, str) or not value:
                raise InvalidArgument(
                    f"row {i} of {spec.dataset}: column {column!r} must be a non-empty string, "
                    f"got {value!r:.60}",
                    details={"row": i, "column": column},
                )
            speaker = "user" if role == "prompt" else "assistant"
            item[role] = [{"role": speaker, "content": value}] if chat else value
        out.append(item)
    if not out:
        raise InvalidArgument(f"dataset {spec.dataset} has no rows to train on")
    return out


def lora_config(spec: JobSpec) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.target_modules),
        task_type="CAUSAL_LM",
    )


def trainer_args(spec: JobSpec, output_dir: Path, *, device: str) -> dict[str, Any]:
    """The TRL config arguments a job's settings mean (shared with the overhead benchmark)."""
    return {
        "output_dir": str(output_dir),
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "learning_rate": spec.learning_rate,
        "warmup_steps": spec.warmup_steps,
        "logging_steps": spec.logging_steps,
        "save_strategy": "steps",
        "save_steps": spec.checkpoint_every,
        "save_total_limit": spec.keep_checkpoints,
        "seed": spec.seed,
        "max_length": spec.max_length,
        "report_to": [],
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "dataloader_num_workers": 0,
    }


def build_trainer(
    spec: JobSpec,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    output_dir: Path,
    *,
    device: str,
) -> Any:
    """The TRL trainer (``SFTTrainer`` or ``DPOTrainer``) with a LoRA adapter on ``model``."""
    import datasets as hf_datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_datasets.disable_progress_bars()
    data = hf_datasets.Dataset.from_list(rows)
    args = trainer_args(spec, output_dir, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.method == "dpo":
            from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

            return DPOTrainer(
                model=model,
                args=DPOConfig(beta=spec.beta, include_num_input_tokens_seen=True, **args),
                train_dataset=data,
                processing_class=tokenizer,
                peft_config=lora_config(spec),
            )
        from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

        return SFTTrainer(
            model=model,
            args=SFTConfig(**args),
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora_config(spec),
        )


def save_adapter(peft_model: Any, folder: Path, spec: JobSpec) -> Path:
    """The adapter alone (config + safetensors), its base pinned, as a registrable folder."""
    return save_peft(
        peft_model,
        folder,
        base_model=spec.base_model,
        model_id=str(spec.output_model),
        overwrite=True,
    )


_METRIC_KEY = re.compile(r"[^A-Za-z0-9_\-./: ]")


def job_callback(
    svc: FinetuneService,
    tracking: Tracking,
    job: FinetuneJob,
    spec: JobSpec,
    progress: Progress | None,
) -> Any:
    """A ``TrainerCallback``: metrics to the run, heartbeats and checkpoints to the job, cancels."""
    from transformers import TrainerCallback

    class JobCallback(_JobCallbackMixin, TrainerCallback):
        pass

    return JobCallback(svc, tracking, job, spec, progress)


def _timed(hook: Callable[..., None]) -> Callable[..., None]:
    """Count the time the job spends in a trainer hook (``hook_s``: its in-loop overhead)."""

    def wrapper(self: _JobCallbackMixin, *args: Any, **kw: Any) -> None:
        t = time.perf_counter()
        try:
            hook(self, *args, **kw)
        finally:
            self.hook_s += time.perf_counter() - t

    wrapper.__name__ = hook.__name__
    wrapper.__doc__ = hook.__doc__
    return wrapper


class _JobCallbackMixin:
    def __init__(
        self,
        svc: FinetuneService,
        tracking: Tracking,
        job: FinetuneJob,
        spec: JobSpec,
        progress: Progress | None,
    ) -> None:
        self.svc = svc
        self.tracking = tracking
        self.job = job
        self.spec = spec
        self.progress = progress
        self.before_s = job.elapsed_s  # earlier attempts' running time
        self.t0 = time.perf_counter()
        self.last_beat = 0.0
        self.last_tokens: tuple[float, float] | None = None
        self.latest: dict[str, float] = {}
        self.hook_s = 0.0  # time spent in this callback's hooks, inside the training loop

    def elapsed(self) -> float:
        return self.before_s + (time.perf_counter() - self.t0)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.t0 = time.perf_counter()
        resumed = state.global_step if state.global_step > 0 else None
        self.svc.progress(self.job.id, step=state.global_step, resumed_from_step=resumed)
        if resumed and self.job.run_id:
            self.tracking.set_tag(self.job.run_id, "opsloop.finetune.resumed_from_step", resumed)

    @_timed
    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs:
            return
        now = time.perf_counter()
        metrics: dict[str, float] = {}
        for key, value in logs.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(float(value)) and key not in ("epoch", "step"):
                metrics[_METRIC_KEY.sub("_", key)] = float(value)
        tokens = logs.get("num_tokens", getattr(state, "num_input_tokens_seen", 0) or None)
        if isinstance(tokens, int | float) and tokens:
            if self.last_tokens is not None and tokens > self.last_tokens[0]:
                dt = now - self.last_tokens[1]
                if dt > 0:
                    metrics["tokens_per_second"] = (tokens - self.last_tokens[0]) / dt
            self.last_tokens = (float(tokens), now)
        elapsed = self.elapsed()
        metrics["wall_time_s"] = elapsed
        if self.spec.cost_per_hour:
            metrics["cost_usd"] = elapsed / 3600.0 * self.spec.cost_per_hour
        self.latest.update(metrics)
        if self.job.run_id and metrics:
            self.tracking.log_metrics(self.job.run_id, metrics, step=state.global_step)
        if self.progress is not None:
            self.progress(state.global_step, state.max_steps, dict(self.latest))

    @_timed
    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        now = time.perf_counter()
        if self.last_tokens is None:
            self.last_tokens = (0.0, self.t0)
        if STOP.is_set():
            control.should_training_stop = True
        if now - self.last_beat >= HEARTBEAT_S or state.global_step >= state.max_steps:
            self.last_beat = now
            current = self.svc.progress(
                self.job.id, step=state.global_step, elapsed_s=self.elapsed()
            )
            if current != "running":
                control.should_training_stop = True
                control.should_save = False
        if self.progress is not None:
            self.progress(state.global_step, state.max_steps, dict(self.latest))

    @_timed
    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.job.run_id:
            self.tracking.flush(self.job.run_id)  # the curve up to a checkpoint survives a kill
        self.svc.progress(self.job.id, checkpoint_step=state.global_step, elapsed_s=self.elapsed())
