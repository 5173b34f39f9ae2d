"""The docs question-answering task, run for real: opsloop's docs indexed, a model answering.

``build_docs_index`` does what the quickstart's ``docs_qa`` step does (the
docs as a document collection, chunked the same way, embedded with the
bundled MiniLM); ``answer_docs_questions`` runs the quickstart's retrieval
pipeline (``rag_qa``, k=3, 64 new tokens) with any model over rows of
``docs_questions()``; ``score_docs_answers`` gives the quality metric
(``contains``) and ``token_f1``. The generation-defaults benchmark and the
compression report measure through these.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opsloop.evaluation.metrics import get_metric
from opsloop.quickstart._llm import DOCS_COLLECTION, DOCS_INDEX, docs_files
from opsloop.quickstart._qa_data import DOCS_QUALITY_METRIC

DOCS_K = 3
DOCS_MAX_TOKENS = 64


def build_docs_index(client: Any, *, cache_dir: Path | None = None) -> str:
    """Index opsloop's docs as the quickstart does; returns the vector index's name."""
    from opsloop.pipelines import build_rag_index  # lazy: loads the LLM stack

    with tempfile.TemporaryDirectory(prefix="opsloop-docs-eval-") as tmp:
        version = client.datasets.create(
            DOCS_COLLECTION,
            docs_files(Path(tmp)),
            kind="documents",
            chunking={"size": 800, "overlap": 100},
            description="opsloop's own documentation",
        )
    build_rag_index(
        client,
        f"{DOCS_COLLECTION}@{version.version}",
        DOCS_INDEX,
        home=client.settings.home,
        cache_dir=cache_dir,
    )
    return DOCS_INDEX


def answer_docs_questions(
    client: Any,
    model: str,
    rows: Sequence[dict[str, Any]],
    *,
    index: str = DOCS_INDEX,
    cache_dir: Path | None = None,
    max_tokens: int = DOCS_MAX_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """The answers of the quickstart's docs QA pipeline with ``model``, one per row."""
    from opsloop.pipelines import rag_qa  # lazy: loads the LLM stack

    pipeline = rag_qa(index, model, k=DOCS_K, max_tokens=max_tokens, name="docs-eval")
    pipeline.configure(
        client=client,
        tracer=client.tracing.tracer,
        home=client.settings.home,
        cache_dir=cache_dir,
    )
    out: list[str] = []
    for i, row in enumerate(rows):
        result = pipeline.run({"question": row["question"]})
        out.append(str(result.outputs.get("answer") or ""))
        if progress is not None:
            progress(i + 1, len(rows))
    return out


def score_docs_answers(
    predictions: Sequence[str], rows: Sequence[dict[str, Any]]
) -> dict[str, float]:
    """``contains`` (the quality metric) and ``token_f1`` of answers against the rows' answers."""
    refs = [list(r["answer"]) for r in rows]
    return {
        name: float(get_metric(name)(list(predictions), refs))
        for name in (DOCS_QUALITY_METRIC, "token_f1")
    }


def docs_prompts(
    client: Any,
    rows: Sequence[dict[str, Any]],
    *,
    index: str = DOCS_INDEX,
    cache_dir: Path | None = None,
) -> list[str]:
    """The prompt texts the docs QA pipeline's model gets for ``rows`` (its retrieve and prompt steps)."""
    from opsloop.pipelines import Pipeline, rag_qa  # lazy: loads the LLM stack

    steps = rag_qa(index, k=DOCS_K).steps[:2]  # retrieve, prompt
    pipeline = Pipeline(steps, name="docs-eval-prompts", inputs=["question"], outputs=["prompt"])
    pipeline.configure(
        client=client, tracer=client.tracing.tracer, home=client.settings.home, cache_dir=cache_dir
    )
    return [str(pipeline.run({"question": r["question"]}).outputs["prompt"]) for r in rows]


def generate_docs_answers(
    lm: Any,
    prompts: Sequence[str],
    *,
    max_tokens: int = DOCS_MAX_TOKENS,
    batch_size: int = 8,
    **gen: Any,
) -> list[str]:
    """What the pipeline's model step answers to ``prompts`` (each one user message, greedy),
    generated in batches on a loaded causal LM; ``gen``: more ``generate`` keywords."""
    texts = [lm.apply_chat_template([{"role": "user", "content": p}]) for p in prompts]
    # Batches of similar lengths pad less; answers come back in the prompts' order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: dict[int, str] = {}
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        results = lm.generate([texts[j] for j in idx], max_new_tokens=max_tokens, **gen)
        out.update((j, r.text.strip()) for j, r in zip(idx, results, strict=True))
    return [out[i] for i in range(len(texts))]
