"""The embedded vector index: storage, filters, search quality, bad input, processes, MiniLM.

Real parts only: real SQLite files and vector files under a temporary home,
real subprocesses (two writers at once; a writer killed with SIGKILL), and the
bundled all-MiniLM-L6-v2 for the retrieval tests.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import Embedder, Retriever, SearchHit, VectorIndex, index_chunks
from tests._procs import LineReader, kill, start_script

pytestmark = pytest.mark.timeout(300)


def clustered(n: int, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(clusters, dim))
    lab = rng.integers(0, clusters, n)
    return (centres[lab] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ids_of(hits: list[SearchHit]) -> list[str]:
    return [h.id for h in hits]


@pytest.fixture(params=["faiss", "lance"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The index contract tests run on both backends (``Settings.index_backend``)."""
    if request.param == "lance":
        pytest.importorskip("lancedb")
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", request.param)
    monkeypatch.delenv("OPSLOOP_INDEX_URI", raising=False)
    return str(request.param)


# ---------------------------------------------------------------- storage


def test_add_upsert_delete_and_reopen(home: Path, backend: str) -> None:
    x = clustered(50)
    with VectorIndex.open("docs", home=home) as idx:
        assert idx.dim is None and len(idx) == 0 and idx.search(x[0], 3) == []
        idx.add(
            [f"d{i}" for i in range(50)],
            x,
            metadata=[{"n": i} for i in range(50)],
            texts=[f"text {i}" for i in range(50)],
        )
        assert idx.dim == 32 and len(idx) == 50 and "d7" in idx and "zz" not in idx
        top = idx.search(x[7], 1)[0]
        assert (top.id, top.metadata, top.text) == ("d7", {"n": 7}, "text 7")
        assert top.score == pytest.approx(1.0, abs=1e-5)
        # Upsert: same id, new vector, metadata and text; the old vector no longer answers.
        idx.add(["d7"], x[8:9] * 3, metadata=[{"n": 700}], texts=["new"])
        assert len(idx) == 50
        hits = idx.search(x[8], 2)
        assert {h.id for h in hits} == {"d7", "d8"}
        assert next(h for h in hits if h.id == "d7").metadata == {"n": 700}
        assert "d7" not in ids_of(idx.search(x[7], 1))
        assert idx.delete(["d1", "d2", "missing"]) == 2
        assert len(idx) == 48 and "d1" not in idx
        assert "d1" not in ids_of(idx.search(x[1], 48))
    assert VectorIndex.list(home) == ["docs"]
    with VectorIndex.open("docs", home=home, create=False) as again:
        assert len(again) == 48 and again.dim == 32 and again.metric == "cosine"
        hit = again.search(x[8], 1, filter={"n": 700})[0]
        assert (hit.id, hit.text) == ("d7", "new")
        info = again.info()
        assert info["engine"] == backend
        # FAISS keeps deleted rows until a rebuild; Lance's deletion files hide them at once.
        rows, deleted = (51, 3) if backend == "faiss" else (48, 0)
        assert (info["count"], info["rows"], info["deleted"], info["search"]) == (
            48,
            rows,
            deleted,
            "exact",
        )
    VectorIndex.drop("docs", home=home)
    assert VectorIndex.list(home) == []
    with pytest.raises(NotFound):
        VectorIndex.open("docs", home=home, create=False)
    with pytest.raises(NotFound):
        VectorIndex.drop("docs", home=home)


def test_exact_search_matches_brute_force_in_order(home: Path, backend: str) -> None:
    x = clustered(300, dim=16, seed=1)
    q = clustered(5, dim=16, seed=2)
    ids = [f"v{i}" for i in range(300)]
    with (
        VectorIndex.open("cos", home=home) as c,
        VectorIndex.open("l2", home=home, metric="l2") as e,
    ):
        c.add(ids, x)
        e.add(ids, x)
        sims = unit(q) @ unit(x).T
        dists = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)
        for i in range(len(q)):
            hits = c.search(q[i], 10)
            assert ids_of(hits) == [ids[j] for j in np.argsort(-sims[i])[:10]]
            assert [h.score for h in hits] == pytest.approx(np.sort(sims[i])[::-1][:10], abs=1e-5)
            hits = e.search(q[i], 10)
            assert ids_of(hits) == [ids[j] for j in np.argsort(dists[i])[:10]]
            assert [h.score for h in hits] == pytest.approx(np.sort(dists[i])[:10], rel=1e-4)
        batch = c.search_batch(q, 4)
        assert [ids_of(b) for b in batch] == [ids_of(c.search(v, 4)) for v in q]


def test_a_deleted_majority_is_compacted_and_searches_stay_right(home: Path) -> None:
    x = clustered(1200, seed=3)
    with VectorIndex.open("compact", home=home) as idx:
        idx.add([f"v{i}" for i in range(1200)], x)
        idx.delete([f"v{i}" for i in range(0, 1200, 3)] + [f"v{i}" for i in range(1, 1200, 3)])
        info = idx.info()
        assert info["count"] == 400 and info["rows"] == 400  # rebuilt: dead rows gone
        files = sorted(p.name for p in idx.path.iterdir() if p.name.startswith("vectors-"))
        assert len(files) == 1 and (idx.path / files[0]).stat().st_size == 400 * 32 * 4
        for i in (2, 500, 1199):
            assert ids_of(idx.search(x[i], 1)) == [f"v{i}"]


# ---------------------------------------------------------------- filters

ITEMS = [
    {"source": "a.md", "year": 2018, "draft": False, "tags": ["x", "y"], "score": 0.5},
    {"source": "b.md", "year": 2020, "draft": True, "tags": ["y"], "score": 1.5},
    {"source": "a.md", "year": 2021, "draft": False, "tags": [], "note": None},
    {"source": "c.txt", "year": 2023, "tags": ["z"], "score": 3},
    {"source": "b.md", "year": "2022", "draft": False},  # a text year: never a number
    {"source": "d.md"},
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"source": "a.md"}, [0, 2]),
        ({"source": {"$eq": "b.md"}}, [1, 4]),
        ({"source": {"$ne": "a.md"}}, [1, 3, 4, 5]),
        ({"year": {"$gt": 2020}}, [2, 3]),
        ({"year": {"$gte": 2020}}, [1, 2, 3]),
        ({"year": {"$lt": 2020}}, [0]),
        ({"year": {"$lte": 2020}}, [0, 1]),
        ({"year": {"$gte": 2019, "$lt": 2023}}, [1, 2]),
        ({"year": {"$gte": "2000"}}, [4]),  # text compares with text only
        ({"source": {"$in": ["c.txt", "d.md"]}}, [3, 5]),
        ({"year": {"$in": [2018, "2022"]}}, [0, 4]),
        ({"source": {"$nin": ["a.md", "b.md"]}}, [3, 5]),
        ({"draft": True}, [1]),
        ({"draft": False}, [0, 2, 4]),
        ({"draft": {"$ne": True}}, [0, 2, 3, 4, 5]),  # a missing key is "not equal"
        ({"note": None}, [2]),
        ({"tags": "y"}, [0, 1]),  # a list matches when it holds the value
        ({"tags": {"$in": ["x", "z"]}}, [0, 3]),
        ({"score": 1.5}, [1]),
        ({"score": {"$gte": 1}}, [1, 3]),
        ({"$and": [{"source": "a.md"}, {"year": {"$gt": 2019}}]}, [2]),
        ({"$or": [{"source": "c.txt"}, {"draft": True}]}, [1, 3]),
        ({"$or": [{"source": "a.md"}, {"year": 2023}], "draft": False}, [0, 2]),
        ({"source": "nowhere"}, []),
    ],
)
def test_filters(home: Path, backend: str, flt: dict[str, Any], expected: list[int]) -> None:
    x = clustered(len(ITEMS), dim=8, seed=4)
    with VectorIndex.open("f", home=home) as idx:
        idx.add([f"i{i}" for i in range(len(ITEMS))], x, metadata=ITEMS)
        got = idx.search(x[0], 10, filter=flt)
        assert sorted(ids_of(got)) == [f"i{i}" for i in expected]
        assert ids_of(got) == ids_of(idx.search(x[0], 10, filter=flt, exact=True))


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ({"year": {"$regex": "x"}}, "unknown operator '$regex'"),
        ({"$not": {"a": 1}}, "unknown operator '$not'"),
        ({"year": {"$gt": [1]}}, "not a string, number, bool or null"),
        ({"year": {"$gt": True}}, "needs a number or a string"),
        ({"year": {"$in": []}}, "non-empty list"),
        ({"year": {"$in": 3}}, "non-empty list"),
        ({"$or": []}, "non-empty list of filters"),
        ({"year": [2020, 2021]}, "use $in for a list"),
        ({"year": {}}, "has no operator"),
        ({"year": float("nan")}, "not a finite number"),
    ],
)
def test_bad_filters_are_refused_clearly(home: Path, backend: str, flt: Any, message: str) -> None:
    with VectorIndex.open("f", home=home) as idx:
        idx.add(["a"], np.ones((1, 4)), metadata=[{"year": 2020}])
        with pytest.raises(InvalidArgument) as ei:
            idx.search(np.ones(4), 1, filter=flt)
        assert message in str(ei.value) and ei.value.code == "INVALID_ARGUMENT"


# ---------------------------------------------------------------- approximate search


def test_ivf_recall_on_clustered_vectors(home: Path) -> None:
    x = clustered(4000, dim=32, clusters=60, seed=5)
    q = clustered(200, dim=32, clusters=60, seed=6)
    ids = [f"v{i}" for i in range(4000)]
    meta = [{"half": i % 2} for i in range(4000)]
    with VectorIndex.open("ann", home=home, ann_threshold=1000) as idx:
        for s in range(0, 4000, 500):  # trains at 1,000 and again at 4,000
            idx.add(ids[s : s + 500], x[s : s + 500], metadata=meta[s : s + 500])
        info = idx.info()
        assert info["search"] == "ivf" and info["trained_on"] == 4000
        assert 8 <= info["nlist"] <= 128 and 1 <= info["nprobe"] < info["nlist"]
        exact = idx.search_batch(q, 10, exact=True)
        approx = idx.search_batch(q, 10)
        rec = np.mean(
            [len(set(ids_of(a)) & set(ids_of(e))) / 10 for a, e in zip(approx, exact, strict=True)]
        )
        assert rec >= 0.9, rec
        single = [idx.search(v, 10) for v in q[:20]]
        assert [ids_of(s) for s in single] == [ids_of(a) for a in approx[:20]]
        flt = {"half": 1}
        exact_f = idx.search_batch(q, 10, filter=flt, exact=True)
        approx_f = idx.search_batch(q, 10, filter=flt)
        assert all(h.metadata["half"] == 1 for hs in approx_f for h in hs)
        rec_f = np.mean(
            [
                len(set(ids_of(a)) & set(ids_of(e))) / 10
                for a, e in zip(approx_f, exact_f, strict=True)
            ]
        )
        assert rec_f >= 0.9, rec_f
        # Vectors added after training go to their lists and are found.
        extra = clustered(300, dim=32, clusters=60, seed=7)
        idx.add([f"new{i}" for i in range(300)], extra)
        assert idx.info()["trained_on"] == 4000  # not grown fourfold: no retraining
        found = sum(ids_of(idx.search(v, 1)) == [f"new{i}"] for i, v in enumerate(extra))
        assert found >= 295
    with VectorIndex.open("ann", home=home) as again:  # the lists and centroids persist
        assert again.info()["search"] == "ivf"
        assert ids_of(again.search(extra[5], 1)) == ["new5"]


# ---------------------------------------------------------------- bad input


def test_bad_input_is_refused_and_damages_nothing(home: Path, backend: str) -> None:
    x = clustered(20, dim=8)
    with VectorIndex.open("safe", home=home) as idx:
        idx.add([f"v{i}" for i in range(20)], x, metadata=[{"i": i} for i in range(20)])
        before = [ids_of(h) for h in idx.search_batch(x[:3], 5)]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"ids": ["w"], "vectors": np.ones((1, 9))}, "9 dimensions; index 'safe' holds 8"),
            ({"ids": ["w", "w"], "vectors": np.ones((2, 8))}, "appears twice"),
            ({"ids": ["w"], "vectors": np.ones((2, 8))}, "2 vectors for 1 ids"),
            ({"ids": ["w"], "vectors": [[1.0] * 7 + [float("nan")]]}, "NaN"),
            ({"ids": ["w"], "vectors": np.zeros((1, 8))}, "all zeros"),
            ({"ids": ["w"], "vectors": [[1, 2], [3]]}, "[n, dim]"),
            ({"ids": [""], "vectors": np.ones((1, 8))}, "non-empty string"),
            ({"ids": "w", "vectors": np.ones((1, 8))}, "list of strings"),
            ({"ids": ["w"], "vectors": np.ones((1, 8)), "metadata": [{"$x": 1}]}, "start with '$'"),
            ({"ids": ["w"], "vectors": np.ones((1, 8)), "metadata": [{}, {}]}, "2 entries for 1"),
            ({"ids": ["w"], "vectors": np.ones((1, 8)), "metadata": [{"o": object()}]}, "JSON"),
            ({"ids": ["w"], "vectors": np.ones((1, 8)), "texts": [3]}, "texts[0]"),
        ]
        for kwargs, message in cases:
            ids, vectors = kwargs.pop("ids"), kwargs.pop("vectors")
            with pytest.raises(InvalidArgument) as ei:
                idx.add(ids, vectors, **kwargs)
            assert message in str(ei.value), (message, str(ei.value))
        with pytest.raises(InvalidArgument, match="9 dimensions"):
            idx.search(np.ones(9), 1)
        for k in (0, -1, 10_001, 2.5, True):
            with pytest.raises(InvalidArgument, match="k must be"):
                idx.search(x[0], k)  # type: ignore[arg-type]
        assert len(idx) == 20 and "w" not in idx
        assert [ids_of(h) for h in idx.search_batch(x[:3], 5)] == before
        assert idx.info()["rows"] == 20
    with pytest.raises(InvalidArgument, match="uses metric 'cosine'"):
        VectorIndex.open("safe", home=home, metric="l2")
    with pytest.raises(InvalidArgument, match="8-dimensional"):
        VectorIndex.open("safe", home=home, dim=16)
    for name in ("../x", "", "a/b", ".hidden", "x" * 200):
        with pytest.raises(InvalidArgument, match="index name"):
            VectorIndex.open(name, home=home)
    with pytest.raises(InvalidArgument, match="metric must be"):
        VectorIndex.open("m", home=home, metric="dot")


# ---------------------------------------------------------------- processes

WRITER = r"""
import sys, numpy as np
from opsloop.retrieval import VectorIndex
home, tag, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(sum(map(ord, tag)))  # str hash() differs per process
idx = VectorIndex.open("shared", home=home, dim=64, metric="l2")
print("ready", flush=True)
for s in range(0, n, batch):
    m = min(batch, n - s)
    x = rng.normal(size=(m, 64)).astype(np.float32)
    # Two components encode the item number, so a reader can check each vector (kept
    # small: L2 scores in float32 lose precision on vectors of a large norm).
    x[:, 0] = np.arange(s, s + m) // 1000
    x[:, 1] = np.arange(s, s + m) % 1000 / 100
    idx.add([f"{tag}-{i}" for i in range(s, s + m)], x, metadata=[{"i": i} for i in range(s, s + m)])
    print(f"committed {s + m}", flush=True)
"""


def _check_items(idx: VectorIndex, tag: str, n: int) -> None:
    """Items ``tag-0 .. tag-(n-1)`` are stored, each on the row holding its own vector."""
    con = sqlite3.connect(idx.path / "index.sqlite")
    try:
        state = dict(con.execute("SELECT key, value FROM state").fetchall())
        rows = con.execute("SELECT id, rid FROM items WHERE id LIKE ?", (tag + "-%",)).fetchall()
    finally:
        con.close()
    assert sorted(int(i.split("-")[1]) for i, _ in rows) == list(range(n))
    raw = np.fromfile(idx.path / state["vectors_file"], dtype=np.float32).reshape(-1, 64)
    num = np.array([int(i.split("-")[1]) for i, _ in rows])
    stored = raw[[rid for _, rid in rows]]
    assert np.array_equal(stored[:, 0], num // 1000)
    assert np.allclose(stored[:, 1], (num % 1000) / 100)
    for id_, rid in rows[:: max(1, len(rows) // 5)]:
        assert idx.search(raw[rid], 1)[0].id == id_


def test_two_processes_add_at_once(home: Path) -> None:
    procs = [start_script(WRITER, home, tag, "400", "20") for tag in ("a", "b")]
    try:
        for p in procs:
            assert p.wait(timeout=240) == 0, p.stderr.read() if p.stderr else ""
    finally:
        for p in procs:
            kill(p)
    with VectorIndex.open("shared", home=home) as idx:
        assert len(idx) == 800 and idx.info()["rows"] == 800
        for tag in ("a", "b"):
            _check_items(idx, tag, 400)


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.3])
def test_sigkill_mid_add_keeps_every_committed_batch(home: Path, delay_s: float) -> None:
    # Big batches, so the kill lands inside an add (writing vectors or the SQLite rows).
    proc = start_script(WRITER, home, "k", "200000", "20000")
    assert proc.stdout is not None
    lines = LineReader(proc.stdout)
    try:
        assert lines.next() == "ready"
        confirmed = 0
        while confirmed < 20000:
            line = lines.next(timeout=120)
            assert line is not None, proc.stderr.read() if proc.stderr else ""
            confirmed = int(line.split()[1])
        time.sleep(delay_s)
    finally:
        kill(proc)
    con = sqlite3.connect(home / "indexes" / "shared" / "index.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    with VectorIndex.open("shared", home=home) as idx:
        n = len(idx)
        assert n >= confirmed and n % 20000 == 0
        assert idx.info()["rows"] == n
        _check_items(idx, "k", n)
        # Still writable; a writer cuts off whatever the killed one left past the commit.
        idx.add(["after"], np.ones((1, 64)), metadata=[{"i": -1}])
        assert ids_of(idx.search(np.ones(64), 1)) == ["after"]
        vec_file = next(p for p in idx.path.iterdir() if p.name.startswith("vectors-"))
        assert vec_file.stat().st_size == (n + 1) * 64 * 4


# ---------------------------------------------------------------- the bundled MiniLM

TEXTS = {
    "guitar": "A man is playing a guitar on stage.",
    "market": "The stock market fell sharply today after the bank raised rates.",
    "recipe": "Whisk the eggs with sugar, then fold in the flour to make a sponge cake.",
    "python": "Install the package with pip and import it in your Python script.",
    "weather": "Heavy rain and strong winds are expected along the coast tomorrow.",
}


@pytest.fixture(scope="module")
def minilm(model_cache: Path) -> Embedder:
    return Embedder.bundled(cache_dir=model_cache)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_minilm_retrieves_the_right_text(home: Path, minilm: Embedder) -> None:
    assert minilm.dim == 384
    v = minilm.embed(list(TEXTS.values()))
    assert v.shape == (5, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    with VectorIndex.open("mini", home=home) as idx:
        n = index_chunks(
            idx,
            minilm,
            [{"id": k, "text": t, "metadata": {"topic": k}} for k, t in TEXTS.items()],
            batch_size=2,
        )
        assert n == 5 and len(idx) == 5
        r = Retriever(idx, minilm)
        assert r.retrieve("someone strums an instrument", k=1)[0].id == "guitar"
        assert r.retrieve("shares dropped on wall street", k=1)[0].id == "market"
        assert r.retrieve("how do I bake a cake?", k=1)[0].id == "recipe"
        hits = r.retrieve("will it storm?", k=2, filter={"topic": {"$ne": "weather"}})
        assert "weather" not in ids_of(hits) and len(hits) == 2
        with pytest.raises(InvalidArgument):
            r.retrieve("   ")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_collection_index_and_cli(home: Path, tmp_path: Path, minilm: Embedder) -> None:
    import opsloop
    from opsloop.cli import app
    from opsloop.datasets import Datasets
    from opsloop.retrieval import index_collection

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "install.md").write_text(
        "# Installing\n\nRun pip install opsloop to install the package.\n"
    )
    (docs / "cakes.md").write_text("# Baking\n\nWhisk eggs and sugar, fold in flour, bake.\n")
    (docs / "rain.txt").write_text("Storms and heavy rain are expected on the coast.\n")
    with opsloop.Client(home=home) as client:
        v = Datasets(client).create("handbook", docs)
        seen: list[tuple[int, int | None]] = []
        idx = index_collection(
            client, v.ref, "handbook", minilm, progress=lambda d, t: seen.append((d, t))
        )
    with idx:
        assert len(idx) == 3 and seen[-1] == (3, 3)
        hit = Retriever(idx, minilm).retrieve("how do I install it?", k=1)[0]
        assert hit.metadata["source"] == "install.md" and hit.metadata["title"] == "Installing"
        assert hit.metadata["heading_path"] == ["Installing"] and "pip install" in (hit.text or "")
        assert hit.metadata["start"] == 0 and hit.metadata["dataset"] == v.ref
    runner = CliRunner()
    h = ["--home", str(home)]
    res = runner.invoke(app, [*h, "index", "build", "cli-idx", "--collection", "handbook@1"])
    assert res.exit_code == 0, res.output
    assert "3 vectors" in res.output
    res = runner.invoke(
        app, [*h, "index", "search", "cli-idx", "baking a sponge", "-k", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["metadata"]["source"] == "cakes.md"
    flt = json.dumps({"source": {"$ne": "cakes.md"}})
    res = runner.invoke(
        app, [*h, "index", "search", "cli-idx", "baking", "--filter", flt, "--json"]
    )
    assert "cakes.md" not in [x["metadata"]["source"] for x in json.loads(res.stdout)]
    res = runner.invoke(
        app, [*h, "index", "search", "cli-idx", "x", "--filter", '{"a": {"$bad": 1}}']
    )
    assert res.exit_code == 1 and "error [INVALID_ARGUMENT]" in res.output
    res = runner.invoke(app, [*h, "index", "list", "--json"])
    assert sorted(i["name"] for i in json.loads(res.stdout)) == ["cli-idx", "handbook"]
    res = runner.invoke(app, [*h, "index", "info", "cli-idx"])
    assert res.exit_code == 0 and "cosine" in res.output
    res = runner.invoke(app, [*h, "index", "drop", "cli-idx", "--yes"])
    assert res.exit_code == 0 and VectorIndex.list(home) == ["handbook"]
    res = runner.invoke(app, [*h, "index", "info", "cli-idx"])
    assert res.exit_code == 1 and "error [NOT_FOUND]" in res.output
