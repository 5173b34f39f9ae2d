"""The LanceDB backend of the vector index beyond the shared contract (which
tests/test_retrieval.py runs on both backends): its IVF-PQ index, filters applied
before the search, another process's view, the backend kept with the index, and
an index in S3 on a real S3-compatible server (moto's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from opsloop.errors import InvalidArgument, NotFound
from opsloop.retrieval import VectorIndex
from tests.test_retrieval import clustered, ids_of

pytest.importorskip("lancedb")
boto3 = pytest.importorskip("boto3")
from tests.test_s3_artifacts import BUCKET, s3_endpoint  # noqa: E402, F401 (a fixture)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def lance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", "lance")
    monkeypatch.delenv("OPSLOOP_INDEX_URI", raising=False)


def _recall(a: list[Any], b: list[Any]) -> float:
    return float(
        np.mean([len(set(ids_of(x)) & set(ids_of(y))) / len(y) for x, y in zip(a, b, strict=True)])
    )


def test_ivf_pq_recall_and_filters_applied_before_the_search(home: Path, lance: None) -> None:
    x = clustered(3000, dim=32, clusters=60, seed=5)
    q = clustered(40, dim=32, clusters=60, seed=6)
    ids = [f"v{i}" for i in range(3000)]
    meta = [{"half": i % 2, "rare": i % 100 == 0} for i in range(3000)]
    with VectorIndex.open("ann", home=home, ann_threshold=1000) as idx:
        for s in range(0, 3000, 1000):  # trains at 1,000, again at 3,000 (grown threefold: no)
            idx.add(ids[s : s + 1000], x[s : s + 1000], metadata=meta[s : s + 1000])
        info = idx.info()
        assert (info["engine"], info["search"], info["count"]) == ("lance", "ivf_pq", 3000)
        assert info["trained_on"] is not None and info["trained_on"] >= 1000
        exact = idx.search_batch(q, 10, exact=True)
        approx = idx.search_batch(q, 10)
        assert _recall(approx, exact) >= 0.9
        # A filter matching 1% of the items still gives k hits: it runs before the vector
        # search (a filter applied after the top candidates would leave few or none).
        rare = idx.search_batch(q[:10], 10, filter={"rare": True})
        assert all(len(h) == 10 and all(x.metadata["rare"] for x in h) for h in rare)
        assert _recall(rare, idx.search_batch(q[:10], 10, filter={"rare": True}, exact=True)) >= 0.9
        half = idx.search_batch(q, 10, filter={"half": 1})
        assert all(h.metadata["half"] == 1 for hs in half for h in hs)
        idx.rebuild(train=False)
        assert idx.info()["search"] == "exact"
        with pytest.raises(InvalidArgument, match="keyword or hybrid"):
            idx.keyword_search("anything")


def test_another_process_sees_each_commit(home: Path, lance: None) -> None:
    x = clustered(20, dim=8, seed=1)
    with VectorIndex.open("shared", home=home) as idx:
        idx.add([f"v{i}" for i in range(20)], x, metadata=[{"i": i} for i in range(20)])
        code = (
            "import sys, numpy as np\n"
            "from opsloop.retrieval import VectorIndex\n"
            "idx = VectorIndex.open('shared', home=sys.argv[1], create=False)\n"
            "assert type(idx).__name__ == 'LanceIndex' and len(idx) == 20, len(idx)\n"
            "idx.add(['w'], np.ones((1, 8)), metadata=[{'from': 'child'}])\n"
            "idx.delete(['v0'])\n"
        )
        env_path = f"{Path.cwd() / 'src'}:{Path.cwd()}"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "PYTHONPATH": env_path},
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        # The handle opened before the child's writes sees them at its next read.
        assert len(idx) == 20 and "w" in idx and "v0" not in idx
        assert ids_of(idx.search(np.ones(8), 1, filter={"from": "child"})) == ["w"]


def test_an_index_keeps_its_backend_and_odd_values_filter_right(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = clustered(4, dim=8, seed=2)
    odd = ["it's", 'quote " and \\ backslash', "naïve ✓", "a%_b"]
    with VectorIndex.open("lan", home=home, backend="lance") as idx:
        idx.add(["a", "b", "c", "d"], x, metadata=[{"s": v} for v in odd])
        for i, v in enumerate(odd):
            assert ids_of(idx.search(x[0], 4, filter={"s": v})) == ["abcd"[i]]
        assert sorted(ids_of(idx.search(x[0], 4, filter={"s": {"$gt": "b"}}))) == ["a", "b", "c"]
        assert ids_of(idx.search(x[0], 4, filter={"missing": {"$gt": 1}})) == []
    with VectorIndex.open("fai", home=home, backend="faiss") as f:
        f.add(["a"], x[:1])
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", "lance")
    assert VectorIndex.list(home) == ["fai", "lan"]
    with VectorIndex.open("fai", home=home) as f, VectorIndex.open("lan", home=home) as ln:
        assert (f.info()["engine"], ln.info()["engine"]) == ("faiss", "lance")
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", "faiss")
    with VectorIndex.open("lan", home=home, create=False) as ln:  # found by its table
        assert ln.info()["engine"] == "lance" and len(ln) == 4
    from opsloop.cli import app

    res = CliRunner().invoke(app, ["--home", str(home), "index", "list", "--json"])
    assert res.exit_code == 0, res.output
    listed = {i["name"]: i for i in json.loads(res.output)}
    assert listed["lan"]["engine"] == "lance" and listed["lan"]["count"] == 4
    assert listed["lan"]["size_bytes"] > 0 and listed["fai"]["engine"] == "faiss"
    res = CliRunner().invoke(app, ["--home", str(home), "index", "info", "lan"])
    assert res.exit_code == 0 and "lance" in res.output, res.output
    with pytest.raises(InvalidArgument, match="backend must be"):
        VectorIndex.open("z", home=home, backend="milvus")


def test_an_index_in_s3(
    home: Path,
    s3_endpoint: str,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSLOOP_INDEX_BACKEND", "lance")
    monkeypatch.setenv("OPSLOOP_INDEX_URI", f"s3://{BUCKET}/vector-indexes")
    monkeypatch.setenv("OPSLOOP_S3_ENDPOINT_URL", s3_endpoint)
    x = clustered(300, dim=16, seed=3)
    ids = [f"v{i}" for i in range(300)]
    with VectorIndex.open("remote", home=home, ann_threshold=256) as idx:
        idx.add(ids, x, metadata=[{"i": i, "even": i % 2 == 0} for i in range(300)])
        assert idx.info()["search"] == "ivf_pq"
        idx.add(["v3"], x[4:5], metadata=[{"i": 3000}])
        assert idx.delete(["v5", "nope"]) == 1 and len(idx) == 299
    assert not any((home / "indexes").glob("*.lance"))  # nothing on local disk
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="vector-indexes/remote.lance/")
    assert listed.get("KeyCount", 0) > 0
    assert VectorIndex.list(home) == ["remote"]
    with VectorIndex.open("remote", home=home, create=False) as again:
        assert len(again) == 299 and again.dim == 16
        hits = again.search(x[8], 3, filter={"even": True}, exact=True)
        assert hits[0].id == "v8" and all(h.metadata["even"] for h in hits)
        assert ids_of(again.search(x[4], 2, filter={"i": {"$gte": 1000}})) == ["v3"]
        assert "v5" not in ids_of(again.search(x[5], 5, exact=True))
    VectorIndex.drop("remote", home=home)
    assert VectorIndex.list(home) == []
    with pytest.raises(NotFound):
        VectorIndex.open("remote", home=home, create=False)
