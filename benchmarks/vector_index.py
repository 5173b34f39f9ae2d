"""Vector index: build time, queries per second and recall@10, approximate (IVF) vs exact.

    .venv/bin/python benchmarks/vector_index.py                  # 100,000 x 384 (a few minutes)
    .venv/bin/python benchmarks/vector_index.py --n 20000 --queries 200   # quick
    .venv/bin/python benchmarks/vector_index.py --json out.json

The data are synthetic but clustered, so an approximate index has structure
to exploit, as it has with real sentence embeddings (uniform random vectors
in 384 dimensions have no near neighbours to speak of, and every ANN method
degrades to a scan on them): ``--clusters`` centres drawn from N(0, 1), each
vector a centre plus N(0, ``--spread``^2) noise per dimension, then used as
cosine vectors. Queries are fresh points from the same mixture (not stored
vectors). Each vector carries metadata ``{"cat": i % 10, "year": 2000 + i % 25}``.

Rows (``ivf`` is the index's default search, ``exact`` the same index with
``exact=True``, a full matrix product over every stored vector):

- ``search``: one query per call, hits with ids, metadata and texts returned
  (what a caller gets), over ``--queries`` queries;
- ``search_batch``: all queries in one call;
- ``filter cat=3`` (10% of the vectors match), the same filter every query:
  the matching set is computed by SQLite once and cached with the snapshot;
- ``filter year>=Y`` with Y cycling over 25 values (more than the cache holds),
  so SQLite evaluates the filter on every query.

Recall@10 is measured against the exact answers of the same queries (with the
same filter). Build time is the adds in batches of 10,000 with metadata,
training of the IVF quantizer included (it trains at 10,000 vectors and again
at 40,000); ``rebuild()`` then retrains on everything, and the rows are
measured again.

BLAS runs on one thread by default (``--threads``): on a shared machine a
multi-threaded OpenBLAS spins waiting for busy cores, which slows small matrix
products (the IVF lists) far more than the one big product of exact search,
and the figures would measure the machine's load. ``--threads 0`` keeps the
library's default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Comparison, Figure, print_table, timed, write_json


def make_data(n: int, n_queries: int, dim: int, clusters: int, spread: float) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)

    def draw(m: int) -> Any:
        lab = rng.integers(0, clusters, m)
        return (centres[lab] + spread * rng.normal(size=(m, dim))).astype(np.float32)

    return draw(n), draw(n_queries)


def recall(got: list[list[Any]], truth: list[list[Any]], k: int) -> float:
    hits = total = 0
    for g, t in zip(got, truth, strict=True):
        want = {h.id for h in t[:k]}
        hits += len({h.id for h in g[:k]} & want)
        total += len(want)
    return hits / total if total else 1.0


def measure(idx: Any, q: Any, args: argparse.Namespace, label: str) -> list[Comparison]:
    k = 10
    nq = len(q)
    rows: list[Comparison] = []
    n_exact = min(nq, args.exact_queries)

    def run_single(exact: bool, m: int, flt: Any = None) -> tuple[float, list[Any]]:
        out: list[Any] = []
        t0 = time.perf_counter()
        for i in range(m):
            f = flt(i) if callable(flt) else flt
            out.append(idx.search(q[i], k, filter=f, exact=exact))
        return time.perf_counter() - t0, out

    # Exact answers for every query: the recall reference (batched, so it is quick).
    truth = idx.search_batch(q, k, exact=True)
    t_ivf, got = run_single(False, nq)
    t_ex, _ = run_single(True, n_exact)
    rows.append(
        Comparison(
            f"search k=10 {label}",
            "single",
            "queries",
            Figure(nq, t_ivf),
            Figure(n_exact, t_ex),
            note=f"recall@10 {recall(got, truth, k):.3f}",
        )
    )
    got_b: list[Any] = []

    def ivf_batch() -> None:
        got_b[:] = idx.search_batch(q, k)

    t_ivf_b = timed(ivf_batch)
    t_ex_b = timed(lambda: idx.search_batch(q, k, exact=True))
    rows.append(
        Comparison(
            f"search_batch k=10 {label}",
            f"batch of {nq}",
            "queries",
            Figure(nq, t_ivf_b),
            Figure(nq, t_ex_b),
            note=f"recall@10 {recall(got_b, truth, k):.3f}",
        )
    )
    cat = {"cat": 3}
    truth_f = idx.search_batch(q, k, filter=cat, exact=True)
    t_ivf_f, got_f = run_single(False, nq, cat)
    t_ex_f, _ = run_single(True, n_exact, cat)
    rows.append(
        Comparison(
            f"filter cat=3 (10%) {label}",
            "single",
            "queries",
            Figure(nq, t_ivf_f),
            Figure(n_exact, t_ex_f),
            note=f"recall@10 {recall(got_f, truth_f, k):.3f}",
        )
    )

    def year(i: int) -> dict[str, Any]:
        return {"year": {"$gte": 2000 + (i % 25)}}

    t_ivf_y, got_y = run_single(False, nq, year)
    t_ex_y, truth_y = run_single(True, n_exact, year)
    rows.append(
        Comparison(
            f"filter year>=Y uncached {label}",
            "single",
            "queries",
            Figure(nq, t_ivf_y),
            Figure(n_exact, t_ex_y),
            note=f"recall@10 {recall(got_y[:n_exact], truth_y, k):.3f}",
        )
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="stored vectors")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=200, help="single exact queries timed")
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--spread", type=float, default=1.0)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (0: library default)")
    args = ap.parse_args()
    if args.threads > 0:
        # Read when numpy loads OpenBLAS, so set before the first numpy import.
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy as np

    from opsloop.retrieval import VectorIndex

    x, q = make_data(args.n, args.queries, args.dim, args.clusters, args.spread)
    print(
        f"{args.n:,} vectors x {args.dim} ({args.clusters} clusters), {args.queries:,} queries",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as home:
        idx = VectorIndex.open("bench", home=home)
        ids = [f"v{i}" for i in range(args.n)]
        md = [{"cat": i % 10, "year": 2000 + i % 25} for i in range(args.n)]
        texts = [f"vector {i}" for i in range(args.n)]
        t0 = time.perf_counter()
        step = 10_000
        for s in range(0, args.n, step):
            idx.add(
                ids[s : s + step],
                x[s : s + step],
                metadata=md[s : s + step],
                texts=texts[s : s + step],
            )
        build_s = time.perf_counter() - t0
        info = idx.info()
        print(
            f"build: {build_s:.1f} s ({args.n / build_s:,.0f} vectors/s); "
            f"search={info['search']} nlist={info['nlist']} nprobe={info['nprobe']} "
            f"trained on {info['trained_on']:,}; {info['size_bytes'] / 2**20:.0f} MiB on disk",
            flush=True,
        )
        # Sanity: the index's exact search is numpy's brute force.
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q[:5] / np.linalg.norm(q[:5], axis=1, keepdims=True)
        brute = np.argsort(-(qn @ xn.T), axis=1)[:, :10]
        mine = idx.search_batch(q[:5], 10, exact=True)
        agree = np.mean(
            [
                len({f"v{j}" for j in b} & {h.id for h in m}) / 10
                for b, m in zip(brute, mine, strict=True)
            ]
        )
        print(f"exact search agrees with numpy brute force: {agree:.3f}", flush=True)
        rows = measure(idx, q, args, "(as built)")
        rebuild_s = timed(idx.rebuild)
        info2 = idx.info()
        print(
            f"rebuild: {rebuild_s:.1f} s; nlist={info2['nlist']} nprobe={info2['nprobe']}",
            flush=True,
        )
        rows += measure(idx, q, args, "(rebuilt)")
        idx.close()
    print_table(
        f"Vector index: {args.n:,} x {args.dim}, approximate (IVF) vs exact",
        rows,
        ours="ivf",
        theirs="exact",
    )
    if args.json:
        write_json(
            args.json,
            {
                "n": args.n,
                "dim": args.dim,
                "build_s": build_s,
                "rebuild_s": rebuild_s,
                "index": info,
                "index_rebuilt": info2,
                "rows": [r.as_dict() for r in rows],
            },
        )


if __name__ == "__main__":
    main()
