"""Standard benchmarks: multiple-choice tasks scored by log-likelihood, generation tasks by exact match.

::

    from opsloop.evaluation.benchmarks import run_benchmark
    result = run_benchmark("local:smollm2", ["hellaswag", "piqa"], limit=500)
    result.tasks["piqa"].metrics["acc_norm"]

Tasks are YAML files (``tasks/*.yaml`` ships HellaSwag, PIQA, ARC, MMLU,
CommonsenseQA, OpenBookQA, WinoGrande, BoolQ and GSM8K); data is read from
``$OPSLOOP_BENCHDATA`` (JSONL, Parquet or ``datasets.save_to_disk`` folders).
Needs the ``llm`` and ``benchmarks`` extras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsloop.evaluation.benchmarks._data import read_records
    from opsloop.evaluation.benchmarks._normalize import extract_number, normalize_answer
    from opsloop.evaluation.benchmarks._runner import BenchmarkResult, TaskResult, run_benchmark
    from opsloop.evaluation.benchmarks._scoring import (
        LoglikelihoodRequest,
        encode_pair,
        loglikelihoods,
    )
    from opsloop.evaluation.benchmarks._task import (
        Normalization,
        TaskSpec,
        list_tasks,
        load_task,
        parse_task,
    )

_LAZY = {
    "read_records": "opsloop.evaluation.benchmarks._data",
    "extract_number": "opsloop.evaluation.benchmarks._normalize",
    "normalize_answer": "opsloop.evaluation.benchmarks._normalize",
    "BenchmarkResult": "opsloop.evaluation.benchmarks._runner",
    "TaskResult": "opsloop.evaluation.benchmarks._runner",
    "run_benchmark": "opsloop.evaluation.benchmarks._runner",
    "LoglikelihoodRequest": "opsloop.evaluation.benchmarks._scoring",
    "encode_pair": "opsloop.evaluation.benchmarks._scoring",
    "loglikelihoods": "opsloop.evaluation.benchmarks._scoring",
    "Normalization": "opsloop.evaluation.benchmarks._task",
    "TaskSpec": "opsloop.evaluation.benchmarks._task",
    "list_tasks": "opsloop.evaluation.benchmarks._task",
    "load_task": "opsloop.evaluation.benchmarks._task",
    "parse_task": "opsloop.evaluation.benchmarks._task",
}

__all__ = [
    "BenchmarkResult",
    "LoglikelihoodRequest",
    "Normalization",
    "TaskResult",
    "TaskSpec",
    "encode_pair",
    "extract_number",
    "list_tasks",
    "load_task",
    "loglikelihoods",
    "normalize_answer",
    "parse_task",
    "read_records",
    "run_benchmark",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opsloop.evaluation.benchmarks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
