"""The vector index on FAISS: filters inside the search, keyword and hybrid search, pipelines.

Real parts only: real index folders under a temporary home, FAISS and bm25s
as installed, a second handle standing for another process's writes. The
filter evaluation in memory is checked against the SQL the filter compiles
to (the reference semantics), on random metadata, before and after writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidArgument, PipelineInvalid
from opsloop.retrieval import BM25, VectorIndex, rrf
from opsloop.retrieval._filter import compile_filter
from tests.test_retrieval import clustered, ids_of

pytestmark = pytest.mark.timeout(120)


def _random_metadata(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "Delta", "éclair", "zeta"]
    out = []
    for _ in range(n):
        md: dict[str, Any] = {}
        if rng.random() < 0.9:
            md["year"] = int(rng.integers(2000, 2025))
        if rng.random() < 0.2:
            md["year"] = str(rng.integers(2000, 2025))  # a text year: never a number
        if rng.random() < 0.8:
            md["w"] = words[int(rng.integers(len(words)))]
        if rng.random() < 0.5:
            md["tags"] = [
                words[int(i)] for i in rng.integers(0, len(words), int(rng.integers(0, 3)))
            ]
        if rng.random() < 0.3:
            md["flag"] = bool(rng.random() < 0.5)
        if rng.random() < 0.1:
            md["w"] = None
        if rng.random() < 0.3:
            md["score"] = float(rng.normal())
        out.append(md)
    return out


FILTERS: list[dict[str, Any]] = [
    {"year": 2010},
    {"year": {"$gte": 2012, "$lt": 2020}},
    {"year": {"$gte": "2010"}},
    {"year": {"$in": [2001, "2002", 2003]}},
    {"year": {"$nin": [2001, 2002]}},
    {"w": "alpha"},
    {"w": {"$ne": "alpha"}},
    {"w": None},
    {"w": {"$gt": "Delta"}},
    {"w": {"$lte": "beta"}},
    {"w": "nowhere"},
    {"w": {"$gt": "zzz"}},
    {"tags": "beta"},
    {"tags": {"$in": ["gamma", "éclair"]}},
    {"flag": True},
    {"flag": {"$ne": False}},
    {"score": {"$gt": 0.5}},
    {"$or": [{"w": "beta"}, {"flag": True}]},
    {"$and": [{"tags": "alpha"}, {"year": {"$lt": 2015}}]},
    {"$or": [{"w": "gamma"}, {"year": 2011}], "flag": {"$ne": True}},
]


def _sql_ids(idx: VectorIndex, flt: dict[str, Any]) -> set[str]:
    sql, params = compile_filter(flt)
    con = idx._conn()
    return {r[0] for r in con.execute(f"SELECT id FROM items WHERE rid IN ({sql})", params)}


def _all_ids(idx: VectorIndex, flt: dict[str, Any], q: Any) -> set[str]:
    return set(ids_of(idx.search(q, 10_000, filter=flt, exact=True)))


def test_filters_in_memory_match_sql_through_writes(home: Path) -> None:
    rng = np.random.default_rng(11)
    n = 600
    x = clustered(n, dim=16, seed=11)
    md = _random_metadata(rng, n)
    with VectorIndex.open("f", home=home) as idx, VectorIndex.open("f", home=home) as other:
        idx.add([f"i{i}" for i in range(n)], x, metadata=md)
        for flt in FILTERS:
            assert _all_ids(idx, flt, x[0]) == _sql_ids(idx, flt), flt
        # Upserts, deletes and adds through this handle and through another one (as another
        # process would): the columns and FAISS catch up with each.
        idx.add([f"i{i}" for i in range(0, 100)], x[:100], metadata=_random_metadata(rng, 100))
        idx.delete([f"i{i}" for i in range(100, 200)])
        other.add([f"j{i}" for i in range(50)], x[:50], metadata=_random_metadata(rng, 50))
        other.delete([f"i{i}" for i in range(200, 230)])
        other.add([f"i{i}" for i in range(230, 260)], x[:30], metadata=_random_metadata(rng, 30))
        for flt in FILTERS:
            want = _sql_ids(idx, flt)
            assert _all_ids(idx, flt, x[0]) == want, flt
            assert _all_ids(other, flt, x[0]) == want, flt
        assert len(idx) == n - 100 - 30 + 50


def test_filters_inside_ivf_keep_recall_at_1_and_50_percent(home: Path) -> None:
    n = 6000
    x = clustered(n, dim=32, clusters=60, seed=21)
    q = clustered(100, dim=32, clusters=60, seed=22)
    with VectorIndex.open("ann", home=home, ann_threshold=1000) as idx:
        idx.add([f"v{i}" for i in range(n)], x, metadata=[{"pct": i % 100} for i in range(n)])
        info = idx.info()
        assert info["search"] == "ivf" and info["engine"] == "faiss"
        for flt, share in (({"pct": 7}, 0.01), ({"pct": {"$lt": 50}}, 0.5)):
            approx = idx.search_batch(q, 10, filter=flt)
            exact = idx.search_batch(q, 10, filter=flt, exact=True)
            assert all(len(a) == 10 for a in approx)
            for hits in approx:
                for h in hits:
                    assert h.metadata["pct"] == 7 if share == 0.01 else h.metadata["pct"] < 50
            rec = np.mean(
                [
                    len(set(ids_of(a)) & set(ids_of(e))) / 10
                    for a, e in zip(approx, exact, strict=True)
                ]
            )
            assert rec >= 0.95, (flt, rec)
        # Exact filtered answers are the brute-force answers over the matching rows.
        xs = x / np.linalg.norm(x, axis=1, keepdims=True)
        rows = np.flatnonzero(np.arange(n) % 100 == 7)
        sims = (q[:5] / np.linalg.norm(q[:5], axis=1, keepdims=True)) @ xs[rows].T
        for i in range(5):
            want = [f"v{rows[j]}" for j in np.argsort(-sims[i])[:10]]
            assert ids_of(idx.search(q[i], 10, filter={"pct": 7}, exact=True)) == want


def test_bm25_and_rrf() -> None:
    bm = BM25(["the cat sat on the mat", "dogs chase cats", "a warranty for kettles", ""])
    top = bm.top("kettle warranty", 3)
    assert [i for i, _ in top] == [2] and top[0][1] > 0
    assert bm.top("cat", 5)[0][0] == 0
    assert bm.top("cat", 5, mask=np.array([False, True, True, True])) == []
    assert bm.top("unheard-of words", 3) == []
    assert BM25([]).top("x", 3) == []
    fused = rrf([["a", "b", "c"], ["c", "d"]], 3)
    assert [i for i, _ in fused] == ["c", "a", "b"]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)


def test_keyword_and_hybrid_search(home: Path) -> None:
    texts = {
        "guitar": "A man is playing a guitar on stage.",
        "kettle": "The kettle warranty lasts two years from the date of purchase.",
        "cake": "Whisk the eggs with sugar, then fold in the flour to make a sponge cake.",
        "rain": "Heavy rain and strong winds are expected along the coast tomorrow.",
        "pip": "Install the package with pip and import it in your script.",
    }
    keys = list(texts)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(len(keys), 8)).astype(np.float32)
    with VectorIndex.open("kw", home=home) as idx:
        idx.add(keys, x, texts=list(texts.values()), metadata=[{"k": k} for k in keys])
        hits = idx.keyword_search("how long is the warranty on my kettle?", k=3)
        assert ids_of(hits) == ["kettle"] and hits[0].text == texts["kettle"]
        assert hits[0].metadata == {"k": "kettle"} and hits[0].score > 0
        assert idx.keyword_search("kettle", k=3, filter={"k": {"$ne": "kettle"}}) == []
        # Dense ranks "rain" first (the query vector is its vector), keywords find only
        # "cake": fused, "cake" (first in one ranking, and in the other) leads "rain"
        # (first in one ranking only, 1/61), ahead of items only dense search ranked.
        fused = idx.hybrid_search(x[keys.index("rain")], "sponge cake with flour", k=3)
        assert ids_of(fused)[:2] == ["cake", "rain"]
        assert fused[1].score == pytest.approx(1 / 61) and fused[2].score < 1 / 61
        assert ids_of(idx.hybrid_search(x[0], "guitar stage", k=1)) == ["guitar"]
        # The keyword index follows writes.
        idx.add(["kettle"], x[1:2], texts=["A teapot, not the other thing."])
        assert idx.keyword_search("warranty", k=3) == []
        idx.delete(["pip"])
        assert idx.keyword_search("pip install", k=3) == []
        with pytest.raises(InvalidArgument, match="non-empty string"):
            idx.keyword_search("  ")
        with pytest.raises(InvalidArgument, match="k must be"):
            idx.hybrid_search(x[0], "cake", k=0)
        with pytest.raises(InvalidArgument, match="unknown operator"):
            idx.keyword_search("cake", filter={"k": {"$regex": "c"}})


def test_retrieve_step_keyword_and_hybrid_modes(home: Path, client: Any) -> None:
    from opsloop.pipelines import Pipeline, RetrieveStep, RunContext
    from opsloop.retrieval import Retriever

    with VectorIndex.open("kb", home=home) as idx:
        idx.add(
            ["w", "s"],
            np.eye(2, 4, dtype=np.float32) + 0.1,
            texts=["The kettle warranty lasts two years.", "Shipping is free over 50 euros."],
            metadata=[{"source": "warranty.md"}, {"source": "shipping.md"}],
        )

        class Fixed:  # an embedder object: the step's embedder may be any `embed(texts)` object
            dim = 4

            def embed(self, texts: list[str]) -> Any:
                return np.tile(np.eye(2, 4, dtype=np.float32)[1] + 0.1, (len(texts), 1))

        r = Retriever(idx, Fixed(), mode="keyword")  # type: ignore[arg-type]
        assert ids_of(r.retrieve("kettle warranty", k=2)) == ["w"]
        r = Retriever(idx, Fixed(), mode="hybrid")  # type: ignore[arg-type]
        assert ids_of(r.retrieve("kettle warranty", k=2)) in (["w", "s"], ["s", "w"])
        with pytest.raises(InvalidArgument, match="mode must be"):
            Retriever(idx, Fixed(), mode="sparse")  # type: ignore[arg-type]
    p = Pipeline(
        [RetrieveStep("retrieve", "kb", query="{{ question }}", k=2, mode="keyword")],
        name="kw",
        inputs=["question"],
        outputs=["retrieve"],
    )
    p.context = RunContext(client=client, home=home, tracer=client.tracing.tracer)
    out = p({"question": "how long is the warranty?"})
    assert [h["id"] for h in out["retrieve"]] == ["w"]
    assert out["retrieve"][0]["source"] == "warranty.md"
    assert Pipeline.from_dict(p.to_dict()).to_dict() == p.to_dict()
    assert p.to_dict()["steps"][0]["mode"] == "keyword"
    with pytest.raises(PipelineInvalid, match="mode"):
        RetrieveStep("retrieve", "kb", mode="sparse")
    # The CLI searches by keywords without loading an embedder.
    from typer.testing import CliRunner

    from opsloop.cli import app

    h = ["--home", str(home), "index", "search", "kb", "kettle warranty"]
    res = CliRunner().invoke(app, [*h, "--mode", "keyword", "--json"])
    assert res.exit_code == 0, res.output
    assert [x["id"] for x in json.loads(res.stdout)] == ["w"]
    res = CliRunner().invoke(app, [*h, "--mode", "sparse"])
    assert res.exit_code == 1 and "error [INVALID_ARGUMENT]" in res.output
