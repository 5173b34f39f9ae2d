"""Distillation: a teacher model answers prompts, and the student is fine-tuned on its answers.

The teacher is any opsloop provider spec (``local:smollm2``, ``models:/NAME@ALIAS``
for a registered model, ``openai:MODEL`` for an OpenAI-compatible endpoint,
see ``opsloop.llm.get_provider``). Its answers become a new dataset version
(``prompt``, ``completion``, ``teacher``, ``teacher_latency_s``) and the
student trains on it with a normal SFT job.
"""

from __future__ import annotations

import os
from typing import Any

from opsloop.core import Context
from opsloop.datasets import Datasets, DatasetVersion
from opsloop.errors import InvalidArgument
from opsloop.llm import get_provider

__all__ = ["teacher_dataset"]


def teacher_dataset(
    ctx: Context,
    teacher: str,
    prompts: str,
    *,
    name: str,
    prompt_column: str = "prompt",
    max_tokens: int = 128,
    max_rows: int | None = None,
    batch_size: int = 8,
    cache_dir: str | os.PathLike[str] | None = None,
    teacher_options: dict[str, Any] | None = None,
) -> DatasetVersion:
    """A dataset version of the teacher's answers to the prompts of dataset version ``prompts``."""
    datasets = ctx.room(Datasets)
    texts: list[str] = []
    for i, row in enumerate(datasets.iter_rows(prompts, columns=[prompt_column])):
        if max_rows is not None and i >= max_rows:
            break
        value = row.get(prompt_column)
        if not isinstance(value, str) or not value:
            raise InvalidArgument(
                f"row {i} of {prompts}: {prompt_column!r} must be a non-empty string",
                details={"row": i, "column": prompt_column},
            )
        texts.append(value)
    if not texts:
        raise InvalidArgument(f"dataset {prompts} has no prompts")
    rows: list[dict[str, Any]] = []
    with get_provider(teacher, client=ctx, cache_dir=cache_dir, **(teacher_options or {})) as p:
        for start in range(0, len(texts), max(1, batch_size)):
            chunk = texts[start : start + batch_size]
            answers = p.batch_chat(
                [[{"role": "user", "content": t}] for t in chunk], max_tokens=max_tokens
            )
            for prompt, answer in zip(chunk, answers, strict=True):
                rows.append(
                    {
                        "prompt": prompt,
                        "completion": answer.text.strip() or "(no answer)",
                        "teacher": teacher,
                        "teacher_latency_s": answer.latency_s / max(1, len(chunk)),
                    }
                )
    return datasets.create(
        name, rows, message=f"answers of {teacher} to {prompts} ({len(rows)} prompts)"
    )
