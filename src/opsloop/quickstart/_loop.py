"""The loop on the quickstart's docs question-answering task (``opsloop loop run``).

``run_docs_loop`` indexes opsloop's docs as the quickstart does, then runs
``opsloop.loop.run_loop`` with the bundled SmolLM2 as version 1, the docs
questions' ``train`` split as the replayed traffic (feedback from their
reference answers) and the ``heldout`` split as the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsloop.loop import LoopReport, check_loop_arguments, run_loop
from opsloop.quickstart._docs_eval import DOCS_K, DOCS_MAX_TOKENS, build_docs_index
from opsloop.quickstart._qa_data import docs_questions

LOOP_MODEL = "docs-qa-llm"


def run_docs_loop(
    client: Any,
    *,
    model: str = LOOP_MODEL,
    alias: str = "prod",
    train_limit: int | None = None,
    heldout_limit: int | None = None,
    training: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Any = None,
) -> LoopReport:
    """Close the loop once on the docs QA task; ``*_limit``: the first N questions of a split."""
    check_loop_arguments(model, alias, training)  # before the docs are indexed
    if progress is not None:
        progress("index", 0, 1)
    index = build_docs_index(client, cache_dir=cache_dir)
    if progress is not None:
        progress("index", 1, 1)
    train = docs_questions("train")[:train_limit]
    heldout = docs_questions("heldout")[:heldout_limit]
    return run_loop(
        client,
        train=train,
        heldout=heldout,
        index=index,
        model=model,
        alias=alias,
        k=DOCS_K,
        max_tokens=DOCS_MAX_TOKENS,
        training=training,
        n_bootstrap=n_bootstrap,
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
    )
