"""Dense, keyword (BM25) and hybrid retrieval on a labelled query set: opsloop's own docs QA.

    .venv/bin/python benchmarks/hybrid_retrieval.py            # about a minute (MiniLM on CPU)
    .venv/bin/python benchmarks/hybrid_retrieval.py --json out.json

The corpus is opsloop's docs (``README.md`` and ``docs/*.md``), cut into
Markdown-aware chunks of 800 characters (100 overlap) and embedded with the
bundled all-MiniLM-L6-v2. The queries are the docs QA questions
(``opsloop.quickstart.docs_questions()``): each names the file its answer
comes from and the accepted answers; a chunk is relevant when it comes from
that file and holds one of the answers (case-insensitive). Questions with no
relevant chunk (an answer the docs word differently) are left out and counted.

For each retriever of ``opsloop.retrieval.Retriever`` (``mode`` dense,
keyword, hybrid) it prints recall@k (the share of questions with a relevant
chunk among the first k, k = 1, 3, 5, 10) and MRR@10 (the mean of 1 / the
rank of the first relevant chunk, 0 when none is in the first 10).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Python puts this script's folder first on sys.path; its datasets.py would hide the
# `datasets` package that sentence-transformers imports.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

ROOT = Path(__file__).resolve().parent.parent
KS = (1, 3, 5, 10)


def corpus() -> list[dict[str, Any]]:
    from opsloop.datasets import ChunkingConfig, chunk_text

    cfg = ChunkingConfig(size=800, overlap=100)
    out = []
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        rel = f.relative_to(ROOT).as_posix()
        if rel == "docs/api.md":  # generated signatures, no prose
            continue
        text = f.read_text("utf-8")
        for i, c in enumerate(chunk_text(text, cfg, markdown=True)):
            out.append(
                {"id": f"{rel}#{i}", "text": text[c.start : c.end], "metadata": {"source": rel}}
            )
    return out


def relevant(chunks: list[dict[str, Any]], row: dict[str, Any]) -> set[str]:
    answers = [a.lower() for a in row["answer"]]
    return {
        c["id"]
        for c in chunks
        if c["metadata"]["source"] == row["source"] and any(a in c["text"].lower() for a in answers)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from opsloop.quickstart import docs_questions
    from opsloop.retrieval import Embedder, Retriever, VectorIndex, index_chunks

    chunks = corpus()
    rows = docs_questions()
    labelled = [(r, relevant(chunks, r)) for r in rows]
    kept = [(r, rel) for r, rel in labelled if rel]
    print(
        f"{len(chunks)} chunks from {len({c['metadata']['source'] for c in chunks})} files; "
        f"{len(kept)} of {len(rows)} questions have a relevant chunk",
        flush=True,
    )
    emb = Embedder.bundled()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as home:
        idx = VectorIndex.open("docs", home=home)
        t0 = time.perf_counter()
        index_chunks(idx, emb, chunks)
        print(f"embedded and indexed in {time.perf_counter() - t0:.1f} s", flush=True)
        for mode in ("dense", "keyword", "hybrid"):
            r = Retriever(idx, emb, mode=mode)
            hits_at = dict.fromkeys(KS, 0)
            rr = 0.0
            t0 = time.perf_counter()
            for row, rel in kept:
                got = [h.id for h in r.retrieve(row["question"], k=max(KS))]
                first = next((i for i, g in enumerate(got, start=1) if g in rel), None)
                for k in KS:
                    hits_at[k] += first is not None and first <= k
                rr += 0.0 if first is None else 1.0 / first
            elapsed = time.perf_counter() - t0
            n = len(kept)
            results[mode] = {
                **{f"recall@{k}": hits_at[k] / n for k in KS},
                "mrr@10": rr / n,
                "ms_per_query": elapsed / n * 1000,
            }
        idx.close()
    t = Table(title=f"Retrieval on the docs QA questions ({len(kept)} labelled queries)")
    t.add_column("retriever")
    for k in KS:
        t.add_column(f"recall@{k}", justify="right")
    t.add_column("MRR@10", justify="right")
    t.add_column("ms/query", justify="right")
    for mode, m in results.items():
        t.add_row(
            mode,
            *[f"{m[f'recall@{k}']:.3f}" for k in KS],
            f"{m['mrr@10']:.3f}",
            f"{m['ms_per_query']:.1f}",
        )
    Console().print(t)
    if args.json:
        payload = {
            "chunks": len(chunks),
            "queries": len(kept),
            "dropped": len(rows) - len(kept),
            "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
