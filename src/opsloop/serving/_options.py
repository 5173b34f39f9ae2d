"""``ServeOptions``: how one model server batches, reloads and limits requests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServeOptions"]


class ServeOptions(BaseModel):
    """Tuning knobs of a model server (the opsloop ``Settings`` say where the registry is).

    - ``max_batch_size`` / ``max_wait_ms``: micro-batching of predict and
      embedding requests (rows per model call; how long the oldest waiting
      request may wait for others).
    - ``llm_max_batch_size`` / ``llm_max_wait_ms``: sequences decoded together,
      and how long an idle generator waits to prefill a burst together.
    - ``poll_interval_s``: how often a ``models:/NAME@ALIAS`` server asks the
      registry where the alias points (0 turns alias watching off).
    - ``max_rows_per_request`` / ``max_tokens_limit`` / ``default_max_tokens``:
      request limits (bad input gets a 400, never a stuck server).
    - ``trusted_types``: skops type names trusted when loading (see the registry).
    - ``cache_dir`` / ``device``: passed to ``load_model``.
    - ``dtype``: cast a language or embedding model's weights after loading
      (``bfloat16`` is several times faster on CPUs with AMX/AVX512-BF16, and
      on GPUs; ``auto`` keeps what the model was loaded with).
    - ``torch_threads``: PyTorch's intra-op threads for this process (None:
      PyTorch's default, one per core). On a machine shared with other busy
      processes, 1 avoids threads waiting on each other for CPU time.
    - ``monitoring``: tell the monitoring room of every predict answer (prediction
      log, live metrics, ``GET /metrics``); off, the server runs without it.
    - ``log_sample_ratio``: the share of predict requests whose inputs and
      outputs are logged (metrics always count every request).
    - ``deployment``: the name the prediction log and metrics file answers under
      (default: the model's name).
    - ``model_name``: the name shown in ``/v1/models`` and answers (default:
      the registered model's name).
    """

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    max_wait_ms: float = Field(default=2.0, ge=0, le=10_000)
    llm_max_batch_size: int = Field(default=8, ge=1, le=1024)
    llm_max_wait_ms: float = Field(default=20.0, ge=0, le=10_000)
    poll_interval_s: float = Field(default=5.0, ge=0)
    max_rows_per_request: int = Field(default=10_000, ge=1)
    max_tokens_limit: int = Field(default=4096, ge=1)
    default_max_tokens: int = Field(default=256, ge=1)
    trusted_types: list[str] = Field(default_factory=list)
    cache_dir: Path | None = None
    device: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    torch_threads: int | None = Field(default=None, ge=1, le=1024)
    model_name: str | None = None
    monitoring: bool = True
    log_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    deployment: str | None = Field(default=None, max_length=128)
