"""Vector index on the lance backend: a collection larger than memory should be, in bounded RSS.

    .venv/bin/python benchmarks/vector_index_lance.py --lance-million   # 1,000,000 x 384 (minutes)
    .venv/bin/python benchmarks/vector_index_lance.py --n 100000        # quick
    .venv/bin/python benchmarks/vector_index_lance.py --lance-million --json out.json

``--lance-million`` builds 1,000,000 x 384 float32 vectors (1.5 GB raw) into a
``VectorIndex`` with ``backend="lance"`` under a temporary home, in batches of
``--batch`` (never all in memory at once: each batch is generated from its own
seed, added with metadata ``{"cat": i % 10}``, and dropped), trains its IVF-PQ
index, then searches ``--queries`` fresh queries one call each (what a service
does), unfiltered and with a ``cat`` filter (10% of the items) applied before
the search. Recall@10 is against exact answers for ``--exact-queries`` of them,
computed by streaming the batches again (regenerated from their seeds). The
data are clustered as in ``vector_index.py`` (``--clusters`` centres, N(0, 1)
noise), cosine vectors; the baseline in the same run is the backend's own exact
search (``exact=True``: a scan of every stored vector).

The process's peak RSS (``getrusage``) is reported and checked against
``--max-rss-gib`` (4 by default): the run fails if it went over.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from opsloop.retrieval import VectorIndex


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB on Linux


def batch_vectors(b: int, size: int, centres: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 100_003 + b)
    lab = rng.integers(0, len(centres), size)
    x = (centres[lab] + rng.normal(size=(size, centres.shape[1])).astype(np.float32)).astype(
        np.float32
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(
    q: np.ndarray, n: int, batch: int, centres: np.ndarray, k: int, cat: int | None
) -> list[list[str]]:
    """Exact top-k ids (cosine) by streaming the batches again."""
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), k), dtype=np.int64)
    for b, s in enumerate(range(0, n, batch)):
        m = min(batch, n - s)
        x = batch_vectors(b, m, centres, seed=1)
        sims = q @ x.T
        if cat is not None:
            sims[:, (np.arange(s, s + m) % 10) != cat] = -np.inf
        all_s = np.concatenate([best_s, sims], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + m), sims.shape)], axis=1)
        top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, top, axis=1)
        best_i = np.take_along_axis(all_i, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return [[f"v{i}" for i in row] for row in np.take_along_axis(best_i, order, axis=1)]


def recall(got: list[list[str]], want: list[list[str]]) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True)]))


def timed_search(idx: Any, q: np.ndarray, **kw: Any) -> tuple[float, list[list[str]]]:
    t = time.perf_counter()
    out = [[h.id for h in idx.search(v, 10, **kw)] for v in q]
    return len(q) / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lance-million", action="store_true", help="1,000,000 x 384")
    ap.add_argument("--n", type=int, default=100_000, help="stored vectors")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=100)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--max-rss-gib", type=float, default=4.0)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    n = 1_000_000 if args.lance_million else args.n
    centres = np.random.default_rng(99).normal(size=(args.clusters, args.dim)).astype(np.float32)
    home = Path(tempfile.mkdtemp(prefix="lance-bench-"))
    load = os.getloadavg()
    try:
        idx = VectorIndex.open(
            "bench", home=home, dim=args.dim, backend="lance", ann_threshold=n + 1
        )
        t0 = time.perf_counter()
        for b, s in enumerate(range(0, n, args.batch)):
            m = min(args.batch, n - s)
            x = batch_vectors(b, m, centres, seed=1)
            idx.add(
                [f"v{i}" for i in range(s, s + m)],
                x,
                metadata=[{"cat": i % 10} for i in range(s, s + m)],
            )
            del x
        ingest_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        idx.rebuild(train=True)
        index_s = time.perf_counter() - t1
        info = idx.info()
        q = batch_vectors(10_000, args.queries, centres, seed=2)
        ne = min(args.exact_queries, args.queries)
        qps, got = timed_search(idx, q)
        qps_f, got_f = timed_search(idx, q, filter={"cat": 3})
        qps_exact, got_exact = timed_search(idx, q[: min(20, ne)], exact=True)
        want = exact_top(q[:ne], n, args.batch, centres, 10, None)
        want_f = exact_top(q[:ne], n, args.batch, centres, 10, 3)
        rows = {
            "n": n,
            "dim": args.dim,
            "ingest_s": round(ingest_s, 1),
            "index_s": round(index_s, 1),
            "nlist": info["nlist"],
            "qps": round(qps, 1),
            "recall_at_10": round(recall(got[:ne], want), 3),
            "qps_filtered_10pct": round(qps_f, 1),
            "recall_at_10_filtered": round(recall(got_f[:ne], want_f), 3),
            "qps_exact_scan": round(qps_exact, 2),
            "exact_scan_agrees": round(recall(got_exact, want[: len(got_exact)]), 3),
            "disk_gib": round(
                sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 2**30, 2
            ),
            "peak_rss_gib": round(peak_rss_gib(), 2),
            "loadavg_at_start": [round(v, 2) for v in load],
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        }
        idx.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        print(f"{k:<{width}}  {v}")
    print(
        f"speed-up of the IVF-PQ search over the exact scan: {rows['qps'] / rows['qps_exact_scan']:.0f}x"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    assert rows["peak_rss_gib"] < args.max_rss_gib, (
        f"peak RSS {rows['peak_rss_gib']} GiB is over {args.max_rss_gib} GiB"
    )


if __name__ == "__main__":
    main()
