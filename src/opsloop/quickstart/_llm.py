"""Quickstart LLM steps: choose between the two bundled LLMs, then answer questions about opsloop.

``select_llm``: ``opsloop select`` over SmolLM2-135M-Instruct and Gemma 3
270M on a small question-answering set (quality with a bootstrap interval,
p50/p95 latency, tokens/s, memory), registering the recommended one as
``quickstart-llm``. ``docs_qa``: the opsloop docs as a document collection,
indexed with the bundled MiniLM, a retrieval pipeline answering with
citations, registered as ``quickstart-docs-qa@prod`` and asked a few
questions (each a trace in the UI); the CLI then serves it.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsloop.quickstart._qa_data import DOCS_QA, GENERAL_QA, answers

if TYPE_CHECKING:
    from opsloop.quickstart._context import QuickstartContext

CANDIDATES = ("local:smollm2", "local:gemma3")
SELECT_PROMPT = "Answer with one or two words.\nQuestion: {{question}}"
LLM_MODEL_NAME = "quickstart-llm"
DOCS_COLLECTION = "opsloop-docs"
DOCS_INDEX = "opsloop-docs"
DOCS_PIPELINE = "quickstart-docs-qa"


def select_llm(ctx: QuickstartContext) -> str:
    """Score both bundled LLMs on ``GENERAL_QA``; register the recommendation."""
    from opsloop.selection import select_model  # lazy: loads the LLM stack

    rows = [{"id": r["id"], "question": r["question"], "answer": answers(r)} for r in GENERAL_QA]
    ctx.reporter.begin("Choosing an LLM", total=len(CANDIDATES) * len(rows))
    seen: dict[str, int] = {}

    def progress(label: str, done: int, total: int) -> None:
        step = done - seen.get(label, 0)
        seen[label] = done
        if step > 0:
            ctx.reporter.advance(step, f"{label} {done}/{total}")

    selection = select_model(
        list(CANDIDATES),
        rows,
        metrics=["contains", "token_f1"],
        prompt=SELECT_PROMPT,
        max_tokens=12,
        register_as=LLM_MODEL_NAME,
        client=ctx.client,
        progress=progress,
        experiment="quickstart-llm-selection",
        cache_dir=ctx.extra.get("model_cache"),
    )
    ctx.extra["selection"] = selection
    best = selection.best
    if best is None or selection.registered is None:
        return "no candidate met the constraints"
    ctx.client.registry.set_alias(LLM_MODEL_NAME, "champion", selection.registered.version)
    return (
        f"{best.candidate} (contains {best.quality:.2f}, p95 {best.p95_latency_ms or 0:.0f} ms), "
        f"registered as {selection.registered_uri}"
    )


def docs_files(scratch: Path) -> list[Path]:
    """opsloop's own docs: ``README.md`` and ``docs/*.md`` of a source checkout.

    An installed wheel has no ``docs/``: then the README, which the package
    metadata carries, is written to ``scratch`` and used alone.
    """
    root = Path(__file__).resolve().parents[3]
    readme, docs = root / "README.md", root / "docs"
    if readme.is_file() and docs.is_dir():
        return [readme, *sorted(docs.glob("*.md"))]

    text = metadata.metadata("opsloop")["Description"] or "opsloop"
    out = scratch / "README.md"
    out.write_text(str(text), encoding="utf-8")
    return [out]


def docs_qa(ctx: QuickstartContext) -> str:
    """Index the docs, register the retrieval pipeline, answer ``DOCS_QA`` with traces."""
    from opsloop.pipelines import build_rag_index, rag_qa  # lazy: loads the LLM stack

    ctx.reporter.begin("Question answering over the docs", total=3 + len(DOCS_QA))
    with tempfile.TemporaryDirectory(prefix="opsloop-quickstart-docs-") as tmp:
        files = docs_files(Path(tmp))
        version = ctx.client.datasets.create(
            DOCS_COLLECTION,
            files,
            kind="documents",
            chunking={"size": 800, "overlap": 100},
            description="opsloop's own documentation (the quickstart's QA pipeline reads it)",
        )
    ctx.reporter.advance(1, f"{len(files)} documents in {DOCS_COLLECTION}@{version.version}")
    cache = ctx.extra.get("model_cache")
    index = build_rag_index(
        ctx.client,
        f"{DOCS_COLLECTION}@{version.version}",
        DOCS_INDEX,
        home=ctx.client.settings.home,
        cache_dir=cache,
    )
    ctx.reporter.advance(1, f"{len(index)} chunks embedded with MiniLM")
    selection = ctx.extra.get("selection")
    model = getattr(selection, "registered_uri", None) or CANDIDATES[0]
    pipeline = rag_qa(DOCS_INDEX, model, k=3, max_tokens=64, name=DOCS_PIPELINE)
    mv = pipeline.register(
        ctx.client,
        DOCS_PIPELINE,
        alias="prod",
        description=f"Answers questions about opsloop from its docs, with citations ({model}).",
    )
    ctx.reporter.advance(1, f"registered {DOCS_PIPELINE}/{mv.version}")
    tracing = ctx.client.tracing
    pipeline.configure(
        client=ctx.client, tracer=tracing.tracer, home=ctx.client.settings.home, cache_dir=cache
    )
    answered: list[dict[str, Any]] = []
    for q in DOCS_QA:
        result = pipeline.run({"question": q}, session_id="quickstart", user_id="quickstart")
        answered.append({"question": q, "trace_id": result.trace_id, **result.outputs})
        ctx.reporter.advance(1, q)
    tracing.flush()
    ctx.extra["docs_answers"] = answered
    ctx.extra["docs_pipeline_uri"] = f"models:/{DOCS_PIPELINE}@prod"
    return f"{len(answered)} questions answered and traced; pipeline models:/{DOCS_PIPELINE}@prod"
