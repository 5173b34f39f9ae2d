"""Fine-tuning types that cross the SDK and the REST API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TERMINAL_STATES", "FinetuneJob", "JobSpec", "JobState", "Method"]

JobState = Literal["validating", "queued", "running", "succeeded", "failed", "cancelled"]
Method = Literal["sft", "dpo"]
TERMINAL_STATES: tuple[str, ...] = ("succeeded", "failed", "cancelled")

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$"


class JobSpec(BaseModel):
    """What to train: a LoRA adapter on ``base_model`` from a dataset version.

    ``method="sft"``: supervised fine-tuning on ``prompt_column`` ->
    ``completion_column`` (default: ``completion``, else ``response``).
    ``method="dpo"``: preference tuning on ``prompt_column``, ``chosen_column``,
    ``rejected_column``. Rows are trained as chat turns when the base model's
    tokenizer has a chat template (as ``predict`` serves them), as plain text
    otherwise. The result registers as a new version of ``output_model``
    (default ``<base name>-<method>``) holding the adapter alone.
    """

    model_config = ConfigDict(extra="forbid")

    method: Method = "sft"
    base_model: str = Field(min_length=1, max_length=1024)  # models:/NAME[/VERSION|@ALIAS]
    dataset: str = Field(min_length=1, max_length=300)  # a dataset version: name[@version]
    output_model: str | None = Field(default=None, pattern=_NAME)
    experiment: str = Field(default="finetune", min_length=1, max_length=256)
    prompt_column: str = Field(default="prompt", min_length=1, max_length=256)
    completion_column: str | None = Field(default=None, min_length=1, max_length=256)
    chosen_column: str = Field(default="chosen", min_length=1, max_length=256)
    rejected_column: str = Field(default="rejected", min_length=1, max_length=256)
    max_rows: int | None = Field(default=None, ge=1)
    # LoRA
    lora_r: int = Field(default=8, ge=1, le=1024)
    lora_alpha: int = Field(default=16, ge=1, le=4096)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    # training
    max_steps: int = Field(default=100, ge=1, le=10_000_000)
    batch_size: int = Field(default=2, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=4096)
    learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0)
    warmup_steps: int = Field(default=0, ge=0)
    max_length: int = Field(default=256, ge=8, le=1_000_000)
    beta: float = Field(default=0.1, gt=0.0, le=100.0)  # DPO
    seed: int = Field(default=0, ge=0, lt=2**31)
    checkpoint_every: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1, le=1000)
    logging_steps: int = Field(default=1, ge=1)
    # where the job runs
    device: str | None = Field(default=None, pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    cost_per_hour: float = Field(default=0.0, ge=0.0)  # the machine's price: cost = hours x this
    cache_dir: str | None = Field(default=None, max_length=4096)  # converted base weights

    @model_validator(mode="after")
    def _columns_differ(self) -> JobSpec:
        cols = self.columns()
        if len(set(cols.values())) != len(cols):
            raise ValueError(f"the {self.method} columns must be different: {cols}")
        return self

    def columns(self, completion: str | None = None) -> dict[str, str]:
        """Role -> dataset column for this method (``completion`` if already resolved)."""
        if self.method == "dpo":
            return {
                "prompt": self.prompt_column,
                "chosen": self.chosen_column,
                "rejected": self.rejected_column,
            }
        return {
            "prompt": self.prompt_column,
            "completion": completion or self.completion_column or "completion",
        }


class FinetuneJob(BaseModel):
    """A fine-tuning job: its state, its run, its progress and its result.

    ``spec`` is the submitted ``JobSpec`` with ``base_model`` pinned to
    ``models:/NAME/VERSION`` and ``dataset`` to ``name@version`` once
    validated. ``result_version`` is the version of ``output_model`` it
    registered (``result_uri``). ``checkpoint_step`` is the last saved
    checkpoint; ``resumed_from_step`` the checkpoint the latest attempt
    continued from.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    run_id: str | None = None
    method: Method
    state: JobState
    spec: dict[str, Any]
    output_model: str
    result_version: int | None = None
    error: str | None = None
    host: str = ""
    pid: int | None = None
    attempts: int = 0
    step: int = 0
    max_steps: int
    checkpoint_step: int | None = None
    resumed_from_step: int | None = None
    elapsed_s: float = 0.0
    created_at: int
    updated_at: int
    started_at: int | None = None
    ended_at: int | None = None
    heartbeat_at: int | None = None
    created_by: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def result_uri(self) -> str | None:
        """``models:/<output_model>/<version>`` once the job succeeded."""
        if self.result_version is None:
            return None
        return f"models:/{self.output_model}/{self.result_version}"
