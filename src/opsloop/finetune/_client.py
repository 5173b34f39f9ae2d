"""``Finetune(context)``: the fine-tuning SDK, the same embedded or against a server."""

from __future__ import annotations

import builtins
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.core import Context, HasContext, context_of
from opsloop.errors import InvalidArgument
from opsloop.finetune._backend import EmbeddedFinetune, FinetuneBackend
from opsloop.finetune._remote import RemoteFinetune
from opsloop.finetune.entities import FinetuneJob, JobSpec
from opsloop.registry import LoadedCausalLM, ModelVersion, Registry, load_model
from opsloop.registry.flavors import save_transformers

if TYPE_CHECKING:
    from opsloop.finetune._training import Progress

__all__ = ["Finetune"]


def _embedded(ctx: Context) -> FinetuneBackend:
    return EmbeddedFinetune(ctx)


def _remote(ctx: Context) -> FinetuneBackend:
    return RemoteFinetune(ctx)


def _spec(
    spec: JobSpec | dict[str, Any] | None, options: dict[str, Any]
) -> JobSpec | dict[str, Any]:
    if spec is None:
        return options
    if options:
        base = spec.model_dump(exclude_unset=True) if isinstance(spec, JobSpec) else dict(spec)
        return {**base, **options}
    return spec


class Finetune:
    """Fine-tuning jobs: LoRA SFT and DPO on a registered base model, from a dataset version."""

    def __init__(self, context: Context | HasContext | None = None) -> None:
        ctx = context_of(context)
        self._context = ctx
        self._backend: FinetuneBackend = ctx.seam(_embedded, _remote)

    @property
    def context(self) -> Context:
        return self._context

    def submit(self, spec: JobSpec | dict[str, Any] | None = None, **options: Any) -> FinetuneJob:
        """Start a job in a worker process and return it at once (``queued``, or ``failed``).

        ``submit(base_model="models:/smol@prod", dataset="qa@3", method="sft",
        max_steps=200)``: the fields of ``JobSpec``, as keywords or a spec.
        """
        return self._backend.submit(_spec(spec, options))

    def get(self, job_id: str) -> FinetuneJob:
        return self._backend.get(job_id)

    def list(
        self, *, state: str | None = None, output_model: str | None = None, limit: int = 200
    ) -> builtins.list[FinetuneJob]:
        """Jobs newest first."""
        return self._backend.list(state=state, output_model=output_model, limit=limit)

    def cancel(self, job_id: str) -> FinetuneJob:
        """Cancel an unfinished job; its worker stops after the current step."""
        return self._backend.cancel(job_id)

    def resume(self, job_id: str) -> FinetuneJob:
        """Restart a failed job, or one whose worker died, from its last checkpoint."""
        return self._backend.resume(job_id)

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_s: float = 0.5,
        progress: Progress | None = None,
    ) -> FinetuneJob:
        """Poll until the job is finished (``TimeoutError`` after ``timeout_s``)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self._backend.get(job_id)
            if progress is not None:
                progress(job.step, job.max_steps, {})
            if job.done:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout_s}s")
            time.sleep(poll_s)

    def run(
        self,
        spec: JobSpec | dict[str, Any] | None = None,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> FinetuneJob:
        """Train in the foreground and return the finished job.

        Embedded, the training runs in this process (``progress(step,
        max_steps, metrics)`` after each step); against a server, the
        server's worker trains and this waits for it.
        """
        body = _spec(spec, options)
        if self._context.is_remote:
            job = self._backend.submit(body)
            return job if job.done else self.wait(job.id, progress=progress)
        from opsloop.finetune._training import run_job  # lazy: loads torch/transformers/trl

        job = self._backend.submit(body, start=False)
        if job.done:
            return job
        return run_job(self._context, job.id, progress=progress)

    def distill(
        self,
        teacher: str,
        prompts: str,
        *,
        base_model: str,
        dataset_name: str | None = None,
        prompt_column: str = "prompt",
        max_tokens: int = 128,
        max_rows: int | None = None,
        teacher_options: dict[str, Any] | None = None,
        foreground: bool = False,
        progress: Progress | None = None,
        **job_options: Any,
    ) -> FinetuneJob:
        """Fine-tune ``base_model`` (the student) on a teacher's answers to a dataset's prompts.

        ``teacher``: a provider spec (``local:smollm2``, ``models:/NAME@ALIAS``,
        ``openai:MODEL``). Its answers become a version of ``dataset_name``
        (default ``<prompts dataset>-distilled``), and an SFT job trains on it
        (in a worker; ``foreground=True`` trains here).
        """
        from opsloop.finetune._distill import teacher_dataset  # lazy: loads the llm providers

        source = prompts.split("@")[0]
        version = teacher_dataset(
            self._context,
            teacher,
            prompts,
            name=dataset_name or f"{source}-distilled",
            prompt_column=prompt_column,
            max_tokens=max_tokens,
            max_rows=max_rows,
            cache_dir=job_options.get("cache_dir"),
            teacher_options=teacher_options,
        )
        spec = {"base_model": base_model, "dataset": version.ref, "method": "sft", **job_options}
        if foreground:
            return self.run(spec, progress=progress)
        return self.submit(spec)

    def merge(
        self,
        adapter: str,
        name: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        description: str = "",
    ) -> ModelVersion:
        """Merge an adapter version into its base; register the full model as a version of ``name``."""

        registry = self._context.room(Registry)
        source = registry.resolve(adapter)
        if source.flavor != "peft":
            raise InvalidArgument(
                f"{source.uri} is a {source.flavor!r} version; merge takes a peft adapter",
                details={"field": "adapter"},
            )
        lm = load_model(source.uri, client=self._context, cache_dir=cache_dir, device="cpu")
        if not isinstance(lm, LoadedCausalLM):
            raise InvalidArgument(f"{source.uri} did not load as a causal language model")
        with tempfile.TemporaryDirectory(prefix="opsloop-merge-") as tmp:
            folder = save_transformers(lm.model, lm.tokenizer, Path(tmp) / "model", model_id=name)
            return registry.register(
                name,
                folder,
                run_id=source.source_run_id,
                description=description
                or f"{source.uri} merged into {source.metadata.get('base_model')}",
                tags={
                    "opsloop.finetune.merged_from": source.uri,
                    "opsloop.finetune.base_model": str(source.metadata.get("base_model")),
                },
            )
